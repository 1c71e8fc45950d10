"""The LongCat MODEL beside ComfyUI 0.33's DynamicVRAM (in-process, CPU).

With DynamicVRAM on (NVIDIA, torch >= 2.8), core's loaders build `ModelPatcherDynamic`, which streams every weight
to the GPU per layer and never keeps it resident. The pack stays on the classic `ModelPatcher` on purpose: merging
a LoRA stack into resident weights (and restoring them bit-exactly) is what makes switching stacks cost
milliseconds, and ComfyUI's model management keeps serving classic patchers beside dynamic ones. What DynamicVRAM
changes for the pack is how ComfyUI's layers are built: they hold `weight = None` until loaded. These tests force
both on the CPU."""
import inspect

import pytest
import torch

from test_comfyui_lora_patching import GOLDEN_STACKS, assert_base_weights, assert_reproduces, cases, checkpoint, \
    nodes_of, with_loras  # noqa: F401  (fixtures)


@pytest.fixture
def dynamic_vram_on(comfy_env, monkeypatch):
    """What main.py does on an NVIDIA GPU: core patchers become dynamic, ComfyUI's layers create weights lazily."""
    import comfy.model_patcher
    dynamic = getattr(comfy.model_patcher, "ModelPatcherDynamic", None)  # 0.33; 0.8.0 has neither
    if dynamic is not None:
        monkeypatch.setattr(comfy.model_patcher, "CoreModelPatcher", dynamic)
    try:
        import comfy.memory_management
    except ImportError:
        return None
    monkeypatch.setattr(comfy.memory_management, "aimdo_enabled", True, raising=False)
    return comfy.memory_management


def test_loader_builds_the_classic_patcher_with_lazily_created_layers(comfy_env, dynamic_vram_on, monkeypatch,
                                                                       cases, checkpoint):
    import comfy.model_patcher
    pack, mm = comfy_env
    mm.unload_all_models()
    loader, _ = nodes_of(pack)
    model = loader.load("longcat_tiny.safetensors", "fp32")[0]
    if dynamic_vram_on is not None:
        monkeypatch.setattr(dynamic_vram_on, "aimdo_enabled", False)  # the load is what DynamicVRAM changes on CPU
    assert isinstance(model, comfy.model_patcher.ModelPatcher)
    assert not getattr(model, "is_dynamic", lambda: False)()
    assert_base_weights(model, checkpoint)
    distill = with_loras(comfy_env, model, GOLDEN_STACKS["c_distill"], "merge")
    mm.load_models_gpu([distill])
    assert_reproduces(distill, cases, "c_distill")
    mm.unload_all_models()
    assert_base_weights(model, checkpoint)


def test_overridden_lifecycle_calls_take_what_comfyui_passes(comfy_env):
    """Every ModelPatcher method the pack overrides accepts each argument the installed ComfyUI's own takes."""
    import comfy.model_patcher
    patcher_class = type(nodes_of(comfy_env[0])[0].load("longcat_tiny.safetensors", "fp32")[0])
    overridden = [name for name, member in vars(patcher_class).items()
                  if inspect.isfunction(member) and hasattr(comfy.model_patcher.ModelPatcher, name)]
    assert {"load", "patch_model", "unpatch_model", "partially_unload", "clone", "clone_has_same_weights"} <= \
        set(overridden)
    for name in overridden:
        base = inspect.signature(getattr(comfy.model_patcher.ModelPatcher, name))
        ours = inspect.signature(getattr(patcher_class, name))
        arguments = [p for p in base.parameters.values() if p.name != "self" and p.kind in
                     (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        ours.bind(None, **{p.name: None for p in arguments})  # by name, as ComfyUI calls them
        positional = [p for p in arguments if p.kind == p.POSITIONAL_OR_KEYWORD]
        ours.bind(None, *[None] * len(positional))
