"""Where a demo run's time goes on a CPU: ComfyUI's Wan 2.1 VAE (the demo set's random one) decoding and encoding
the demo's clips, at the real VAE's width (96) against the demo's (demo_set.DEMO_VAE_DIM), in interleaved rounds
of one run (min, median and the ratios paired by round), with one sampling step of the demo DiT for scale.

Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_demo_vae.py [--rounds N]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from bench_common import device_name, interleaved, load_pack, summary, timed  # noqa: E402

load_pack()
from comfy_inprocess import import_comfy_core  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402
from longcat_pack.nodes.cli.demo_set import DEMO_VAE_DIM, write_demo_vae  # noqa: E402
from longcat_pack.nodes.core.demo_files import TINY_DIT, random_dit  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = find_comfyui()
    if root is None:
        sys.exit("no ComfyUI found: set COMFYUI_PATH")
    import_comfy_core(root, {})
    import comfy.sd
    import comfy.utils
    folder = Path(tempfile.mkdtemp(prefix="longcat_bench_vae_"))
    vaes = {}
    for dim in (96, DEMO_VAE_DIM):
        path = write_demo_vae(folder / f"vae_{dim}.safetensors", root, dim)
        vaes[dim] = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))
        print(f"VAE {dim} wide: {os.path.getsize(path) / 1e6:.0f} MB")
    gen = torch.Generator().manual_seed(0)
    stage1 = torch.randn(1, 16, 3, 8, 8, generator=gen)  # the demo's 9 frames at 64x64
    refine = torch.rand(29, 64, 64, 3, generator=gen)  # the i2v refinement's padded frames
    work = {"decode 9 frames": lambda v: v.decode(stage1), "encode 29 frames": lambda v: v.encode(refine)}
    cpu = torch.device("cpu")
    times = {name: interleaved({f"width {dim}": (lambda fn=fn, vae=vae: fn(vae)) for dim, vae in vaes.items()}, cpu,
                               rounds=args.rounds) for name, fn in work.items()}
    dit = random_dit(TINY_DIT, torch.float32, "cpu").eval()
    x, t = torch.randn(1, 16, 3, 8, 8), torch.tensor([500.0])
    context = torch.randn(1, 512, TINY_DIT["caption_channels"])
    with torch.no_grad():
        step = timed(lambda: dit(x, t, context), cpu, repeats=5)
    print(f"device: {device_name(cpu)}; {args.rounds} interleaved rounds after one warm-up round")
    for name, samples in times.items():
        print(f"{name}:")
        for line in summary(samples, baseline=f"width {DEMO_VAE_DIM}", scale=1, unit="s"):
            print("  " + line)
    print(f"one demo DiT forward (9 frames at 64x64): {step * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
