"""Shared by the benchmarks: import the pack as `longcat_pack` (as the tests do) and name the device."""
import importlib.util
import os
import platform
import sys
import types

import torch

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_pack():
    if "longcat_pack" not in sys.modules:
        pkg = types.ModuleType("longcat_pack")
        pkg.__path__ = [PACK_ROOT]
        pkg.__spec__ = importlib.util.spec_from_loader("longcat_pack", loader=None, is_package=True)
        pkg.__spec__.submodule_search_locations = [PACK_ROOT]
        sys.modules["longcat_pack"] = pkg
    return sys.modules["longcat_pack"]


def device_name(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"
