"""Merged weights round once, like ComfyUI core's merge: at least 99.99% of the elements equal the float64 merge
rounded once to the weight's dtype (bfloat16 and float16), for stacked LoRAs, up-blocks and q/k/v pieces of fused
weights and dense `.diff` deltas, merged in place or out of place; runtime mode's outputs are the exact ones rounded
to the output dtype."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, WeightMerger, linear_weights, prepare_stack
from lora_writers import random_factor, write_kohya, write_official
from rounding_reference import SHARE_ROUNDED_ONCE, exact_merges, share_rounded_once
from test_lora_patcher import linear_tree


@pytest.fixture(scope="module")
def base_sd(golden_dir):
    return load_file(str(golden_dir / "tiny_dit.safetensors"))


def golden(golden_dir, name):
    return read_lora(golden_dir / f"lora_{name}.safetensors")


def split_pieces(tmp_path):
    """q/k/v and k/v pieces of the fused weights (official keys) and a kohya LoRA on the whole fused qkv."""
    g = torch.Generator().manual_seed(5)
    pieces = {f"blocks.{i}.attn.{n}": (*random_factor(256, 256, 4, g), 0.5) for i in (0, 1) for n in "qkv"}
    pieces.update({f"blocks.1.cross_attn.{n}_linear": (*random_factor(256, 256, 4, g), 0.5) for n in "kv"})
    down, (up,) = random_factor(768, 256, 8, g)
    fused = write_kohya(tmp_path / "fused_qkv.safetensors", {"blocks.0.attn.qkv": (down, up, 4.0)})
    return [read_lora(write_official(tmp_path / "split_qkv.safetensors", pieces)), read_lora(fused)]


def dense_deltas(tmp_path):
    """`.diff` deltas (as ComfyUI's loaders write them) on wide, tall and fused targets."""
    g = torch.Generator().manual_seed(6)
    shapes = {"blocks.0.ffn.w1": (768, 256), "blocks.0.ffn.w2": (256, 768), "blocks.1.attn.qkv": (768, 256),
              "blocks.1.cross_attn.k_linear": (256, 256)}
    sd = {f"diffusion_model.{m}.diff": torch.randn(*shape, generator=g) * 0.006 for m, shape in shapes.items()}
    save_file(sd, str(tmp_path / "dense.safetensors"))
    return read_lora(tmp_path / "dense.safetensors")


def stack_for(case, golden_dir, tmp_path):
    distill, refine = golden(golden_dir, "distill"), golden(golden_dir, "refine")
    if case == "stacked":  # up-blocks of fused qkv / kv / adaLN rows, two LoRAs on most targets
        return [(distill, 0.7), (refine, 0.5)]
    if case == "split":
        split, fused = split_pieces(tmp_path)
        return [(split, 1.0), (fused, 0.8), (distill, -0.4)]
    return [(dense_deltas(tmp_path), 0.9), (distill, 0.6)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case,backup_on_device", [("stacked", True), ("stacked", False), ("split", True),
                                                   ("diff", False)])
def test_merge_rounds_once(base_sd, golden_dir, tmp_path, dtype, case, backup_on_device):
    stack = stack_for(case, golden_dir, tmp_path)
    root = linear_tree(base_sd, dtype)
    base = {m: w.clone() for m, w in linear_weights(root).items()}
    WeightMerger(root).merge(prepare_stack(stack, linear_weights(root)), backup_on_device=backup_on_device)
    share, close = share_rounded_once(linear_weights(root), base, stack)
    assert share >= SHARE_ROUNDED_ONCE and close, (share, close)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_runtime_output_is_rounded_like_the_merge(base_sd, golden_dir, dtype):
    """Runtime mode computes its delta like the merge (fp32 factors and products): every output element is within
    the output dtype's rounding of the float64 output x @ (W + delta)^T: one rounding of the plain linear's output
    and one of the sum (plus fp32 accumulation noise), not the factors' rounding."""
    stack = [(golden(golden_dir, "distill"), 0.7), (golden(golden_dir, "refine"), 0.5)]
    root = linear_tree(base_sd, dtype)
    base = {m: w.clone() for m, w in linear_weights(root).items()}
    RuntimeLora(root, prepare_stack(stack, linear_weights(root))).attach()
    g = torch.Generator().manual_seed(0)
    half_step = torch.finfo(dtype).eps / 2
    for module, exact_weight in exact_merges(base, stack).items():
        x = torch.randn(64, exact_weight.shape[1], generator=g).to(dtype)
        got = root.get_submodule(module)(x).double()
        exact = x.double() @ exact_weight.t()
        plain = x.double() @ base[module].double().t()
        fp32_noise = 2 ** -16 * (x.double().abs() @ exact_weight.abs().t())
        assert ((got - exact).abs() <= half_step * (plain.abs() + got.abs()) + fp32_noise).all(), module
