"""Make the pack importable as the package `longcat_pack` without running its ComfyUI entry point.

ComfyUI has a top-level module called `nodes`, so the pack is never put on sys.path itself: tests import
`longcat_pack.nodes.core...` and the pack's own modules use relative imports only.
"""
import importlib.util
import sys
import types
from pathlib import Path

import pytest

PACK_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = PACK_ROOT / "tests" / "golden"  # outputs of the reference implementation (see golden/README.md)


def _register_pack():
    if "longcat_pack" in sys.modules:
        return
    pkg = types.ModuleType("longcat_pack")
    pkg.__path__ = [str(PACK_ROOT)]
    pkg.__spec__ = importlib.util.spec_from_loader("longcat_pack", loader=None, is_package=True)
    pkg.__spec__.submodule_search_locations = [str(PACK_ROOT)]
    sys.modules["longcat_pack"] = pkg


_register_pack()


@pytest.fixture(scope="session")
def golden_dir():
    return GOLDEN


pytest_plugins = ["comfy_fixtures"]
