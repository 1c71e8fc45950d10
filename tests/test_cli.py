"""The README's main job: `python -m nodes.cli inspect` reports what the loader sees in each file."""
import subprocess
import sys

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
