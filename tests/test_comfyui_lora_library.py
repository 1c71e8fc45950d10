"""The LoRA library in ComfyUI's process: its caches are keyed by file, so a file that changes (or is only touched)
replaces its entry and memory does not grow however often it is queried."""
import os
import shutil
import sys
from pathlib import Path

import pytest

from support.model_files import tensor_shapes


@pytest.fixture
def library(comfy_env):
    return sys.modules[f"{comfy_env[0].__name__}.nodes.loaders.lora_library"]


@pytest.fixture
def touched(golden_dir):
    import folder_paths
    loras = Path(folder_paths.get_full_path("loras", "lora_distill.safetensors")).parent
    path = loras / "touched.safetensors"
    shutil.copy(golden_dir / "lora_distill.safetensors", path)
    yield path
    path.unlink()


def touch(path, step):
    mtime = path.stat().st_mtime_ns + step * 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def entries_for(cache, path):
    return [key for key in cache if str(path.resolve()) in str(key)]


def test_touching_a_file_replaces_its_inspect_entry(library, touched, golden_dir):
    for step in range(5):
        touch(touched, 1)
        assert library.lora_info("touched.safetensors")["targets"] == 14
    assert len(entries_for(library._inspect_cache, touched)) == 1
    shutil.copy(golden_dir / "lora_refine.safetensors", touched)
    touch(touched, 1)
    assert library.lora_info("touched.safetensors")["targets"] == 18  # the new content, not the cached one
    assert len(entries_for(library._inspect_cache, touched)) == 1


def test_touching_a_file_replaces_its_full_description(library, touched, golden_dir):
    shapes = tensor_shapes(golden_dir / "tiny_dit.safetensors")
    path = library.resolve_lora("touched.safetensors")
    for step in range(3):
        touch(touched, 1)
        assert len(library.cached_read(path, shapes).targets) == 14
    assert len(entries_for(library._read_cache, touched)) == 1
