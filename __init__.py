"""ComfyUI entry point of the LongCat-Video pack.

Everything is imported relatively: ComfyUI has a top-level module called `nodes`, and this pack's `nodes`
package must never be confused with it.
"""
from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
