"""ComfyUI's own accelerators on the LongCat MODEL, in real ComfyUI (in-process, CPU): attention through
`optimized_attention` (overrides called, default outputs unchanged), the DIFFUSION_MODEL wrapper (stock EasyCache
skips steps, next to the condition cache of a continuation), torch.compile without graph breaks in the blocks
(runtime LoRA included; block-sparse attention outside the graph, said once) and the fp8 matmul ops."""
import logging
import sys

import pytest
import torch

from test_comfyui_pipeline_cases import CASES, StoredNoise, conditioning, node, outputs, pipeline_output, stock


@pytest.fixture(scope="module")
def tensors():
    from safetensors.torch import load_file
    from conftest import GOLDEN
    return load_file(str(GOLDEN / "pipeline_cases.safetensors"))


def pack_module(comfy_env, name):
    return sys.modules[f"{comfy_env[0].__name__}.nodes.{name}"]  # the pack as ComfyUI loaded it


@pytest.fixture
def dit_calls(comfy_env, monkeypatch):
    """Every run of the LongCat DiT's body (what a step cache skips), with its kwargs."""
    cls = pack_module(comfy_env, "model.comfy_model").LongCatComfyDiT
    calls, forward = [], cls._forward

    def counted(self, *args, **kwargs):
        calls.append((self, args, kwargs))
        return forward(self, *args, **kwargs)
    monkeypatch.setattr(cls, "_forward", counted)
    return calls


def continuation(comfy_env, tensors, patch=lambda model: model, steps=3, cond_latent=None):
    """The golden continuation case `vc_kv` (its condition: 2 latent frames, run from the condition cache) through
    stock nodes, `steps` distill steps, the MODEL first passed through `patch`."""
    name = "vc_kv"
    comfy_env[1].unload_all_models()
    model = patch(node(comfy_env, "LongCatDiTLoader").load("longcat_tiny.safetensors", "fp32")[0])
    positive = conditioning(tensors, name)
    frames = tensors[f"{name}.noise"].shape[2]
    cond = tensors[f"{name}.cond_raw"] if cond_latent is None else cond_latent
    positive, _, latent = node(comfy_env, "LongCatLatentCondition").condition(
        positive, positive, {"samples": cond}, 1 + 4 * (frames - 1), None)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("distill", steps, CASES[name].get("t_thresh", 0.5))[0]
    guider = outputs(stock("BasicGuider").execute(model, positive))[0]
    import comfy.samplers
    sampler = comfy.samplers.sampler_object("euler")
    return outputs(stock("SamplerCustomAdvanced").execute(StoredNoise(tensors[f"{name}.noise"]), guider, sampler,
                                                          sigmas, latent))[0]["samples"]


def with_transformer_option(key, value):
    def patch(model):
        model = model.clone()
        model.model_options.setdefault("transformer_options", {})[key] = value
        return model
    return patch


# Attention

def test_default_attention_gives_what_the_plain_dit_gives(comfy_env, tensors, monkeypatch):
    """ComfyUI's kernel as ComfyUI picks it here (SDPA) changes no bit of a run against the DiT's own SDPA."""
    comfy_model = pack_module(comfy_env, "model.comfy_model")
    through_comfy = pipeline_output(comfy_env, tensors, "vc_kv", "runtime")
    monkeypatch.setattr(comfy_model, "comfy_kernel", lambda: pack_module(comfy_env, "core.dit_ops").sdpa)
    assert torch.equal(pipeline_output(comfy_env, tensors, "vc_kv", "runtime"), through_comfy)


def test_attention_override_is_called_for_self_and_cross_attention(comfy_env, tensors):
    """An `optimized_attention_override` on the MODEL (what attention nodes set) gets every dense attention of every
    step: self-attention (video tokens as keys, the cached condition's too) and cross-attention (text rows)."""
    seen = []

    def override(func, q, k, v, heads, **kwargs):
        seen.append((k.shape[2], heads, kwargs["skip_reshape"], kwargs["skip_output_reshape"]))
        return func(q, k, v, heads, **kwargs)

    plain = continuation(comfy_env, tensors)
    out = continuation(comfy_env, tensors, with_transformer_option("optimized_attention_override", override))
    assert torch.equal(out, plain)
    cond_frames, frames = tensors["vc_kv.cond_raw"].shape[2], tensors["vc_kv.noise"].shape[2]
    frame_tokens = tensors["vc_kv.noise"].shape[3] * tensors["vc_kv.noise"].shape[4] // 4
    text_rows = tensors["vc_kv.text"].shape[-2]
    keys = {k for k, *_ in seen}
    assert keys == {cond_frames * frame_tokens, frames * frame_tokens, text_rows}, (keys, frame_tokens)
    assert {tuple(rest) for _, *rest in seen} == {(2, True, True)}  # the tiny model's 2 heads, [B, heads, n, 128]

    def zero(func, q, k, v, heads, **kwargs):
        return torch.zeros_like(q)
    changed = continuation(comfy_env, tensors, with_transformer_option("optimized_attention_override", zero))
    assert not torch.allclose(changed, plain)


