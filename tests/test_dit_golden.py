"""The plain-torch LongCat DiT against the reference outputs in shared/golden (fp32, CPU)."""
import json
import types
from collections import defaultdict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from longcat_pack.nodes.core.condition_attention import ConditionCache
from longcat_pack.nodes.core.dit import LongCatDiT
from longcat_pack.nodes.core.dit_config import dit_config_from_state_dict

CASES = ["a_base", "b_per_frame_t", "c_distill", "d_refine", "e_distill_m060", "f_batch2", "g_padding_garbage",
         "h_distill_plus_refine"]
TOL = dict(atol=1e-4, rtol=1e-4)
OFFICIAL_PREFIX = "lora___lorahyphen___"
OFFICIAL_DOT = "___lorahyphen___"


@pytest.fixture(scope="module")
def weights(golden_dir):
    return load_file(golden_dir / "tiny_dit.safetensors")


@pytest.fixture(scope="module")
def golden(golden_dir):
    cases = {c["name"]: c for c in json.loads((golden_dir / "cases.json").read_text())["cases"]}
    return cases, load_file(golden_dir / "cases.safetensors")


def build_model(weights, operations=nn):
    model = LongCatDiT(**dit_config_from_state_dict({k: tuple(v.shape) for k, v in weights.items()}),
                       operations=operations)
    model.load_state_dict(weights, strict=True)
    return model.eval()


def official_lora_deltas(path, multiplier):
    """Dense deltas of an official-format LoRA file: rows of block j = m * alpha_scale * up_j @ down[j*r:(j+1)*r].

    Test-local on purpose: it pins the file format independently of the pack's LoRA engine.
    """
    groups = defaultdict(dict)
    for key, tensor in load_file(path).items():
        module, _, role = key.partition(".")
        groups[module[len(OFFICIAL_PREFIX):].replace(OFFICIAL_DOT, ".")][role] = tensor
    deltas = {}
    for module, g in groups.items():
        down = g["lora_down.weight"]
        n = sum(role.startswith("lora_up.blocks.") for role in g) or 1
        ups = [g[f"lora_up.blocks.{j}.weight"] for j in range(n)] if n > 1 else [g["lora_up.weight"]]
        r = down.shape[0] // n
        delta = torch.cat([up @ down[j * r:(j + 1) * r] for j, up in enumerate(ups)])
        deltas[module] = multiplier * g["alpha_scale"].item() * delta
    return deltas


def merge_loras(model, golden_dir, loras):
    with torch.no_grad():
        for lora in loras:
            for module, delta in official_lora_deltas(golden_dir / lora["file"], lora["multiplier"]).items():
                model.get_submodule(module).weight += delta


def inputs(tensors, name):
    return tensors[f"{name}.x"], tensors[f"{name}.timestep"], tensors[f"{name}.text"], tensors[f"{name}.text_mask"]


def run(model, tensors, name, num_cond_latents=0):
    x, t, text, mask = inputs(tensors, name)
    with torch.no_grad():
        return model(x, t, text, mask, num_cond_latents=num_cond_latents)


def test_case_list_matches_golden(golden):
    assert sorted(golden[0]) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name, weights, golden, golden_dir):
    cases, tensors = golden
    case = cases[name]
    model = build_model(weights)
    merge_loras(model, golden_dir, case["lora"])
    out = run(model, tensors, name, case["inputs"]["num_cond_latents"])
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, tensors[case["output"]["key"]], **TOL)


class CountingCache(ConditionCache):
    computed = 0

    def get(self, condition, compute):
        def counted():
            self.computed += 1
            return compute()
        return super().get(condition, counted)


def test_cached_condition_equals_the_full_forward(weights, golden):
    """The reference's KV cache: the condition's keys and values computed once, the noisy frames run alone, give
    the noisy frames' output of the full forward (golden case b: condition frame at t = 0); the condition's output
    is then 0. A batch of two with the same condition (CFG) computes it once, for one sample."""
    cases, tensors = golden
    model = build_model(weights)
    x, t, text, mask = inputs(tensors, "b_per_frame_t")
    cache = CountingCache()
    with torch.no_grad():
        cached = model(x, t, text, mask, num_cond_latents=1, condition_cache=cache)
        expected = tensors[cases["b_per_frame_t"]["output"]["key"]]
        torch.testing.assert_close(cached[:, :, 1:], expected[:, :, 1:], **TOL)
        assert torch.equal(cached[:, :, :1], torch.zeros_like(cached[:, :, :1]))
        again = model(x.expand(2, -1, -1, -1, -1), t.expand(2, -1), text.expand(2, -1, -1, -1), mask.expand(2, -1),
                      num_cond_latents=1, condition_cache=cache)
        assert cache.computed == 1 and cache.condition.shape[0] == 1
        torch.testing.assert_close(again, cached.expand(2, -1, -1, -1, -1), atol=1e-5, rtol=1e-5)
        other = x.clone()
        other[:, :, :1] += 0.5  # another condition: computed anew
        model(other, t, text, mask, num_cond_latents=1, condition_cache=cache)
        assert cache.computed == 2


