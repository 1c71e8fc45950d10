"""The README's commands: `python -m nodes.cli inspect` reports what the loader sees in each file; `run` renders
the shipped workflow headless (from anywhere the pack is installed), and `run --ui` serves the demo set to the
browser with workflows that queue as they are. The demo set lives in its own folder and nothing is left behind."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import PACK_ROOT
from support.browser import load_workflow, missing_models
from longcat_pack.nodes.cli.headless import free_port
from longcat_pack.nodes.workflows.catalog import MAIN, SHIPPED


def run_cli(*args, cwd=PACK_ROOT, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "nodes.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory):
    """One demo set for every CLI test of the session."""
    return tmp_path_factory.mktemp("demo_set")


def test_inspect_official_refinement_file(golden_dir):
    result = run_cli("inspect", str(golden_dir / "lora_refine.safetensors"))
    assert result.returncode == 0, result.stderr
    assert "format:            longcat" in result.stdout
    assert "alpha/rank:        0.5" in result.stdout
    assert "target modules:    18 (35 low-rank factors)" in result.stdout
    assert "exception: blocks.1.ffn.w2 alpha/rank 0.25" in result.stdout


def test_inspect_names_the_layout_of_converted_loras_and_checkpoints(golden_dir, tmp_path):
    from safetensors.torch import load_file
    from layout_writers import block_linear_weights, convert_checkpoint, official_modules, save, scaled_fp8, \
        wanvideo_lora
    lora = wanvideo_lora(official_modules(golden_dir / "lora_distill.safetensors"), tmp_path / "kijai.safetensors")
    wan = convert_checkpoint(load_file(str(golden_dir / "tiny_dit.safetensors")), "wanvideo")
    dit = save(scaled_fp8(wan, block_linear_weights(wan)), tmp_path / "LongCat_tiny_fp8_scaled_KJ.safetensors")
    result = run_cli("inspect", str(lora), str(dit))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("layout:            WanVideoWrapper / Kijai (Kijai/LongCat-Video_comfy)") == 2
    assert "alpha/rank:        0.5" in result.stdout
    assert "model:             LongCat-Video DiT, 2 blocks, hidden 256" in result.stdout
    assert "quantized layers:  22 float8_e4m3fn" in result.stdout  # 2 blocks x q k v o, cross q k v o, w1 w2 w3
    assert "split linears:     4 fused q/k/v kept as quantized pieces" in result.stdout


def test_demo_runs_on_a_bare_machine_and_leaves_nothing_behind(tmp_path):
    """The demo LoRAs go to the demo set's folder (the user's cache by default), not to temporary folders."""
    clone, env = pack_copy_outside_comfyui(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_cli("inspect", "--demo", cwd=clone, env={**env, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("alpha/rank:        0.5") == 2
    cache = tmp_path / "home" / ".cache" / "comfyui-longcat-video" / "models" / "loras"
    assert sorted(p.name for p in cache.iterdir()) == ["longcat_demo_distill_lora_RANDOM.safetensors",
                                                       "longcat_demo_refinement_lora_RANDOM.safetensors"]
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in clone.iterdir()) == ["nodes", "workflows"]


def test_bad_file_is_reported_and_fails(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 4)
    result = run_cli("inspect", str(bad))
    assert result.returncode == 1
    assert "broken.safetensors: not a safetensors file" in result.stderr


def saved_video(stdout):
    saved = [line.split("saved: ")[1] for line in stdout.splitlines() if line.startswith("saved: ")]
    assert len(saved) == 1 and saved[0].endswith(".mp4"), stdout
    import av  # one of ComfyUI's requirements
    with av.open(saved[0]) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert frames.std() > 10  # noise from the random files, not the flat frames a NaN in the chain leaves
    return saved[0], frames


def test_main_job_runs_the_workflow_on_the_demo_set(comfyui_root, demo_home, tmp_path):
    """The README's main job: the shipped workflow headless through ComfyUI; no LongCat files here -> demo set.
    It says what runs by stage and node name, names the video for what it is and keeps it in the demo folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_cli("run", "--workflow", "longcat_t2v_distill", "--comfyui", str(comfyui_root),
                     "--demo-dir", str(demo_home), env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "DEMO SET" in out and re.search(r"step 16/16 \(\d+\.\d s/step\)", out)
    assert "Stage 1 · text to video: distill LoRA, no CFG (demo set)\n" in out
    assert "\n  Distill LoRA (no CFG)\n" in out and "\n  Save MP4\n" in out
    assert re.search(r"\n  Decode frames\n    \(\d+\.\d s\)\n", out)  # what each node took
    assert "running node" not in out
    path, frames = saved_video(out)
    assert path.startswith(str(demo_home / "run" / "output" / "longcat_demo"))
    assert os.path.basename(path).startswith("RANDOM_WEIGHTS_t2v_distill_")
    assert frames.shape[:3] == (9, 64, 64)
    assert not [p for p in scratch.iterdir() if p.name.startswith("longcat")]
    assert not (PACK_ROOT / "demo").exists()

def test_main_job_runs_an_avatar_workflow_on_the_demo_set(comfyui_root, demo_home):
    """`run --workflow <avatar>`: the demo set's avatar DiT, audio encoder (its own model folder) and speech render
    a talking video headless, 9 frames at the v1.0-style demo's 16 fps."""
    result = run_cli("run", "--workflow", "longcat_avatar_two_speakers", "--comfyui", str(comfyui_root),
                     "--demo-dir", str(demo_home))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DEMO SET" in result.stdout and re.search(r"step 8/8 \(\d+\.\d s/step\)", result.stdout)
    _, frames = saved_video(result.stdout)
    assert frames.shape[:3] == (9, 64, 64)



def comfyui_with_the_pack_inside(tmp_path, comfyui_root):
    """A ComfyUI tree made of links to comfyui_root's folders, with this pack linked in its custom_nodes the way
    a developer installs it. ComfyUI finds its folders from its own files' real paths, so the top-level files
    are copies; the folders it writes to (user, output, input, temp, custom_nodes, models) are its own."""
    tree = tmp_path / "ComfyUI"
    own = ("custom_nodes", "user", "output", "input", "temp", "models")
    tree.mkdir()
    for entry in comfyui_root.iterdir():
        if entry.name in own or entry.name.startswith("."):
            continue
        if entry.is_dir():
            (tree / entry.name).symlink_to(entry, target_is_directory=True)
        else:
            shutil.copy2(entry, tree / entry.name)
    for name in own:
        (tree / name).mkdir()
    for folder in (comfyui_root / "models").iterdir():
        (tree / "models" / folder.name).symlink_to(folder, target_is_directory=True)
    (tree / "custom_nodes" / "comfyui-longcat-video").symlink_to(PACK_ROOT, target_is_directory=True)
    return tree


def test_main_job_from_inside_comfyuis_custom_nodes(comfyui_root, demo_home, tmp_path):
    """Installed as the README says (in ComfyUI/custom_nodes), with no COMFYUI_PATH and no ~/ComfyUI: the
    command finds the ComfyUI around it, loads the pack once and renders."""
    tree = comfyui_with_the_pack_inside(tmp_path, comfyui_root)
    pack = tree / "custom_nodes" / "comfyui-longcat-video"
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    env.update(HOME=str(tmp_path / "home"), PWD=str(pack))  # a shell that did `cd ComfyUI/custom_nodes/<pack>`
    result = run_cli("run", "--workflow", "longcat_t2v_distill", "--demo-dir", str(demo_home), cwd=pack, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"starting ComfyUI from {tree} " in result.stdout
    saved_video(result.stdout)
    log = (demo_home / "run" / "comfyui_run.log").read_text()
    assert "IMPORT FAILED" not in log
    assert len([line for line in log.splitlines() if line.strip().endswith("comfyui-longcat-video")]) == 1


def pack_copy_outside_comfyui(tmp_path):
    """The pack's code in a folder of its own, as a fresh clone with no ComfyUI anywhere (not in the pack's
    .comfyui/, not around it, not in HOME); returns (folder, environment without COMFYUI_PATH)."""
    copy = tmp_path / "clone"
    for part in ("nodes", "workflows"):
        shutil.copytree(PACK_ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "LONGCAT_DEMO_DIR", "XDG_CACHE_HOME")}
    return copy, {**env, "HOME": str(tmp_path / "home"), "PYTHONDONTWRITEBYTECODE": "1"}


def test_main_job_without_comfyui_says_so(tmp_path):
    clone, env = pack_copy_outside_comfyui(tmp_path)
    result = run_cli("run", "--fallback-inspect", cwd=clone, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ComfyUI not found" in result.stderr and "alpha/rank:        0.5" in result.stdout
    result = run_cli("run", cwd=clone, env=env, timeout=120)
    assert result.returncode == 2 and "ComfyUI not found" in result.stderr


def test_comfyui_path_that_points_nowhere_is_an_error(tmp_path):
    env = {**os.environ, "COMFYUI_PATH": str(tmp_path / "nowhere")}
    result = run_cli("run", "--fallback-inspect", env=env, timeout=120)
    assert result.returncode == 2
    assert f"COMFYUI_PATH={tmp_path / 'nowhere'} is not a ComfyUI checkout" in result.stderr


def test_ui_opens_the_main_demo_workflow_ready_to_queue(comfyui_root, demo_home, open_page):
    """`run --ui`: ComfyUI stays up with the demo set, and the first page shows the main demo workflow (not the
    stock default graph and its missing-model toast): no missing model, no error, every node of it; queued as it
    is, it renders. The other demo workflows are in the Workflows panel. Ctrl+C stops everything."""
    port = free_port()
    proc, lines = start_ui(comfyui_root, demo_home, port)
    try:
        url = f"http://127.0.0.1:{port}"
        assert any(url in line for line in lines), "".join(lines)
        printed = [line.strip() for line in lines if line.strip().endswith(".json")]
        main = demo_workflow_file(demo_home, MAIN)
        page = open_page(SimpleNamespace(url=url))
        page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'LongCatRefineUpscale')", timeout=30_000)
        page.wait_for_timeout(3000)  # the frontend's missing-model check and its toasts, were there any
        page.screenshot(path=str(demo_home / "first_view.png"))
        shown = page.evaluate("() => app.graph.nodes.map(n => n.title).sort()")
        expected = json.loads(main.read_text(encoding="utf-8"))
        assert shown == sorted(n.get("title") or n["type"] for n in expected["nodes"])
        assert missing_models(page) == []
        assert page.locator(".p-toast-message-error").count() == 0
        assert page.longcat_errors == [] and any("LongCat: opened" in m for m in page.longcat_console)
        listed = page.evaluate("async () => (await (await fetch('/api/userdata?dir=workflows')).json())")
        assert {os.path.basename(p) for p in printed} <= set(listed)  # what the Workflows panel shows
        templates = page.evaluate("async () => (await (await fetch('/api/workflow_templates')).json())")
        demo_titles = sorted(p.stem for p in (demo_home / "templates").glob("*.json"))
        assert sorted(templates["comfyui-longcat-video"]) == demo_titles  # the template browser: demo twins
        for title in demo_titles:  # each finds the demo files: no missing model
            template = page.evaluate("async (t) => (await (await fetch(`/api/workflow_templates/comfyui-longcat-video/"
                                     "${encodeURIComponent(t)}.json`)).json())", title)
            assert json.loads((demo_home / "templates" / f"{title}.json").read_text(encoding="utf-8")) == template
            load_workflow(page, template)
            assert missing_models(page) == [], title
        load_workflow(page, expected)
        page.evaluate("async () => { await app.queuePrompt(0, 1); }")
        history = wait_for_history(url)
        assert history["status"]["status_str"] == "success", history["status"]
        (video,) = [v for o in history["outputs"].values() for v in o.get("images", []) + o.get("videos", [])]
        assert (demo_home / "run" / "output" / video["subfolder"] / video["filename"]).is_file()
        assert video["filename"].startswith("RANDOM_WEIGHTS_t2v_refined_")
        second = open_page(SimpleNamespace(url=url))  # a reload restores the session: the first view is once
        assert not any("LongCat: opened" in m for m in second.longcat_console)
    finally:
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(60)
    assert returncode == 0, "".join(lines)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def demo_workflow_file(demo_home, name):
    from longcat_pack.nodes.cli.demo_set import demo_setup, workflows_dir
    from longcat_pack.nodes.workflows.files import ui_file
    return ui_file(SHIPPED[name](demo_setup()), workflows_dir(demo_home))


def wait_for_history(url, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with urllib.request.urlopen(f"{url}/history", timeout=30) as response:
            done = [h for h in json.loads(response.read()).values() if h.get("status", {}).get("completed")
                    or h.get("status", {}).get("status_str") == "error"]
        if done:
            return done[0]
        time.sleep(1)
    raise TimeoutError(f"nothing finished on {url} in {timeout} s")


def ignoring_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_ui(comfyui_root, demo_home, port, sigint_ignored=False):
    """`run --ui` in a process of its own; returns (process, the lines it has printed so far, kept growing).
    `sigint_ignored`: started as a non-interactive shell starts a background job (`cmd &`)."""
    proc = subprocess.Popen([sys.executable, "-m", "nodes.cli", "run", "--ui", "--port", str(port), "--comfyui",
                             str(comfyui_root), "--demo-dir", str(demo_home)], cwd=PACK_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=ignoring_sigint if sigint_ignored else None)
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.time() + 300
    while not any("Ctrl+C stops ComfyUI" in line for line in lines):
        assert proc.poll() is None and time.time() < deadline, "".join(lines)
        time.sleep(0.5)
    return proc, lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT in a background job"])
def test_ui_stops_comfyui_on_signals(comfyui_root, demo_home, signum):
    """A `kill` or a closed terminal stops `run --ui` as Ctrl+C does: the ComfyUI child goes too and its port
    closes; its log is its own (`run` writes another). Ctrl+C's SIGINT too where the shell started `run --ui` as a
    background job, which starts it with SIGINT ignored."""
    port = free_port()
    proc, lines = start_ui(comfyui_root, demo_home, port, sigint_ignored=signum == signal.SIGINT)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).close()  # up
        assert any("comfyui_ui.log" in line for line in lines), "".join(lines)
        proc.send_signal(signum)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def test_the_console_says_what_long_nodes_do_and_how_fast(capsys):
    """What `run` prints for the long-video node: the node, its steps with their rate (a new bar starts its own),
    what it does between them (ComfyUI's progress text), and the seconds it took."""
    from longcat_pack.nodes.cli.demo_set import demo_setup
    from longcat_pack.nodes.cli.workflow_runner import progress_printer, shipped_workflow
    workflow = shipped_workflow("longcat_long_video", demo_setup())
    now = [0.0]
    show = progress_printer(workflow, clock=lambda: now[0])
    show({"type": "executing", "data": {"node": str(workflow.ids()["long_video"])}})
    show({"type": "progress_text", "data": {"node": "9", "text": "segment 1/2: encoding the last 5 frames"}})
    for value in (1, 2, 3):
        now[0] += 2
        show({"type": "progress", "data": {"value": value, "max": 4}})
    now[0] += 5
    show({"type": "progress_text", "data": {"node": "9", "text": "segment 1/2: decoding 9 frames"}})
    show({"type": "progress", "data": {"value": 1, "max": 14}})
    show({"type": "executing", "data": {"node": None}})
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  Continue the clip, segment after segment", "    segment 1/2: encoding the last 5 frames",
        "    step 1/4", "    step 2/4 (2.0 s/step)", "    step 3/4 (2.0 s/step)", "    segment 1/2: decoding 9 frames",
        "    step 1/14", "    (11.0 s)"]


def test_the_prompt_option_sets_the_first_clips_prompt_only():
    """`run --prompt` replaces the first clip's prompt; the story's continuation prompts, the negative prompt and
    the refinement's empty prompt stay as the workflow has them."""
    from longcat_pack.nodes.cli.workflow_runner import with_prompt_text
    from longcat_pack.nodes.workflows.catalog import SHIPPED
    from longcat_pack.nodes.workflows.graph import api_format
    for name in ("longcat_story", "longcat_t2v_base_refine"):
        before = api_format(SHIPPED[name]())
        after = with_prompt_text(before, "a red fox", None)
        changed = {before[k]["_meta"]["title"] for k in before if before[k] != after[k]}
        assert changed == ({"Prompt 0: the first clip"} if name == "longcat_story" else {"Prompt"})
