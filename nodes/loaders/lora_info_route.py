"""GET /longcat/lora_info?name=<relative path in a loras folder> (also under /api): what the slider default and
the node label come from, and what scripts can ask before sending a strength.

The file is read on the route's own worker thread, never on the server's event loop, so while a large header is
parsed (up to the LoRA bounds of core.lora_files; past them a 422) the server keeps answering everything else."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from server import PromptServer

from ..core.safetensors_file import ModelFileError
from .lora_library import lora_info
from .model_names import ModelNameError

_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="longcat_lora_info")  # one file read at a time


@PromptServer.instance.routes.get("/longcat/lora_info")
async def get_lora_info(request):
    name = request.rel_url.query.get("name", "")
    try:
        info = await asyncio.get_running_loop().run_in_executor(_reader, lora_info, name)
    except ModelNameError as e:
        status = 404 if "no such file" in str(e) else 400
        return web.json_response({"error": str(e)}, status=status)
    except ModelFileError as e:
        return web.json_response({"error": str(e)}, status=422)
    return web.json_response(info)