def test_lora_helper_matches_stored_deltas(golden, golden_dir):
    _, tensors = golden
    deltas = official_lora_deltas(golden_dir / "lora_distill.safetensors", 1.0)
    for module in ("blocks.0.attn.qkv", "blocks.0.cross_attn.kv_linear"):
        torch.testing.assert_close(deltas[module], tensors[f"delta.{module}"], atol=1e-6, rtol=1e-5)


def test_padding_garbage_equals_base(weights, golden):
    _, tensors = golden
    model = build_model(weights)
    assert torch.equal(run(model, tensors, "g_padding_garbage"), run(model, tensors, "a_base"))


def test_no_mask_zero_rows_are_padding(weights, golden):
    """ComfyUI's umT5 gives zeroed padding rows and no mask: zero rows must act as the padding."""
    _, tensors = golden
    model = build_model(weights)
    x, t, text, mask = inputs(tensors, "g_padding_garbage")
    zeroed = text * mask[:, None, :, None]
    with torch.no_grad():
        out = model(x, t, zeroed.squeeze(1))  # [B, L, C], no mask
    torch.testing.assert_close(out, tensors["a_base.out"], **TOL)
    assert torch.equal(out, run(model, tensors, "a_base"))


def test_state_dict_names_match_reference(weights):
    model = LongCatDiT(**dit_config_from_state_dict({k: tuple(v.shape) for k, v in weights.items()}))
    assert list(model.buffers()) == []
    assert set(model.state_dict()) == set(weights)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in weights.items()}
    model.load_state_dict(weights, strict=True)


def test_every_linear_is_called_as_a_module(weights, golden):
    """Runtime LoRA works through forward hooks, so every Linear must be called as a module."""
    _, tensors = golden
    model = build_model(weights)
    linears = {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    called = set()
    for name in linears:
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: called.add(name))
    run(model, tensors, "b_per_frame_t", num_cond_latents=1)
    assert called == linears


def test_layers_come_from_operations(weights, golden):
    """Inside ComfyUI the layers are comfy.ops classes: every Linear, Conv3d and LayerNorm must come from there."""
    _, tensors = golden
    made = []

    def recording(base):
        class Recorded(base):
            def __init__(self, *args, **kwargs):
                made.append(base)
                super().__init__(*args, **kwargs)
        return Recorded

    ops = types.SimpleNamespace(Linear=recording(nn.Linear), Conv3d=recording(nn.Conv3d),
                                LayerNorm=recording(nn.LayerNorm))
    model = build_model(weights, operations=ops)
    layers = [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv3d, nn.LayerNorm)]
    # patch embed; t MLP; caption MLP; per block adaLN + 5 attention + 3 FFN linears + LN; final 2
    assert layers == [] and len(made) == 1 + 2 + 2 + 2 * 10 + 2
    torch.testing.assert_close(run(model, tensors, "a_base"), tensors["a_base.out"], **TOL)


def test_self_attention_seam(weights, golden):
    _, tensors = golden
    model = build_model(weights)
    calls = []

    def backend(q, k, v, grid):
        calls.append((q.shape[2], k.shape[2], grid))
        return F.scaled_dot_product_attention(q, k, v)

    model.set_self_attention(backend)
    out = run(model, tensors, "b_per_frame_t", num_cond_latents=1)
    torch.testing.assert_close(out, tensors["b_per_frame_t.out"], **TOL)
    # per block: conditioning queries over conditioning keys, then noisy queries over all 3 frames of 4x4 tokens
    assert calls == [(16, 16, (3, 4, 4)), (32, 48, (3, 4, 4))] * 2
    model.set_self_attention(None)
    calls.clear()
    assert torch.equal(run(model, tensors, "b_per_frame_t", num_cond_latents=1), out) and calls == []


def test_odd_latent_size_keeps_shape(weights, golden):
    _, tensors = golden
    model = build_model(weights)
    x = torch.randn(1, 16, 2, 5, 7)
    with torch.no_grad():
        out = model(x, torch.tensor([500.0]), tensors["a_base.text"], tensors["a_base.text_mask"])
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_bf16_model_runs_close_to_fp32(weights, golden):
    _, tensors = golden
    model = build_model(weights).to(torch.bfloat16)
    out = run(model, tensors, "a_base")
    ref = tensors["a_base.out"]
    assert out.dtype == torch.float32
    assert ((out - ref).norm() / ref.norm()).item() < 0.02  # measured 0.7%


def test_config_rejects_other_models():
    with pytest.raises(ValueError, match="not a LongCat-Video DiT"):
        dit_config_from_state_dict({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)})
    with pytest.raises(ValueError, match="head dim"):
        dit_config_from_state_dict({
            "x_embedder.proj.weight": (256, 16, 1, 2, 2), "t_embedder.mlp.0.weight": (64, 256),
            "y_embedder.y_proj.0.weight": (256, 256), "blocks.0.attn.qkv.weight": (768, 256),
            "blocks.0.attn.q_norm.weight": (64,), "blocks.0.ffn.w1.weight": (768, 256),
            "blocks.0.pre_crs_attn_norm.weight": (256,), "final_layer.linear.weight": (64, 256)})
