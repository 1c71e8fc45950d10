"""The device check's first part: every shipped workflow, on the demo set, through a real ComfyUI server on this
machine's GPU (ComfyUI 0.33 turns DynamicVRAM on by itself on NVIDIA). Prints per workflow the status, the wall
time, the saved video and what ComfyUI's log says about DynamicVRAM and the LongCat model's patcher.
Usage: COMFYUI_PATH=... python bench/device_workflows.py [demo folder]
"""
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import load_pack  # noqa: E402

load_pack()
from longcat_pack.nodes.cli.comfyui_checkout import comfyui_version, find_comfyui  # noqa: E402
from longcat_pack.nodes.cli.demo_set import demo_setup, write_demo_inputs, write_demo_set  # noqa: E402
from longcat_pack.nodes.cli.workflow_runner import demo_server, saved_files, shipped_workflow  # noqa: E402
from longcat_pack.nodes.workflows.catalog import SHIPPED  # noqa: E402
from longcat_pack.nodes.workflows.graph import api_format  # noqa: E402

LOG_LINES = ("DynamicVRAM", "aimdo", "Requested to load", "loaded completely", "loaded partially", "LongCat")


def main(home=None):
    root = find_comfyui()
    if root is None:
        sys.exit("ComfyUI not found (COMFYUI_PATH)")
    home = Path(home or tempfile.mkdtemp(prefix="longcat_device_"))
    print(f"ComfyUI {comfyui_version(root)} at {root}; demo set in {home}", flush=True)
    write_demo_set(home, root)
    server = demo_server(root, home)
    write_demo_inputs(server.base / "input")
    server.start(timeout=600)
    print(f"server on {'CPU' if server.cpu else 'the GPU'}", flush=True)
    failed = 0
    try:
        for name in SHIPPED:
            t0 = time.perf_counter()
            _, history = server.run(api_format(shipped_workflow(name, demo_setup())), timeout=1800)
            status = history.get("status", {}).get("status_str", "no result")
            failed += status != "success"
            files = [f.name for f in saved_files(server, history)]
            print(f"{name}: {status} in {time.perf_counter() - t0:.1f} s, saved {files}", flush=True)
    finally:
        server.stop()
        for line in server.log_text().splitlines():
            if any(key in line for key in LOG_LINES):
                print(f"  log: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