def test_sub_quadratic_default_is_replaced_by_sdpa_and_said(comfy_env, monkeypatch, caplog):
    """On CPU ComfyUI falls back to sub-quadratic attention when no flag asks for anything; LongCat takes
    ComfyUI's SDPA kernel instead and logs it; a flag that asks for sub-quadratic attention is followed."""
    import comfy.ldm.modules.attention as comfy_attention
    from comfy.cli_args import args
    attention = pack_module(comfy_env, "model.attention")
    monkeypatch.setattr(comfy_attention, "optimized_attention", comfy_attention.attention_sub_quad)
    with caplog.at_level(logging.INFO, logger="longcat"):
        assert attention.pick_kernel() is comfy_attention.attention_pytorch
    assert "PyTorch SDPA" in caplog.text
    monkeypatch.setattr(args, "use_quad_cross_attention", True)
    assert attention.pick_kernel() is comfy_attention.attention_sub_quad


# DIFFUSION_MODEL wrapper and the stock step caches

def easycache(threshold):
    def patch(model):
        from comfy_extras.nodes_easycache import EasyCacheNode
        return outputs(EasyCacheNode.execute(model, threshold, 0.0, 1.0, False))[0]
    return patch


def test_easycache_skips_steps_of_a_continuation(comfy_env, tensors, dit_calls, monkeypatch):
    """Stock EasyCache wraps the LongCat forward: at threshold 0 it skips nothing and changes no bit; at a high
    threshold the DiT runs on fewer than the 8 steps. The condition cache is filled once per run either way, from
    that run's condition, and skipped steps neither fill nor read it."""
    cache_class = pack_module(comfy_env, "core.condition_attention").ConditionCache
    filled, get = [], cache_class.get

    def counted(cache, condition, compute):
        return get(cache, condition, lambda: filled.append(condition.clone()) or compute())
    monkeypatch.setattr(cache_class, "get", counted)

    plain = continuation(comfy_env, tensors, steps=8)
    assert len(dit_calls) == 8 and len(filled) == 1
    dit_calls.clear()
    assert torch.equal(continuation(comfy_env, tensors, easycache(0.0), steps=8), plain)
    assert len(dit_calls) == 8 and len(filled) == 2

    dit_calls.clear()
    skipped = continuation(comfy_env, tensors, easycache(3.0), steps=8)
    assert 2 <= len(dit_calls) < 8, len(dit_calls)
    assert len(filled) == 3 and torch.isfinite(skipped).all()
    cond = tensors["vc_kv.cond_raw"]
    other = continuation(comfy_env, tensors, easycache(3.0), steps=8, cond_latent=cond.flip(-1))
    assert len(filled) == 4 and not torch.equal(filled[3], filled[2])  # the next run: its own condition
    torch.testing.assert_close(other[:, :, :cond.shape[2]], cond.flip(-1))  # through ComfyUI's latent scaling


def test_lazycache_skips_steps(comfy_env, tensors, dit_calls):
    from comfy_extras.nodes_easycache import LazyCacheNode

    def lazycache(model):
        return outputs(LazyCacheNode.execute(model, 3.0, 0.0, 1.0, False))[0]
    continuation(comfy_env, tensors, lazycache, steps=8)
    assert 2 <= len(dit_calls) < 8, len(dit_calls)


# torch.compile

def explain(call):
    """torch._dynamo.explain of the diffusion model (what TorchCompileModel compiles) on a recorded call."""
    model, args, kwargs = call
    torch._dynamo.reset()
    return torch._dynamo.explain(model.forward)(*args, **kwargs)


def break_sites(explained):
    return sorted({f"{r.user_stack[-1].name}" for r in explained.break_reasons})


