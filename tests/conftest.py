"""Make the pack importable as the package `longcat_pack` (support/pack.py) without running its ComfyUI entry point."""
import pytest

from support.pack import PACK_ROOT, register_pack

GOLDEN = PACK_ROOT / "tests" / "golden"  # outputs of the reference implementation (see golden/README.md)

register_pack()


@pytest.fixture(scope="session")
def golden_dir():
    return GOLDEN


pytest_plugins = ["comfy_fixtures"]
