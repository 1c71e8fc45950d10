"""LongCat's memory as ComfyUI manages it (in-process, CPU): the model's estimate (memory_required) covers the
measured activation peak of a full-size 480p and 720p step (and of the avatar's three batched passes) and exceeds
it by at most 20%; a refinement stage runs with the model partially loaded (low VRAM) and the LoRA at run time, and
gives the fully loaded output."""
import sys

import pytest
import torch

from longcat_pack.nodes.core import block_sparse_attention, dit
from test_comfyui_lora_patching import with_loras
from test_comfyui_stage_nodes import text_cond

from support import fake_memory  # the count of live activation bytes under fake tensors (the memory bench's too)
from support.random_models import FULL_AVATAR_CONFIG, FULL_CONFIG as FULL
STAGES = {  # latent [T, H, W], block-sparse attention, the refinement LoRA's targets
    "480p / 93 frames": ((24, 60, 104), False, False),
    "720p refinement": ((48, 88, 160), True, True),
}


def meta_model(comfy_env, depth=FULL["depth"], avatar=False):
    """The LongCat model (or the avatar's) at full width as ComfyUI builds it (bf16), on the meta device: nothing
    allocated."""
    if avatar:
        module = sys.modules[comfy_env[0].__name__ + ".nodes.model.avatar.comfy_avatar"]
        config = module.LongCatAvatarConfig(dict(FULL_AVATAR_CONFIG, depth=depth))
    else:
        config = comfy_model_module(comfy_env).LongCatVideoConfig(dict(FULL, depth=depth))
    config.set_inference_dtype(torch.bfloat16, None)
    return config.get_model({}, "", device="meta")


def comfy_model_module(comfy_env):
    return sys.modules[comfy_env[0].__name__ + ".nodes.model.comfy_model"]


@pytest.fixture(scope="module")
def full_size_model(comfy_env):
    """The 13.6B LongCat model."""
    return meta_model(comfy_env)


@pytest.mark.parametrize("lora", [False, True], ids=["no LoRA", "runtime LoRA"])
@pytest.mark.parametrize("path", ["cpu", "cuda"], ids=["eager", "CUDA path"])
@pytest.mark.parametrize("stage", STAGES)
def test_memory_estimate_covers_the_measured_peak(full_size_model, stage, path, lora):
    latent, sparse, refinement = STAGES[stage]
    prepared = fake_memory.prepared_lora(dict(FULL, depth=1), refinement) if lora else None
    peak = fake_memory.step_peak(dit, block_sparse_attention, 1, latent, path, sparse=sparse, lora=prepared)
    estimate = full_size_model.memory_required([1, 16, *latent])
    assert peak <= estimate <= 1.2 * peak, f"estimate {estimate / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB"
    assert full_size_model.memory_required([2, 16, *latent]) == 2 * estimate  # cond + uncond in one batch


