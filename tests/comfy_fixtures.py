"""Session fixtures: real ComfyUI servers with this pack installed (one with tiny model files of every kind, one
with no model files, one with stand-ins named like every file the shipped workflows use), and headless Chromium
on them with a screenshot of every page of a failed test."""
import json
import os
import re
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from comfy_inprocess import import_comfyui
from longcat_pack.nodes.core.checkpoint import INDEX_NAME
from longcat_pack.nodes.core.demo_files import write_demo_text_embeddings
from longcat_pack.nodes.cli.comfyui_checkout import comfyui_version, find_comfyui
from support.browser import CHROMIUM, launch, open_app, write_stand_ins
from longcat_pack.nodes.cli.headless import ComfyServer
from longcat_pack.nodes.workflows.catalog import SHIPPED
from conftest import GOLDEN, PACK_ROOT
from test_checkpoint import SHARD, write_sharded


FOUND_COMFYUI = find_comfyui()
STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes") and FOUND_COMFYUI is not None


def pytest_report_header(config):
    if FOUND_COMFYUI is None:
        return "ComfyUI: NOT FOUND (integration tests skip)"
    return f"ComfyUI {comfyui_version(FOUND_COMFYUI)} at {FOUND_COMFYUI}" + (" (CI: skips fail)" if STRICT else "")


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(pytest_report_header(None))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can act on failures (browser screenshots). In CI
    with a ComfyUI present, a skipped test fails unless it is GPU-only: integration must never go green unseen."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and item.get_closest_marker("gpu") is None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def comfyui_root():
    root = FOUND_COMFYUI
    if root is None:
        message = ("ComfyUI NOT FOUND: integration tests skipped. Run `bash scripts/install.sh` with COMFYUI_ARCHIVE set "
                   "to a ComfyUI source .tar.gz (or with network), set COMFYUI_PATH to a ComfyUI checkout with its "
                   "requirements installed, install this pack into ComfyUI/custom_nodes, or put ComfyUI at ~/ComfyUI.")
        warnings.warn(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def comfy_server(comfyui_root, golden_dir, tmp_path_factory):
    server = ComfyServer(comfyui_root, tmp_path_factory.mktemp("comfyui"))
    populate_models(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def empty_server(comfyui_root, tmp_path_factory):
    """A server whose model folders hold nothing: what a new user has before downloading."""
    server = ComfyServer(comfyui_root, tmp_path_factory.mktemp("comfyui_empty"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def installed_server(comfyui_root, tmp_path_factory):
    """A server with a stand-in for every model file the shipped workflows name: what a user sees once every
    download is done (the LoRA stand-ins are tiny official-format files with alpha/rank 0.5, like the real ones)."""
    server = ComfyServer(comfyui_root, tmp_path_factory.mktemp("comfyui_installed"))
    for build in SHIPPED.values():
        write_stand_ins(server.base / "models", build(), server.base / "input")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for one test module: Playwright's sync API keeps an event loop running in this thread
    while it is open, and the server tests after it call asyncio.run()."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (drives Debian's chromium)")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, request):
    """open_page(server): a fresh 1600x1000 page on the server's UI. When the test fails, each page it opened is
    saved as a screenshot in test-screenshots/ (git-ignored; the path is printed)."""
    pages = []

    def open_on(server):
        page = open_app(chromium, server.url)
        pages.append(page)
        return page

    yield open_on
    report = getattr(request.node, "rep_call", None)
    for i, page in enumerate(pages):
        if report is not None and report.failed:
            folder = PACK_ROOT / "test-screenshots"
            folder.mkdir(exist_ok=True)
            path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}_{i}.png"
            page.screenshot(path=str(path))
            print(f"screenshot: {path}")
        page.close()


def write_other_format_loras(loras):
    """One small file per supported format, a corrupt one, and a link that leads outside the folder."""
    from lora_writers import random_factor, write_kohya, write_official, write_peft
    g = torch.Generator().manual_seed(5)
    down, (up,) = random_factor(256, 256, 4, g)
    write_kohya(loras / "kohya_style.safetensors", {"blocks.0.attn.proj": (down, up, 4.0)})
    (loras / "peft").mkdir(exist_ok=True)
    a, (b,) = random_factor(256, 768, 8, g)
    write_peft(loras / "peft" / "adapter_model.safetensors", {"blocks.1.ffn.w2": (a, b, None)},
               adapter_config={"r": 8, "lora_alpha": 8})
    write_official(loras / "split_qkv.safetensors",
                   {f"blocks.0.attn.{n}": (*random_factor(256, 256, 4, g), 0.25) for n in ("q", "k", "v")})
    data = (GOLDEN / "lora_distill.safetensors").read_bytes()
    (loras / "corrupt.safetensors").write_bytes(data[: len(data) // 2])
    outside = loras.parent.parent / "outside_secret.safetensors"
    shutil.copy(GOLDEN / "lora_distill.safetensors", outside)
    (loras / "linked_outside.safetensors").symlink_to(outside)
    write_layout_loras(loras)
    official = load_file(str(GOLDEN / "lora_distill.safetensors"))
    key = "lora___lorahyphen___blocks___lorahyphen___1___lorahyphen___ffn___lorahyphen___w3.alpha_scale"
    save_file({**official, key: torch.tensor(2e38)}, str(loras / "huge_alpha.safetensors"))


def write_layout_loras(loras):
    """The golden LoRAs as Kijai (WanVideoWrapper), FastVideo and DiffSynth/PEFT write them, and a Kijai one that
    also carries text-encoder keys."""
    from layout_writers import official_modules, wanvideo_lora
    from test_lora_layouts import write
    for layout in ("wanvideo", "fastvideo", "peft"):
        for kind in ("distill", "refine"):
            write(kind, layout, GOLDEN, loras / "layouts" / layout)
    official = official_modules(GOLDEN / "lora_distill.safetensors")
    with_te = wanvideo_lora(official, loras / "layouts" / "kijai_with_te.safetensors")
    sd = load_file(str(with_te))
    sd["lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight"] = torch.zeros(4, 256)
    save_file(sd, str(with_te))


def write_layout_dits(dit, sd):
    """The golden DiT in Kijai's WanVideoWrapper layout, plain and as Kijai's scaled fp8, and two broken ones: half
    Kijai's names and half the native ones, a scaled file that lost its scales."""
    from layout_writers import block_linear_weights, convert_checkpoint, save, scaled_fp8
    wan = convert_checkpoint(sd, "wanvideo")
    save(wan, dit / "LongCat_tiny_comfy_fp32.safetensors")
    scaled = scaled_fp8(wan, block_linear_weights(wan))
    save(scaled, dit / "LongCat_tiny_comfy_fp8_e4m3fn_scaled_KJ.safetensors")
    half = {k: v for k, v in wan.items() if k.startswith("blocks.0.")}
    save({**half, **{k: v for k, v in sd.items() if not k.startswith("blocks.0.")}}, dit / "half_kijai.safetensors")
    save({k: v for k, v in scaled.items() if not k.endswith("scale_weight")}, dit / "scaled_without_scales.safetensors")
    write_bad_input_dits(dit, sd)


def write_bad_input_dits(dit, sd):
    """Checkpoints that loaded as something else before the bad-input checks (docs/bad-input.md): a Kijai
    conversion that lost its last block beside the config.json giving the depth, a released-size header whose last
    block is missing (the data a sparse hole), and a scaled fp8 file with a NaN scale."""
    from layout_writers import block_linear_weights, convert_checkpoint, released_shapes, scaled_fp8, \
        write_header_only
    one_block = convert_checkpoint({k: v for k, v in sd.items() if not k.startswith("blocks.1.")}, "wanvideo")
    folder = write_sharded(dit / "kijai_lost_last_block", one_block)
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatVideoTransformer3DModel", "depth": 2}))
    write_header_only(dit / "released_47_blocks.safetensors", released_shapes(47))
    wan = convert_checkpoint(sd, "wanvideo")
    nan_scale = scaled_fp8(wan, block_linear_weights(wan))
    nan_scale["blocks.0.ffn.w1.scale_weight"] = torch.tensor([float("nan")])
    save_file(nan_scale, str(dit / "nan_scale_KJ.safetensors"))


def populate_models(server):
    dit = server.models("diffusion_models")
    dit.mkdir(parents=True, exist_ok=True)
    shutil.copy(GOLDEN / "tiny_dit.safetensors", dit / "longcat_tiny.safetensors")
    sd = load_file(str(GOLDEN / "tiny_dit.safetensors"))
    write_sharded(dit / "longcat_tiny_sharded", sd)
    data = (GOLDEN / "tiny_dit.safetensors").read_bytes()
    (dit / "broken_truncated.safetensors").write_bytes(data[: len(data) // 3])
    other = {k: v for k, v in sd.items() if k != "blocks.1.attn.proj.weight"}
    save_file(other, str(dit / "missing_block.safetensors"))
    write_layout_dits(dit, sd)
    loras = server.models("loras")
    loras.mkdir(parents=True, exist_ok=True)
    for name in ("lora_distill.safetensors", "lora_refine.safetensors"):
        shutil.copy(GOLDEN / name, loras / name)
    write_other_format_loras(loras)
    emb = server.models("text_embeddings")
    emb.mkdir(parents=True, exist_ok=True)
    write_demo_text_embeddings(emb / "tiny_prompt.safetensors", tokens=7, seed=1)
    write_demo_text_embeddings(emb / "tiny_negative.safetensors", tokens=3, seed=2)
    write_hostile_files(server, sd)


def write_hostile_files(server, dit_weights):
    """The adversarial probe's files: malformed LoRAs, headers near and past the route's bounds, and a link, a
    linked folder and a shard index that each lead outside the model folders (to real, loadable files)."""
    from lora_writers import MALFORMED_LORAS, write_many_modules, write_malformed_lora
    from longcat_pack.nodes.core.lora_files import MAX_LORA_HEADER_BYTES, MAX_LORA_TENSORS
    loras, dit, emb = server.models("loras"), server.models("diffusion_models"), server.models("text_embeddings")
    outside = server.base / "outside_models"
    outside.mkdir(exist_ok=True)
    (loras / "malformed").mkdir(exist_ok=True)
    for name in MALFORMED_LORAS:
        write_malformed_lora(loras / "malformed" / name)
    (loras / "huge").mkdir(exist_ok=True)
    write_many_modules(loras / "huge" / "near_the_bound.safetensors", (MAX_LORA_TENSORS - 1) // 3)
    write_many_modules(loras / "huge" / "too_many_tensors.safetensors", MAX_LORA_TENSORS // 3 + 1)
    (loras / "huge" / "header_too_large.safetensors").write_bytes(
        (MAX_LORA_HEADER_BYTES + 1).to_bytes(8, "little") + b"{" + b" " * 1024)

    write_sharded(outside / "sharded_elsewhere", dit_weights)
    (dit / "linked_outside_folder").symlink_to(outside / "sharded_elsewhere", target_is_directory=True)
    shutil.copy(GOLDEN / "tiny_dit.safetensors", outside / "dit_elsewhere.safetensors")
    (dit / "linked_outside_dit.safetensors").symlink_to(outside / "dit_elsewhere.safetensors")
    escaping = write_sharded(dit / "escaping_shards", dit_weights)
    (escaping / SHARD.format(3)).rename(server.base / "models" / "escaped_shard.safetensors")
    index = json.loads((escaping / INDEX_NAME).read_text())
    index["weight_map"] = {k: ("../../escaped_shard.safetensors" if v == SHARD.format(3) else v)
                           for k, v in index["weight_map"].items()}
    (escaping / INDEX_NAME).write_text(json.dumps(index))
    write_demo_text_embeddings(outside / "prompt_elsewhere.safetensors", tokens=7, seed=1)
    (emb / "linked_outside_prompt.safetensors").symlink_to(outside / "prompt_elsewhere.safetensors")


@pytest.fixture(scope="session")
def comfy_model_dirs(tmp_path_factory):
    """{folder name: path} that the in-process ComfyUI reads models from (tests may add files of their own)."""
    base = tmp_path_factory.mktemp("inprocess_models")
    dirs = {"diffusion_models": base / "diffusion_models", "loras": base / "loras"}
    for d in dirs.values():
        d.mkdir()
    shutil.copy(GOLDEN / "tiny_dit.safetensors", dirs["diffusion_models"] / "longcat_tiny.safetensors")
    for name in ("lora_distill.safetensors", "lora_refine.safetensors"):
        shutil.copy(GOLDEN / name, dirs["loras"] / name)
    return dirs


@pytest.fixture(scope="session")
def comfy_env(comfyui_root, comfy_model_dirs):
    """(the pack as ComfyUI loaded it, comfy.model_management) in this process, with the tiny DiT and LoRAs."""
    pack = import_comfyui(comfyui_root, comfy_model_dirs)
    import comfy.model_management as mm
    return pack, mm
