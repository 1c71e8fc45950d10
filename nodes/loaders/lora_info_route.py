"""GET /longcat/lora_info?name=<relative path in a loras folder> (also under /api): what the slider default and
the node label come from, and what scripts can ask before sending a strength."""
from aiohttp import web
from server import PromptServer

from ..core.safetensors_file import ModelFileError
from .lora_library import LoraNameError, lora_info


@PromptServer.instance.routes.get("/longcat/lora_info")
async def get_lora_info(request):
    name = request.rel_url.query.get("name", "")
    try:
        return web.json_response(lora_info(name))
    except LoraNameError as e:
        status = 404 if "no such file" in str(e) else 400
        return web.json_response({"error": str(e)}, status=status)
    except ModelFileError as e:
        return web.json_response({"error": str(e)}, status=422)