def test_memory_estimate_covers_a_continuation_with_its_condition_cache(comfy_env):
    """480p continuation, 13 condition frames (4 latents) cached: the estimate, told the condition length before
    the run (as condition_per_run does), covers the measured peak of a cached step, cache included; the
    model is two blocks deep here so that the cache's share per block is measured, not assumed."""
    comfy_model = comfy_model_module(comfy_env)
    model = meta_model(comfy_env, depth=2)
    latent = STAGES["480p / 93 frames"][0]
    peak = fake_memory.step_peak(dit, block_sparse_attention, 2, latent, "cpu", num_cond_latents=4, cached=True)
    plain = model.memory_required([1, 16, *latent])
    model.cached_condition_latents = 4
    estimate = model.memory_required([1, 16, *latent])
    cache = 2 * 2 * 4 * (latent[1] // 2) * (latent[2] // 2) * FULL["hidden_size"] * 2  # k, v; 2 blocks; bf16
    assert estimate - plain == pytest.approx(comfy_model.MARGIN * cache)
    assert peak <= estimate <= 1.2 * peak, f"estimate {estimate / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB"


def test_memory_estimate_covers_the_avatar_three_passes(comfy_env):
    """The avatar's 480p continuation (4 condition latents and the reference latent, cached) with its guidance's
    three passes in one batch, as ComfyUI batches them when its estimate for three rows fits: the estimate, told
    the condition and the reference latent, covers the measured peak (two blocks deep, as above)."""
    model = meta_model(comfy_env, depth=2, avatar=True)
    latent = STAGES["480p / 93 frames"][0]
    model.cached_condition_latents = 4
    reference = [torch.Size([1, 16, 1, *latent[1:]])] * 3
    estimate = model.memory_required([3, 16, *latent], cond_shapes={"avatar_ref_latent": reference})
    peak = fake_memory.step_peak(dit, block_sparse_attention, 2, latent, "cuda", num_cond_latents=4, cached=True,
                                 batch=3, avatar=True)
    assert peak <= estimate <= 1.2 * peak, f"estimate {estimate / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB"


def free_part_after_loading(model, share):
    """A clone that ComfyUI, right after loading it for sampling, partially unloads again (`share` of its weights),
    as its free_memory does when the card is short: the unloaded layers stay on the offload device and are cast in
    per call, as with --lowvram. (load_models_gpu itself never partially loads a model whose load device is the CPU:
    there its VRAM state is DISABLED.)"""
    import comfy.model_management as mm
    import comfy.patcher_extension

    def prepare_sampling(executor, patcher, *args, **kwargs):
        out = executor(patcher, *args, **kwargs)
        loaded = next(m for m in mm.current_loaded_models if m.model is patcher)
        loaded.model_unload(memory_to_free=int(patcher.model_size() * share))
        return out

    clone = model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "longcat_test_low_vram",
                               prepare_sampling)
    return clone


def recording_calls(model):
    """A clone that records, at every model call, (partially loaded, how the LoRA is applied, layers cast in)."""
    seen = []
    clone = model.clone()

    def wrapper(apply_model, args):
        diffusion_model = clone.model.diffusion_model
        cast = sum(bool(getattr(m, "comfy_cast_weights", False)) for m in diffusion_model.modules())
        seen.append((clone.model.model_lowvram, clone.lora_state().applied[1], cast))
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(wrapper)
    return clone, seen


def test_refinement_stage_runs_partially_loaded_with_the_runtime_lora(comfy_env, monkeypatch):
    import comfy.sample
    import comfy.samplers
    pack, mm = comfy_env
    nodes = pack.NODE_CLASS_MAPPINGS
    mm.unload_all_models()
    # one tile row of frames per chunk: every linear runs once per chunk, its LoRA hook too
    monkeypatch.setattr(sys.modules[pack.__name__ + ".nodes.core.frame_chunks"], "MIN_CHUNK_TOKENS", 1)
    base = nodes["LongCatDiTLoader"]().load("longcat_tiny.safetensors", "fp32")[0]
    model = with_loras(comfy_env, base, [("lora_refine.safetensors", 0.5)])
    model = nodes["LongCatBlockSparseAttention"]().patch(model, 0.75)[0]
    sigmas = nodes["LongCatSigmas"]().sigmas("refine", 0, 0.5)[0]
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(1, 16, 8, 16, 16, generator=g)  # an 8 x 8 x 8 token grid: 8 tiles of 4x4x4
    noise = torch.randn(z0.shape, generator=g)
    qkv_calls = []
    model.model.diffusion_model.blocks[0].attn.qkv.register_forward_hook(lambda *_: qkv_calls.append(1))

    def stage(m):
        return comfy.sample.sample_custom(m, noise, 1.0, comfy.samplers.sampler_object("euler"), sigmas,
                                          text_cond(), text_cond(), z0, disable_pbar=True)

    loaded, loaded_calls = recording_calls(model)
    full = stage(loaded)
    assert loaded_calls == [(False, "merge", 0)] * 5 and len(qkv_calls) == 2 * 5  # 5 steps, 2 chunks each
    mm.unload_all_models()
    partial, partial_calls = recording_calls(free_part_after_loading(model, 0.5))
    low = stage(partial)
    assert len(partial_calls) == 5
    assert all(lowvram and mode == "runtime" and cast > 0 for lowvram, mode, cast in partial_calls)
    torch.testing.assert_close(low, full, atol=1e-5, rtol=1e-5)
    mm.unload_all_models()


