"""The fused GPU merge kernel (CUDA + Triton only): same result as the torch path, exact restore."""
import pytest
import torch

from longcat_pack.nodes.core import merge_kernel
from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import WeightMerger, linear_weights, prepare_stack
from test_lora_patcher import assert_bytes_equal, linear_tree, snapshot
from safetensors.torch import load_file

def exact_merge(weight, target):
    """W + U @ D per segment in float64 from the same (already rounded) factors."""
    exact = weight.double().clone()
    for seg in target.segments:
        exact[seg.start:seg.end] += seg.up.double() @ target.down[seg.col_start:seg.col_end].double()
    return exact


def assert_rounded_once(merged, weight, target):
    """Within one rounding of the float64 result (plus fp32 accumulation noise on the delta)."""
    exact = exact_merge(weight, target)
    error = (merged.double() - exact).abs()
    bound = torch.finfo(weight.dtype).eps * exact.abs() + 1e-5 * (exact - weight.double()).abs().max()
    assert (error <= bound).all(), error.max()


def assert_grouped_merge_rounds_once(golden_dir, dtype, device):
    """One grouped launch merges every target of a two-LoRA stack into fresh outputs, each within one rounding of
    the float64 result. Returns (weights, prepared stack) for further checks."""
    root = linear_tree(load_file(str(golden_dir / "tiny_dit.safetensors")), dtype).to(device)
    stack = [(read_lora(golden_dir / "lora_distill.safetensors"), 0.7),
             (read_lora(golden_dir / "lora_refine.safetensors"), 0.5)]
    weights = linear_weights(root)
    prepared = prepare_stack(stack, weights)
    outs = {name: torch.full_like(weights[name], float("nan")) for name in prepared}
    merge_kernel.grouped_merge([(weights[name].data, target, outs[name]) for name, target in prepared.items()])
    for name, out in outs.items():
        assert_rounded_once(out, weights[name].data, prepared[name])
    return weights, prepared


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available() or merge_kernel.triton is None,
                                 reason="the fused merge kernel needs CUDA and Triton (runs on the GPU machine)")]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_grouped_kernel_rounds_once(golden_dir, dtype):
    """out = W + U @ D within one rounding of the float64 result, for every target of a two-LoRA stack.
    (cuBLAS's half-precision addmm, the torch path, measured up to ~1.5 ulp off on an H100, so it is not the
    yardstick here; on the CPU the torch path is checked in test_lora_patcher.)"""
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
    """Two rank-128 LoRAs on one weight (256 ranks per segment) take torch's addmm inside the same merge:
    within cuBLAS's half-precision accuracy (measured ~1.5 ulp on an H100) of the exact sum, restored exactly."""
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
    exact = exact_merge(original["blocks.0.attn.qkv"], prepared["blocks.0.attn.qkv"])
    merged = root.get_submodule("blocks.0.attn.qkv").weight.double()
    assert ((merged - exact).abs() <= 2 * torch.finfo(torch.bfloat16).eps * exact.abs() + 1e-5).all()
    merger.restore()
    assert_bytes_equal(root, original)