def test_compiled_blocks_have_no_graph_breaks_with_runtime_lora(comfy_env, tensors, dit_calls):
    """Image-to-video with a runtime LoRA (forward hooks) traces as one graph; a continuation breaks once per step,
    at the condition cache lookup before the blocks."""
    pipeline_output(comfy_env, tensors, "i2v_distill", "runtime")
    model = dit_calls[-1][0]
    assert any(m._forward_hooks for m in model.modules())  # the runtime LoRA's hooks on the Linears
    explained = explain(dit_calls[-1])
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    assert explained.graph_count == 1
    dit_calls.clear()
    pipeline_output(comfy_env, tensors, "vc_kv", "runtime")
    explained = explain(dit_calls[-1])
    assert explained.graph_break_count == 1 and break_sites(explained) == ["forward"]
    assert "cached_condition" in explained.break_reasons[0].reason


def test_block_sparse_attention_runs_outside_the_compiled_graph_said_once(comfy_env, tensors, dit_calls, caplog):
    """With block-sparse attention on, only the sparse attention itself leaves the graph (it picks its tiles per
    step and has its own kernels); the log says so once, and the compiled run gives the eager output."""
    pipeline_output(comfy_env, tensors, "i2v_distill", "merge")
    from torch._dynamo.utils import counters
    model, args, _ = dit_calls[-1]
    timestep, context, control, options = args[1:]
    inputs = (torch.randn(1, 16, 8, 8, 8), timestep, context, control,  # a grid of whole 4x4x4 tiles: (8, 4, 4)
              dict(options, longcat_block_sparse={"sparsity": 0.75}))
    torch._dynamo.reset()
    counters.clear()
    with caplog.at_level(logging.WARNING):
        compiled = torch.compile(model, backend="eager")(*inputs)
        compiled_again = torch.compile(model, backend="eager")(*inputs)
    breaks = counters["graph_break"]
    assert breaks and all("_outside_compile" in reason for reason in breaks), list(breaks)
    assert caplog.text.count("block-sparse attention under torch.compile") == 1
    with torch.no_grad():
        eager = model(*inputs)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(compiled_again, eager)


def test_stock_compile_wrapper_compiles_the_longcat_model(comfy_env, tensors, dit_calls):
    """TorchCompileModel's own helper (set_torch_compile_wrapper; the 'eager' backend keeps the CPU test short)
    puts the compiled DiT in place for sampling: dynamo compiles its frames, without graph breaks, and the result
    is the uncompiled one."""
    from comfy_api.torch_helpers import set_torch_compile_wrapper
    from torch._dynamo.utils import counters
    plain = pipeline_output(comfy_env, tensors, "i2v_distill", "runtime")

    def compiled(model):
        model = model.clone()
        set_torch_compile_wrapper(model=model, backend="eager")
        return model
    torch._dynamo.reset()
    counters.clear()
    out = pipeline_output(comfy_env, tensors, "i2v_distill", "runtime", patch=compiled)
    assert counters["stats"]["unique_graphs"] >= 1
    assert not counters["graph_break"], dict(counters["graph_break"])
    torch.testing.assert_close(out, plain)


# fp8 matmul

@pytest.mark.parametrize("how", ["weight_dtype", "--fast"])
def test_fp8_matmul_ops_are_picked_where_asked_and_supported(comfy_env, monkeypatch, how):
    """weight_dtype fp8_e4m3fn_fast (core's UNETLoader option) or `--fast fp8_matrix_mult` builds the DiT from
    ComfyUI's fp8 matmul ops where the device computes in fp8; where it cannot, the usual casting ops."""
    import comfy.model_management as mm
    import comfy.ops
    from comfy.cli_args import args
    choice = "fp8_e4m3fn_fast" if how == "weight_dtype" else "fp8_e4m3fn"
    if how == "--fast":
        from comfy.cli_args import PerformanceFeature
        monkeypatch.setattr(args, "fast", set(args.fast) | {PerformanceFeature.Fp8MatrixMultiplication})
    loader = node(comfy_env, "LongCatDiTLoader")

    def linear_ops():
        mm.unload_all_models()
        model = loader.load("longcat_tiny.safetensors", choice)[0]
        return type(model.model.diffusion_model.blocks[0].ffn.w1)
    assert not issubclass(linear_ops(), comfy.ops.fp8_ops.Linear)  # CPU: no fp8 compute
    monkeypatch.setattr(mm, "supports_fp8_compute", lambda device=None: True)
    assert issubclass(linear_ops(), comfy.ops.fp8_ops.Linear)
