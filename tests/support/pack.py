"""Import the pack as the package `longcat_pack` without running its ComfyUI entry point.

ComfyUI has a top-level module called `nodes`, so the pack is never put on sys.path itself: tests and benchmarks
import `longcat_pack.nodes.core...` and the pack's own modules use relative imports only."""
import importlib.util
import sys
import types
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]


def register_pack():
    if "longcat_pack" not in sys.modules:
        pkg = types.ModuleType("longcat_pack")
        pkg.__path__ = [str(PACK_ROOT)]
        pkg.__spec__ = importlib.util.spec_from_loader("longcat_pack", loader=None, is_package=True)
        pkg.__spec__.submodule_search_locations = [str(PACK_ROOT)]
        sys.modules["longcat_pack"] = pkg
    return sys.modules["longcat_pack"]
