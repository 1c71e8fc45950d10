"""CPU step time of today's DiT against the DiT of an earlier commit (default: before the per-token work ran over
chunks of frames), same weights, same inputs, measured in one run, alternating the two; min and median of each
and of the ratios paired by round.

The shape is scaled down (CPU: hidden 1024, 6,144 tokens in 24 latent frames as at 480p / 93 frames) and runs
with the DiT's own chunking rules: self-attention in 3 chunks of 2,048 tokens (MIN_CHUNK_TOKENS), the rest in 3.
With --full-size-chunks MIN_CHUNK_TOKENS is scaled down with the tokens, so the chunk counts are those of the full
480p step (12 and 3) on chunks of 512 tokens: there CPU GEMMs and attention lose efficiency that chunks of 3,120
tokens at hidden 4096 do not, so that ratio overstates the cost.
CPU time of the process is printed next to wall time: on a shared machine it is the steadier of the two. On an
oversubscribed machine every multi-threaded op also waits for its threads to be scheduled (about 15 ms an op on
the 2-core development box at load 7), which weighs on the many small ops of small chunks: --threads 1 removes it.
Usage: python bench/bench_chunked_step_speed.py [--against REF] [--repeats N] [--dtype bf16|fp32]
       [--full-size-chunks] [--threads N]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import BEFORE_CHUNKED_DIT, core_module_at, device_name, load_pack, random_inputs, \
    summary  # noqa: E402

load_pack()
from longcat_pack.nodes.core import frame_chunks  # noqa: E402
from longcat_pack.nodes.core.demo_files import random_dit  # noqa: E402

CONFIG = dict(hidden_size=1024, depth=2, num_heads=8, caption_channels=1024, adaln_tembed_dim=256, ffn_hidden=2752)
LATENT = (24, 32, 32)  # 24 x 16 x 16 = 6,144 tokens
FULL_TOKENS = 37_440  # 480p / 93 frames


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default=BEFORE_CHUNKED_DIT, help="git ref of the earlier DiT (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--full-size-chunks", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    device = torch.device("cpu")
    T, H, W = LATENT
    tokens = T * (H // 2) * (W // 2)
    if args.full_size_chunks:
        frame_chunks.MIN_CHUNK_TOKENS = max(1, frame_chunks.MIN_CHUNK_TOKENS * tokens // FULL_TOKENS)
    chunks = frame_chunks.FrameChunks((T, H // 2, W // 2))
    counts = [len(list(chunks(parts))) for parts in (frame_chunks.ATTENTION_PARTS, frame_chunks.TOKEN_PARTS)]

    today = random_dit(CONFIG, dtype, device)
    before = core_module_at("dit", args.against).LongCatDiT(**CONFIG, dtype=dtype).eval().requires_grad_(False)
    before.load_state_dict(today.state_dict())
    x, context = random_inputs(CONFIG, LATENT, dtype, device)
    t = torch.tensor([700.0])
    print(f"device: {device_name(device)}; {args.dtype}, hidden {CONFIG['hidden_size']}, depth {CONFIG['depth']}, "
          f"{tokens} tokens in {T} frames; MIN_CHUNK_TOKENS {frame_chunks.MIN_CHUNK_TOKENS}: self-attention in "
          f"{counts[0]} chunks, the rest in {counts[1]}")

    times = {"today": [], "before": []}
    cpu_times = {"today": [], "before": []}
    with torch.inference_mode():
        outputs = {name: model(x, t, context) for name, model in (("today", today), ("before", before))}  # warm-up
        for i in range(args.repeats):
            order = (("today", today), ("before", before)) if i % 2 == 0 else (("before", before), ("today", today))
            for name, model in order:
                start, cpu_start = time.perf_counter(), time.process_time()
                model(x, t, context)
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
    diff = (outputs["today"] - outputs["before"]).abs().max().item()
    scale = outputs["before"].abs().max().item()
    for label, measured in (("wall", times), ("CPU", cpu_times)):
        print(f"one step, {label} time (target: today <= 1.05x {args.against}):")
        for line in summary(measured, baseline="before", scale=1, unit="s"):
            print("  " + line)
    print(f"outputs: max abs difference {diff:.2e} (max |out| {scale:.2f})")


if __name__ == "__main__":
    main()
