"""The fused GPU merge kernel (CUDA + Triton only): same result as the torch path, exact restore."""
import pytest
import torch

from longcat_pack.nodes.core import merge_kernel
from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import WeightMerger, linear_weights, merge_segments, prepare_stack
from test_lora_patcher import assert_bytes_equal, linear_tree, snapshot
from safetensors.torch import load_file

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or merge_kernel.triton is None,
                                reason="the fused merge kernel needs CUDA and Triton (runs on the GPU machine)")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_grouped_kernel_matches_torch_addmm(golden_dir, dtype):
    base = load_file(str(golden_dir / "tiny_dit.safetensors"))
    root = linear_tree(base, dtype).cuda()
    stack = [(read_lora(golden_dir / "lora_distill.safetensors"), 0.7),
             (read_lora(golden_dir / "lora_refine.safetensors"), 0.5)]
    prepared = prepare_stack(stack, linear_weights(root))
    weights = linear_weights(root)
    merges, outs = [], {}
    for name, target in prepared.items():
        w = weights[name].data
        outs[name] = (torch.empty_like(w), torch.empty_like(w))
        merges.append((w, target, outs[name][0]))
        merge_segments(w, target, outs[name][1])
    merge_kernel.grouped_merge(merges)
    for name, (fused, reference) in outs.items():
        ulp = torch.finfo(dtype).eps * reference.float().abs().clamp_min(1e-3)
        assert ((fused.float() - reference.float()).abs() <= ulp).all(), name


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
    fused, reference = torch.empty_like(w), torch.empty_like(w)
    merge_kernel.grouped_merge([(w, target, fused)])
    merge_segments(w, target, reference)
    ulp = torch.finfo(torch.bfloat16).eps * reference.float().abs().clamp_min(1e-3)
    assert ((fused.float() - reference.float()).abs() <= 2 * ulp).all()
