"""Merge, restore and switch of a LongCat-shaped LoRA stack, each as a ratio to a plain copy of the same weights
measured in the same run (interleaved rounds: copy, merge, restore, switch, copy, ...; min and median of each and of
the ratios paired by round); plus the runtime-mode cost on the targeted linears of one 480p block.

Full size (48 blocks, hidden 4096, FFN 11008, rank 128, bf16) on a GPU; a scaled-down shape on CPU.
Usage: python bench/bench_lora_patch.py [--blocks N] [--tokens N] [--rounds N]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import device_name, interleaved, load_pack, random_description, summary, timed  # noqa: E402

pack = load_pack()
from longcat_pack.nodes.core.demo_files import lora_target_shapes  # noqa: E402
from longcat_pack.nodes.core.lora_description import LoraDescription  # noqa: E402
from longcat_pack.nodes.core.lora_patcher import (RuntimeLora, WeightMerger, linear_weights,  # noqa: E402
                                                  prepare_stack)


def build_linears(shapes, dtype, device):
    root = torch.nn.Module()
    for module, (out, inp, _) in shapes.items():
        parent = root
        *path, leaf = module.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        layer = torch.nn.Linear(inp, out, bias=False, device=device, dtype=dtype)
        torch.nn.init.normal_(layer.weight, std=inp ** -0.5)
        parent.add_module(leaf, layer)
    return root.requires_grad_(False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    rounds = args.rounds
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = device.type == "cuda"
    hidden, ffn, rank, tembed = (4096, 11008, 128, 512) if full else (512, 1376, 16, 64)
    blocks = args.blocks or (48 if full else 8)
    tokens = args.tokens or (37440 if full else 2048)
    dtype = torch.bfloat16
    print(f"device: {device_name(device)}; {blocks} blocks, hidden {hidden}, FFN {ffn}, rank {rank}, {dtype}")

    config = dict(depth=blocks, hidden_size=hidden, ffn_hidden=ffn, adaln_tembed_dim=tembed)
    distill_shapes = lora_target_shapes(config)
    refine_shapes = lora_target_shapes(config, refinement=True)
    root = build_linears(refine_shapes, dtype, device)
    weights = linear_weights(root)
    targeted = [weights[m] for m in distill_shapes]
    gbytes = sum(w.numel() * w.element_size() for w in targeted) / 1e9
    print(f"distill-targeted weights: {gbytes:.2f} GB")

    distill = random_description(distill_shapes, rank, 1, "distill")
    refine = random_description(refine_shapes, rank, 2, "refine")
    t0 = time.perf_counter()
    prepared_distill = prepare_stack([(distill, 0.5)], weights)
    prepared_refine = prepare_stack([(refine, 0.5)], weights)
    if full:
        torch.cuda.synchronize()
    print(f"prepare both stacks (host fp32 -> device fp32, validated): {time.perf_counter() - t0:.2f} s")

    copies = [torch.empty_like(w) for w in targeted]
    merger = WeightMerger(root)
    originals = {m: weights[m].data for m in refine_shapes}
    first_host = timed(lambda: merger.merge(prepared_distill, backup_on_device=False), device, 1, warmup=0)
    merger.restore()
    print(f"first merge with a pinned-host backup (allocates and fills the host copy): {first_host * 1e3:.0f} ms")
    merge = lambda **kw: lambda: merger.merge(prepared_distill, **kw)  # noqa: E731
    switch = lambda **kw: lambda: merger.merge(prepared_refine, **kw)  # noqa: E731
    samples = interleaved({
        "copy": lambda: [c.copy_(w) for c, w in zip(copies, targeted)],
        "merge distill (backup kept on device)": (merger.restore, merge()),
        "restore": (merge(), merger.restore),
        "switch distill -> refine (restore + merge)": (merge(), switch()),
        "merge, pinned-host backup": (merger.restore, merge(backup_on_device=False)),
        "restore from the host": (merge(backup_on_device=False), merger.restore),
        "switch, pinned-host backup": (merge(backup_on_device=False), switch(backup_on_device=False)),
    }, device, rounds=rounds)
    del copies
    merger.restore()
    exact = all(weights[m].data is originals[m] or torch.equal(weights[m].data, originals[m]) for m in refine_shapes)
    del merger  # and its pinned host copies
    print(f"interleaved rounds ({rounds}, after one warm-up round):")
    for line in summary(samples, baseline="copy"):
        print("  " + line)
    refine_bytes = sum(w.numel() for m, w in weights.items() if m in refine_shapes) / sum(w.numel() for w in targeted)
    print(f"targets: merge <= 1.3x the copy, switch <= 2.5x the copy (refine targets {refine_bytes:.2f}x the bytes)")
    print(f"restore bit-exact after all cycles: {exact}")
    if full:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")
    del prepared_refine, prepared_distill
    runtime_overhead(root, distill_shapes, distill, tokens, hidden, dtype, device, rounds)


def runtime_overhead(root, shapes, distill, tokens, hidden, dtype, device, rounds):
    """Targeted linears of block 0 at 480p token count, plain vs runtime LoRA, next to a self-attention SDPA."""
    block = [m for m in shapes if m.startswith("blocks.0.")]
    block_desc = LoraDescription("d", "longcat", {m: distill.targets[m] for m in block}, {m: 0.5 for m in block},
                                 distill.ranks, 0.5, {}, [])
    runtime = RuntimeLora(root, prepare_stack([(block_desc, 0.5)], linear_weights(root)))
    x = torch.randn(tokens, hidden, device=device, dtype=dtype)
    h = torch.randn(tokens, shapes["blocks.0.ffn.w2"][1], device=device, dtype=dtype)
    text = torch.randn(512, hidden, device=device, dtype=dtype)
    mods = {m: root.get_submodule(m) for m in block}
    q = torch.randn(1, hidden // 128, tokens, 128, device=device, dtype=dtype)

    def forward():
        for m, layer in mods.items():
            layer(h if m.endswith("ffn.w2") else text if m.endswith("kv_linear") else x)

    samples = interleaved({"linears": (runtime.detach, forward), "linears + runtime LoRA": (runtime.attach, forward),
                           "self-attention SDPA": lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)},
                          device, rounds=rounds)
    runtime.detach()
    print(f"block-0 targeted linears at {tokens} tokens, interleaved rounds:")
    for line in summary(samples, baseline="linears"):
        print("  " + line)
    overheads = [(lora - plain) / (plain + sdpa) * 100 for plain, lora, sdpa in zip(*samples.values())]
    print(f"runtime overhead vs a layer floor (linears + SDPA), per round: min {min(overheads):.2f}%, "
          f"median {statistics.median(overheads):.2f}% (target <= 3%)")


if __name__ == "__main__":
    main()
