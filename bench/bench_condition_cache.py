"""One video-continuation step with the condition cache (the reference's KV cache: the 4 condition latents' keys
and values computed once, the 20 noisy latents run alone) against the same step running the condition frames too
(the reference without the cache), at 480p/93 frames with num_cond_frames 13. Both ways give the same noisy-frame
output (checked here). The two are timed in interleaved rounds (min and median of each and of the ratios paired by
round). Full size (48 blocks, bf16) on a GPU; a scaled-down model and grid on CPU.
Usage: python bench/bench_condition_cache.py
"""
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import FULL_CONFIG, LATENT_480P, SMALL_CONFIG, build_random_dit, device_name, load_pack, \
    paired_ratios, random_inputs, summary, timed, interleaved  # noqa: E402

load_pack()
from longcat_pack.nodes.core.dit import ConditionCache, Rope3D  # noqa: E402

CONDITION_LATENTS = 4  # 13 frames
LATENT_SMALL = (24, 8, 16)  # the CPU stand-in: the same 24 latent frames on a smaller picture


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = device.type == "cuda"
    config = FULL_CONFIG if full else SMALL_CONFIG
    dtype = torch.bfloat16 if full else torch.float32
    T, H, W = LATENT_480P if full else LATENT_SMALL
    print(f"device: {device_name(device)}; depth {config['depth']}, hidden {config['hidden_size']}, "
          f"{T} latent frames of {H // 2}x{W // 2} tokens, {CONDITION_LATENTS} of them the condition")
    model = build_random_dit(config, dtype, device)
    x, context = random_inputs(config, (T, H, W), dtype, device)
    t = torch.full((1, T), 700.0, device=device)
    t[:, :CONDITION_LATENTS] = 0
    cache = ConditionCache()
    with torch.inference_mode():
        uncached = lambda: model(x, t, context, num_cond_latents=CONDITION_LATENTS)  # noqa: E731
        cached = lambda: model(x, t, context, num_cond_latents=CONDITION_LATENTS, condition_cache=cache)  # noqa: E731
        difference = (uncached()[:, :, CONDITION_LATENTS:] - cached()[:, :, CONDITION_LATENTS:]).abs().max()
        # the cache is warm: every step after the run's first
        samples = interleaved({"step, condition frames run too": uncached, "step from the condition cache": cached},
                              device, rounds=3)
        grid = (T, H // 2, W // 2)
        fill = timed(lambda: model.condition_kv(x[:, :, :CONDITION_LATENTS], Rope3D(grid, device), grid, dtype,
                                                model.attention),
                     device, repeats=3)
    for line in summary(samples, baseline="step, condition frames run too", scale=1, unit="s"):
        print(line)
    faster = paired_ratios(samples, "step, condition frames run too", "step from the condition cache")
    print(f"the cache is faster by, paired by round: min {min(faster):.2f}x, median {statistics.median(faster):.2f}x")
    print(f"filling the cache (once per run): {fill:8.3f} s")
    print(f"max abs difference of the noisy frames: {float(difference):.2e}")


if __name__ == "__main__":
    main()
