"""Directory links that loop (`ln -s . loop1; ln -s . loop2` in loras/ and diffusion_models/), against a real
ComfyUI server. ComfyUI's own listing (folder_paths.recursive_search: os.walk with followlinks=True, no guard)
lists every file again under loop1/, loop1/loop1/, ... down to the system's link limit with one such link, and with
two it walks 2^40 paths: it never returns. The pack's lists are built from ComfyUI's listing (cached by ComfyUI per
folder mtime), never by a walk of their own, and offer each file and checkpoint folder once."""
import os
import shutil
import urllib.request
import json

import pytest
from safetensors.torch import load_file

from conftest import GOLDEN
from longcat_pack.nodes.cli.headless import ComfyServer
from test_checkpoint import write_sharded

FOLDERS = ("diffusion_models", "loras")


@pytest.fixture(scope="module")
def loop_server(comfyui_root, tmp_path_factory):
    server = ComfyServer(comfyui_root, tmp_path_factory.mktemp("comfyui_loops"))
    dit, loras = server.models("diffusion_models"), server.models("loras")
    dit.mkdir(parents=True)
    loras.mkdir(parents=True)
    shutil.copy(GOLDEN / "tiny_dit.safetensors", dit / "longcat_tiny.safetensors")
    write_sharded(dit / "longcat_tiny_sharded", load_file(str(GOLDEN / "tiny_dit.safetensors")))
    shutil.copy(GOLDEN / "lora_distill.safetensors", loras / "lora_distill.safetensors")
    server.start()
    yield server
    for folder in FOLDERS:
        for link in ("loop1", "loop2"):
            if os.path.islink(server.models(folder) / link):
                os.unlink(server.models(folder) / link)
    server.stop()


def object_info(server, timeout=60):
    """The whole /object_info (what the frontend loads), or a TimeoutError naming what hung."""
    with urllib.request.urlopen(server.url + "/object_info", timeout=timeout) as r:
        return json.loads(r.read())


def listed(info):
    return (info["LongCatDiTLoader"]["input"]["required"]["dit_name"][0],
            info["LongCatLoraLoader"]["input"]["required"]["lora_name"][0])


def add_links(server, names, keep_mtime):
    for folder in FOLDERS:
        path = server.models(folder)
        stat = path.stat()
        for name in names:
            if not os.path.islink(path / name):
                os.symlink(".", path / name, target_is_directory=True)
        if keep_mtime:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_one_self_link_lists_each_model_once(loop_server):
    """One loop: ComfyUI's listing holds every file once per level (its own UNETLoader offers them all); the
    pack's loaders offer each file and the sharded folder once."""
    add_links(loop_server, ["loop1"], keep_mtime=False)
    info = object_info(loop_server)
    dits, loras = listed(info)
    assert dits == ["longcat_tiny_sharded/", "longcat_tiny.safetensors"], dits
    assert loras == ["lora_distill.safetensors"], loras
    core = info["UNETLoader"]["input"]["required"]["unet_name"][0]
    assert "loop1/loop1/longcat_tiny.safetensors" in core  # what ComfyUI itself lists


def test_two_self_links_do_not_hang_the_packs_lists(loop_server):
    """Two loops: a walk of them never ends. While ComfyUI answers from its listing cache (the folders' mtimes
    unchanged), /object_info must return: the pack adds no walk of its own (before, it walked the folders on every
    INPUT_TYPES, following links without a guard, and the request never returned)."""
    object_info(loop_server)  # ComfyUI's listing cache is current
    add_links(loop_server, ["loop1", "loop2"], keep_mtime=True)
    dits, loras = listed(object_info(loop_server))
    assert dits == ["longcat_tiny_sharded/", "longcat_tiny.safetensors"], dits
    assert loras == ["lora_distill.safetensors"], loras
    assert loop_server.alive()
