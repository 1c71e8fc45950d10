"""One 720p refinement step (grid 48 x 44 x 80 = 168,960 tokens) with block-sparse attention (sparsity 0.9375)
against dense attention, in the same run; also the self-attention alone for one block. Dense and sparse are timed in
interleaved rounds (min and median of each and of the ratios paired by round).
Full size (48 blocks, random bf16 weights) on a GPU; a scaled-down model on CPU.
Usage: python bench/bench_refine_step.py [--blocks N]   (fewer blocks: per-block times scale linearly)
"""
import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import FULL_CONFIG, LATENT_720P, SMALL_CONFIG, build_random_dit, device_name, load_pack, \
    interleaved, paired_ratios, random_inputs, summary  # noqa: E402

load_pack()
from longcat_pack.nodes.core.block_sparse_attention import BlockSparseAttention, block_sparse_attention  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = device.type == "cuda"
    config = dict(FULL_CONFIG if full else SMALL_CONFIG)
    if args.blocks:
        config["depth"] = args.blocks
    dtype = torch.bfloat16
    T, H, W = LATENT_720P if full else (8, 16, 16)
    grid = (T, H // 2, W // 2)
    tokens = grid[0] * grid[1] * grid[2]
    print(f"device: {device_name(device)}; depth {config['depth']}, {tokens} tokens, grid {grid}")
    model = build_random_dit(config, dtype, device)
    x, context = random_inputs(config, (T, H, W), dtype, device)
    t = torch.tensor([500.0], device=device)
    q = torch.randn(1, config["num_heads"], tokens, 128, device=device, dtype=dtype)
    if full:
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        attention = interleaved({"dense": lambda: F.scaled_dot_product_attention(q, q, q),
                                 "BSA": lambda: block_sparse_attention(q, q, q, grid)}, device, rounds=args.rounds)
        del q
        sparse = BlockSparseAttention()
        steps = interleaved({"dense": (lambda: model.set_self_attention(None), lambda: model(x, t, context)),
                             "BSA": (lambda: model.set_self_attention(sparse), lambda: model(x, t, context))},
                            device, rounds=args.rounds)
        model.set_self_attention(None)
    for title, samples, scale, unit in (("self-attention, one block", attention, 1e3, "ms"),
                                        ("one refinement step", steps, 1, "s")):
        print(f"{title}:")
        for line in summary(samples, baseline="dense", scale=scale, unit=unit):
            print("  " + line)
        speedup = paired_ratios(samples, "dense", "BSA")
        print(f"  speed-up, paired by round: min {min(speedup):.2f}x, median {statistics.median(speedup):.2f}x"
              + (" (target >= 4.5x)" if samples is steps else ""))
    if full:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