def test_memory_estimate_of_an_offloaded_condition_cache(comfy_env):
    """The same continuation with the condition cache in CPU memory (four blocks deep, so that the offloaded cache
    differs from the whole one): the estimate keeps two blocks of the cache (the two buffers the blocks take turns
    in), drops by no more than the measured peak of a cached step does, and still covers that peak."""
    comfy_model = comfy_model_module(comfy_env)
    model = meta_model(comfy_env, depth=4)
    latent = STAGES["480p / 93 frames"][0]
    shape = [1, 16, *latent]
    plain = model.memory_required(shape)
    model.cached_condition_latents = 4
    on_card = model.memory_required(shape)
    model.condition_offload = True
    offloaded = model.memory_required(shape)
    block = 2 * 4 * (latent[1] // 2) * (latent[2] // 2) * FULL["hidden_size"] * 2  # k, v of one block; bf16
    assert on_card - plain == pytest.approx(comfy_model.MARGIN * 4 * block)
    assert offloaded - plain == pytest.approx(comfy_model.MARGIN * 2 * block)
    # measured where the host copies do not count (fake CUDA tensors): the estimate drops by no more than the
    # measured peak does, and still covers it
    peak = fake_memory.step_peak(dit, block_sparse_attention, 4, latent, "cuda", num_cond_latents=4, cached=True,
                                 offload=True)
    on_card_peak = fake_memory.step_peak(dit, block_sparse_attention, 4, latent, "cuda", num_cond_latents=4,
                                         cached=True)
    assert peak <= offloaded, f"estimate {offloaded / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB"
    assert (on_card - offloaded) / comfy_model.MARGIN <= on_card_peak - peak


def test_auto_offloads_the_condition_cache_when_the_card_is_tight(comfy_env, monkeypatch, caplog):
    """auto on a CUDA load device: the cache goes to CPU memory when the weights still to load, the step and the
    whole cache do not fit in the free memory, and stays on the card when they do; the log says which and why.
    gpu / cpu are taken as given; another device keeps the cache where the model is."""
    import logging
    pack, mm = comfy_env
    offload = sys.modules[pack.__name__ + ".nodes.model.condition_offload"]
    patcher = pack.NODE_CLASS_MAPPINGS["LongCatDiTLoader"]().load("longcat_tiny.safetensors", "fp32")[0].clone()
    patcher.model.cached_condition_latents = 2
    shape = (1, 16, 5, 8, 12)
    need = patcher.model_size() - patcher.loaded_size() + patcher.model.memory_required([2, 16, 5, 8, 12])
    assert offload.offload_condition(patcher, "auto", shape) is False  # the CPU: nowhere else to put it
    patcher.load_device = torch.device("cuda", 0)
    reserved = mm.extra_reserved_memory()
    with caplog.at_level(logging.INFO, logger="longcat"):
        monkeypatch.setattr(mm, "get_free_memory", lambda device=None, torch_free_too=False: need + reserved - 1)
        assert offload.offload_condition(patcher, "auto", shape) is True
        monkeypatch.setattr(mm, "get_free_memory", lambda device=None, torch_free_too=False: need + reserved)
        assert offload.offload_condition(patcher, "auto", shape) is False
        assert offload.offload_condition(patcher, "gpu", shape) is False
        assert offload.offload_condition(patcher, "cpu", shape) is True
    lines = [r.getMessage() for r in caplog.records]
    assert "in CPU memory" in lines[0] and "GiB free on cuda:0" in lines[0]
    assert "on the compute device (auto:" in lines[1]
    with pytest.raises(ValueError, match="'card' is not one of auto, gpu, cpu"):
        offload.offload_condition(patcher, "card", shape)
    patcher.model.cached_condition_latents = 0
