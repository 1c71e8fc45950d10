"""Merge, restore and switch of a LongCat-shaped LoRA stack, each as a ratio to a plain copy of the same weights
measured in the same run; plus the runtime-mode cost on the targeted linears of one 480p block.

Full size (48 blocks, hidden 4096, FFN 11008, rank 128, bf16) on a GPU; a scaled-down shape on CPU.
Usage: python bench/bench_lora_patch.py [--blocks N] [--tokens N]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import device_name, load_pack, timed  # noqa: E402

pack = load_pack()
from longcat_pack.nodes.core.demo_files import lora_target_shapes  # noqa: E402
from longcat_pack.nodes.core.lora_files import LoraDescription, LoraFactor  # noqa: E402
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


def random_description(shapes, rank, seed, name):
    """An official-layout LoRA held in memory (fp32 factors, alpha/rank 0.5), as the reader would return it."""
    gen = torch.Generator().manual_seed(seed)
    targets = {}
    for module, (out, inp, pieces) in shapes.items():
        down = torch.randn(pieces * rank, inp, generator=gen) * 0.02
        rows = out // pieces
        targets[module] = [LoraFactor(None if pieces == 1 else (j * rows, (j + 1) * rows),
                                      down[j * rank:(j + 1) * rank], torch.randn(rows, rank, generator=gen) * 0.02,
                                      0.5, pieces) for j in range(pieces)]
    ratios = {m: 0.5 for m in shapes}
    return LoraDescription(name, "longcat", targets, ratios, [rank], 0.5, {}, [])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--tokens", type=int, default=None)
    args = parser.parse_args()
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
    print(f"prepare both stacks (host fp32 -> device {dtype}, validated): {time.perf_counter() - t0:.2f} s")

    copies = [torch.empty_like(w) for w in targeted]
    copy_time = timed(lambda: [c.copy_(w) for c, w in zip(copies, targeted)], device, 5)
    del copies
    merger = WeightMerger(root)
    originals = {m: weights[m].data for m in refine_shapes}

    def merge_distill():
        merger.merge(prepared_distill)

    def restore_then_merge():
        merger.restore()
        merger.merge(prepared_distill)

    merge_times, restore_times, switch_times = [], [], []
    for _ in range(5):
        merger.restore()
        merge_times.append(timed(merge_distill, device, 1, warmup=0))
        restore_times.append(timed(merger.restore, device, 1, warmup=0))
        merger.merge(prepared_distill)
        switch_times.append(timed(lambda: merger.merge(prepared_refine), device, 1, warmup=0))
    merger.restore()
    exact = all(weights[m].data is originals[m] or torch.equal(weights[m].data, originals[m]) for m in refine_shapes)

    merge, restore, switch = (statistics.median(t) for t in (merge_times, restore_times, switch_times))
    print(f"plain copy of the distill-targeted weights: {copy_time * 1e3:8.2f} ms")
    print(f"merge distill (backup kept on device):      {merge * 1e3:8.2f} ms  ratio {merge / copy_time:.2f}x (target <= 1.3x)")
    print(f"restore:                                    {restore * 1e3:8.2f} ms  ratio {restore / copy_time:.2f}x")
    print(f"switch distill -> refine (restore + merge): {switch * 1e3:8.2f} ms  ratio {switch / copy_time:.2f}x "
          f"(target <= 2.5x; refine targets {sum(w.numel() for m, w in weights.items() if m in refine_shapes) / sum(w.numel() for w in targeted):.2f}x the bytes)")
    print(f"restore bit-exact after all cycles: {exact}")
    if full:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")
    first = timed(lambda: merger.merge(prepared_distill, backup_on_device=False), device, 1, warmup=0)
    host_restore = timed(merger.restore, device, 1, warmup=0)
    again = timed(lambda: merger.merge(prepared_distill, backup_on_device=False), device, 1, warmup=0)
    host_switch = timed(lambda: merger.merge(prepared_refine, backup_on_device=False), device, 1, warmup=0)
    merger.forget_host_copies()
    print(f"pinned-host backup (when the device copy does not fit): first merge {first * 1e3:.0f} ms (allocates and "
          f"fills the host copy), later merges {again * 1e3:.1f} ms ({again / copy_time:.2f}x), restore "
          f"{host_restore * 1e3:.1f} ms, switch {host_switch * 1e3:.1f} ms ({host_switch / copy_time:.2f}x)")
    del prepared_refine, prepared_distill
    runtime_overhead(root, distill_shapes, distill, tokens, hidden, dtype, device)


def runtime_overhead(root, shapes, distill, tokens, hidden, dtype, device):
    """Targeted linears of block 0 at 480p token count, plain vs runtime LoRA (fused add)."""
    block = [m for m in shapes if m.startswith("blocks.0.")]
    block_desc = LoraDescription("d", "longcat", {m: distill.targets[m] for m in block}, {m: 0.5 for m in block},
                                 distill.ranks, 0.5, {}, [])
    runtime = RuntimeLora(root, prepare_stack([(block_desc, 0.5)], linear_weights(root)))
    x = torch.randn(tokens, hidden, device=device, dtype=dtype)
    h = torch.randn(tokens, shapes["blocks.0.ffn.w2"][1], device=device, dtype=dtype)
    text = torch.randn(512, hidden, device=device, dtype=dtype)
    mods = {m: root.get_submodule(m) for m in block}

    def forward():
        for m, layer in mods.items():
            layer(h if m.endswith("ffn.w2") else text if m.endswith("kv_linear") else x)

    plain = timed(forward, device, 10)
    runtime.attach()
    with_lora = timed(forward, device, 10)
    runtime.detach()
    q = torch.randn(1, hidden // 128, tokens, 128, device=device, dtype=dtype)
    sdpa = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q), device, 5)
    print(f"block-0 targeted linears at {tokens} tokens: plain {plain * 1e3:.2f} ms, runtime LoRA {with_lora * 1e3:.2f} ms "
          f"(+{(with_lora - plain) / plain * 100:.1f}% of the linears)")
    print(f"runtime overhead vs a layer floor (linears + self-attention SDPA {sdpa * 1e3:.2f} ms): "
          f"{(with_lora - plain) / (plain + sdpa) * 100:.2f}% (target <= 3%)")


if __name__ == "__main__":
    main()
