"""The fused GPU merge kernel (CUDA + Triton only): one rounding like the torch path, exact restore."""
import pytest
import torch

from longcat_pack.nodes.core import merge_kernel
from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import WeightMerger, linear_weights, prepare_stack
from rounding_reference import SHARE_ROUNDED_ONCE, exact_merges, share_rounded_once
from test_lora_patcher import assert_bytes_equal, linear_tree, snapshot
from safetensors.torch import load_file


def assert_merged_once(merged, base, stack):
    """16-bit weights: >= 99.99% of the elements equal to the float64 merge rounded once; fp32: within fp32
    accumulation noise of it."""
    dtype = next(iter(merged.values())).dtype
    if dtype == torch.float32:
        for module, exact in exact_merges(base, stack).items():
            torch.testing.assert_close(merged[module].double(), exact, atol=2e-6, rtol=1e-6)
        return
    share, close = share_rounded_once(merged, base, stack)
    assert share >= SHARE_ROUNDED_ONCE and close, (dtype, share, close)


def assert_grouped_merge_rounds_once(golden_dir, dtype, device):
    """One grouped launch merges every target of a two-LoRA stack (up-blocks of fused weights included) into fresh
    outputs, rounded once. Returns (weights, prepared stack, stack) for further checks."""
    root = linear_tree(load_file(str(golden_dir / "tiny_dit.safetensors")), dtype).to(device)
    stack = [(read_lora(golden_dir / "lora_distill.safetensors"), 0.7),
             (read_lora(golden_dir / "lora_refine.safetensors"), 0.5)]
    weights = linear_weights(root)
    prepared = prepare_stack(stack, weights)
    outs = {name: torch.full_like(weights[name], float("nan")) for name in prepared}
    merge_kernel.grouped_merge([(weights[name].data, target, outs[name]) for name, target in prepared.items()])
    assert_merged_once({n: o.cpu() for n, o in outs.items()}, {n: w.cpu() for n, w in weights.items()}, stack)
    return weights, prepared, stack


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available() or merge_kernel.triton is None,
                                 reason="the fused merge kernel needs CUDA and Triton (runs on the GPU machine)")]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_grouped_kernel_rounds_once(golden_dir, dtype):
    """out = W + U @ D rounded once (as core's merge), for every target of a two-LoRA stack."""
    assert_grouped_merge_rounds_once(golden_dir, dtype, "cuda")


def test_fused_merge_restores_bit_exactly(golden_dir):
    base = load_file(str(golden_dir / "tiny_dit.safetensors"))
    root = linear_tree(base, torch.bfloat16).cuda()
    original = snapshot(root)
    merger = WeightMerger(root)
    stacks = [prepare_stack([(read_lora(golden_dir / f), 0.5)], linear_weights(root))
              for f in ("lora_distill.safetensors", "lora_refine.safetensors")]
    for cycle in range(20):
        merger.merge(stacks[cycle % 2], backup_on_device=cycle % 3 != 0)
        assert any(not torch.equal(w, original[n]) for n, w in linear_weights(root).items())
    merger.restore()
    assert_bytes_equal(root, original)


def test_stacked_ranks_wider_than_the_kernel(golden_dir, tmp_path):
    """Two rank-128 LoRAs on one weight (256 ranks per segment) take the torch path inside the same merge: rounded
    once as well, restored exactly."""
    from lora_writers import random_factor, write_kohya
    base = load_file(str(golden_dir / "tiny_dit.safetensors"))
    g = torch.Generator().manual_seed(0)
    loras = []
    for i in range(2):
        down, (up,) = random_factor(768, 256, 128, g)
        loras.append(read_lora(write_kohya(tmp_path / f"r128_{i}.safetensors", {"blocks.0.attn.qkv": (down, up, 128.0)})))
    root = linear_tree(base, torch.bfloat16).cuda()
    original = snapshot(root)
    weights = linear_weights(root)
    prepared = prepare_stack([(loras[0], 1.0), (loras[1], 1.0)], weights)
    assert not merge_kernel.fits(prepared["blocks.0.attn.qkv"])
    merger = WeightMerger(root)
    merger.merge(prepared)
    stack = [(loras[0], 1.0), (loras[1], 1.0)]
    assert_merged_once({"blocks.0.attn.qkv": root.get_submodule("blocks.0.attn.qkv").weight.cpu()},
                       {"blocks.0.attn.qkv": original["blocks.0.attn.qkv"].cpu()}, stack)
    merger.restore()
    assert_bytes_equal(root, original)
