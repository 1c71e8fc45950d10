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


pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or merge_kernel.triton is None,
                                reason="the fused merge kernel needs CUDA and Triton (runs on the GPU machine)")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_grouped_kernel_rounds_once(golden_dir, dtype):
    """out = W + U @ D within one rounding of the float64 result, for every target of a two-LoRA stack.
    (cuBLAS's half-precision addmm, the torch path, measured up to ~1.5 ulp off on an H100, so it is not the
    yardstick here; on the CPU the torch path is checked in test_lora_patcher.)"""
    base = load_file(str(golden_dir / "tiny_dit.safetensors"))
    root = linear_tree(base, dtype).cuda()
    stack = [(read_lora(golden_dir / "lora_distill.safetensors"), 0.7),
             (read_lora(golden_dir / "lora_refine.safetensors"), 0.5)]
    weights = linear_weights(root)
    prepared = prepare_stack(stack, weights)
    outs = {name: torch.full_like(weights[name], float("nan")) for name in prepared}
    merge_kernel.grouped_merge([(weights[name].data, target, outs[name]) for name, target in prepared.items()])
    for name, out in outs.items():
        assert_rounded_once(out, weights[name].data, prepared[name])


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


def test_ranks_above_one_pass(golden_dir, tmp_path):
    """Stacked ranks beyond the kernel's 128-wide rank block take several passes and still match."""
    from lora_writers import random_factor, write_kohya
    base = load_file(str(golden_dir / "tiny_dit.safetensors"))
    g = torch.Generator().manual_seed(0)
    down, (up,) = random_factor(768, 256, 200, g)
    lora = read_lora(write_kohya(tmp_path / "r200.safetensors", {"blocks.0.attn.qkv": (down, up, 100.0)}))
    root = linear_tree(base, torch.bfloat16).cuda()
    w = root.get_submodule("blocks.0.attn.qkv").weight.data
    target = prepare_stack([(lora, 1.0)], linear_weights(root))["blocks.0.attn.qkv"]
    fused = torch.empty_like(w)
    merge_kernel.grouped_merge([(w, target, fused)])
    assert_rounded_once(fused, w, target)
