"""GET /longcat/lora_info?name=<relative path in a loras folder> (also under /api): what the slider default and
the node label come from, and what scripts can ask before sending a strength.

Files are read on the route's own small pool of worker threads, never on the server's event loop, so while a large
header is parsed (up to the LoRA bounds of core.lora_files; past them a 422) the server keeps answering everything
else. The pool is bounded: past MAX_WAITING requests being read or waiting, a request is answered at once with 503
and Retry-After instead of joining an ever longer queue (a workflow with hundreds of LoRA nodes, or a script, cannot
keep the workers busy for minutes and slow a running prompt)."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from server import PromptServer

from ..core.cooperative import cooperative
from ..core.safetensors_file import ModelFileError
from .lora_library import lora_info
from .model_names import ModelNameError

WORKERS = 2
MAX_WAITING = 8  # requests being read or queued for a worker
RETRY_AFTER_S = 1
_reader = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="longcat_lora_info")
_waiting = [0]  # changed on the event loop only


def _read_politely(name):
    with cooperative():  # the parse hands the interpreter lock to the event loop every millisecond
        return lora_info(name)


@PromptServer.instance.routes.get("/longcat/lora_info")
async def get_lora_info(request):
    name = request.rel_url.query.get("name", "")
    if _waiting[0] >= MAX_WAITING:
        return web.json_response({"error": f"busy: {_waiting[0]} LoRA files are being read; retry in "
                                           f"{RETRY_AFTER_S} s"}, status=503,
                                 headers={"Retry-After": str(RETRY_AFTER_S)})
    _waiting[0] += 1
    try:
        info = await asyncio.get_running_loop().run_in_executor(_reader, _read_politely, name)
    except ModelNameError as e:
        status = 404 if "no such file" in str(e) else 400
        return web.json_response({"error": str(e)}, status=status)
    except ModelFileError as e:
        return web.json_response({"error": str(e)}, status=422)
    finally:
        _waiting[0] -= 1
    return web.json_response(info)
