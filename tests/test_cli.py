"""The README's main job: `python -m nodes.cli inspect` reports what the loader sees in each file."""
import os
import shutil
import subprocess
import sys

import numpy as np

from conftest import PACK_ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "nodes.cli", "inspect", *args], cwd=PACK_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_inspect_official_refinement_file(golden_dir):
    result = run_cli(str(golden_dir / "lora_refine.safetensors"))
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
    result = run_cli(str(lora), str(dit))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("layout:            WanVideoWrapper / Kijai (Kijai/LongCat-Video_comfy)") == 2
    assert "alpha/rank:        0.5" in result.stdout
    assert "model:             LongCat-Video DiT, 2 blocks, hidden 256" in result.stdout
    assert "quantized layers:  22 float8_e4m3fn" in result.stdout  # 2 blocks x q k v o, cross q k v o, w1 w2 w3
    assert "split linears:     4 fused q/k/v kept as quantized pieces" in result.stdout


def test_demo_runs_on_a_bare_machine():
    result = run_cli("--demo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("alpha/rank:        0.5") == 2


def test_bad_file_is_reported_and_fails(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 4)
    result = run_cli(str(bad))
    assert result.returncode == 1
    assert "broken.safetensors: not a safetensors file" in result.stderr


def test_main_job_runs_the_workflow_on_the_demo_set(comfyui_root, tmp_path):
    """The README's main job: the shipped workflow headless through ComfyUI; no LongCat files here -> demo set."""
    result = subprocess.run([sys.executable, "-m", "nodes.cli", "run", "--workflow", "longcat_t2v_distill",
                             "--comfyui", str(comfyui_root)], cwd=PACK_ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DEMO SET" in result.stdout and "step 16/16" in result.stdout
    saved = [line.split("saved: ")[1] for line in result.stdout.splitlines() if line.startswith("saved: ")]
    assert len(saved) == 1 and saved[0].endswith(".mp4") and "DEMO_RANDOM" in saved[0]
    import av  # one of ComfyUI's requirements
    with av.open(saved[0]) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert frames.std() > 10  # noise from the random files, not the flat frames a NaN in the chain leaves


def pack_copy_outside_comfyui(tmp_path):
    """The pack's code in a folder of its own, as a fresh clone with no ComfyUI anywhere (not in the pack's
    .comfyui/, not around it, not in HOME); returns (folder, environment without COMFYUI_PATH)."""
    copy = tmp_path / "clone"
    for part in ("nodes", "workflows"):
        shutil.copytree(PACK_ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    return copy, {**env, "HOME": str(tmp_path / "home")}


def test_main_job_without_comfyui_says_so(tmp_path):
    clone, env = pack_copy_outside_comfyui(tmp_path)
    result = subprocess.run([sys.executable, "-m", "nodes.cli", "run", "--fallback-inspect"], cwd=clone,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "ComfyUI not found" in result.stderr and "alpha/rank:        0.5" in result.stdout
    result = subprocess.run([sys.executable, "-m", "nodes.cli", "run"], cwd=clone, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 2 and "ComfyUI not found" in result.stderr


def test_comfyui_path_that_points_nowhere_is_an_error(tmp_path):
    env = {**os.environ, "COMFYUI_PATH": str(tmp_path / "nowhere")}
    result = subprocess.run([sys.executable, "-m", "nodes.cli", "run", "--fallback-inspect"], cwd=PACK_ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert f"COMFYUI_PATH={tmp_path / 'nowhere'} is not a ComfyUI checkout" in result.stderr
