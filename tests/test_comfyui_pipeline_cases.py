"""The reference's image-to-video, continuation and conditioned-refinement loops (golden `pipeline_cases`) through
real ComfyUI (in-process, CPU): LongCat Condition (latents) -> stock SamplerCustomAdvanced with LongCat Sigmas and
BasicGuider, or CFGGuider with LongCat CFG-Zero* when guidance > 1; LoRAs in merge and runtime modes."""
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import GOLDEN

CASES = {c["name"]: c for c in json.loads((GOLDEN / "pipeline_cases.json").read_text())["cases"]}
TOLERANCE = {name: 5e-3 if name == "vc_enhance_hf" else 1e-3 for name in CASES}  # the golden README's thresholds
LORA_FILES = {"distill": "lora_distill.safetensors", "refine": "lora_refine.safetensors"}
SCHEDULE = {  # LongCat Sigmas (stage, steps) of each case
    "i2v_distill": ("distill", 4), "i2v_cfg": ("base", 3), "vc_kv": ("distill", 3), "vc_nokv": ("distill", 3),
    "vc_enhance_hf": ("enhance_hf", 50), "refine_i2v": ("refine", 0),
}


@pytest.fixture(scope="module")
def tensors():
    return load_file(str(GOLDEN / "pipeline_cases.safetensors"))


class StoredNoise:
    """A NOISE input that hands the sampler the golden initial noise instead of drawing it from a seed."""

    def __init__(self, noise):
        self.seed, self.noise = 0, noise

    def generate_noise(self, latent):
        assert tuple(latent["samples"].shape) == tuple(self.noise.shape)
        return self.noise.clone()


def conditioning(tensors, name, prefix="text"):
    """The stored prompt as CONDITIONING: umT5 rows with the padding zeroed, as CLIPTextEncode gives them."""
    text, mask = tensors[f"{name}.{prefix}"], tensors[f"{name}.{prefix}_mask"]
    return [[text[:, 0] * mask[..., None].to(text.dtype), {}]]


def stock(name):
    import comfy_extras.nodes_custom_sampler as custom
    return getattr(custom, name)


def outputs(result):
    """The outputs of a V3 node's execute (io.NodeOutput) or of a V1 node's function (a tuple)."""
    return result.args if hasattr(result, "args") else result


def node(comfy_env, name):
    return comfy_env[0].NODE_CLASS_MAPPINGS[name]()


def pipeline_output(comfy_env, tensors, name, mode, cached=True, patch=None):
    """Run golden case `name` the way a workflow would, and return the final latent in normalized space.
    cached=False takes the condition cache off the model: every step then runs the condition frames too.
    patch: a function the MODEL passes through before sampling (another node on it)."""
    case = CASES[name]
    pack, mm = comfy_env
    mm.unload_all_models()
    model = node(comfy_env, "LongCatDiTLoader").load("longcat_tiny.safetensors", "fp32")[0]
    if not cached:
        import comfy.patcher_extension
        model = model.clone()
        model.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "longcat_condition_cache")
    if case["loras"]:
        from test_comfyui_lora_patching import with_loras
        model = with_loras(comfy_env, model, [(LORA_FILES[lora], 0.5) for lora in case["loras"]], mode)
    if patch is not None:
        model = patch(model)
    positive = conditioning(tensors, name)
    negative = conditioning(tensors, name, "neg_text") if f"{name}.neg_text" in tensors else positive
    frames = tensors[f"{name}.noise"].shape[2] if f"{name}.noise" in tensors else tensors[f"{name}.eps"].shape[2]
    start = {"samples": tensors[f"{name}.z0_raw"]} if f"{name}.z0_raw" in tensors else None
    positive, negative, latent = node(comfy_env, "LongCatLatentCondition").condition(
        positive, negative, {"samples": tensors[f"{name}.cond_raw"]}, 1 + 4 * (frames - 1), start)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas(*SCHEDULE[name], case.get("t_thresh", 0.5))[0]
    if case.get("guidance", 1.0) > 1:
        guided = node(comfy_env, "LongCatCFGZeroStar").patch(model)[0]
        guider = outputs(stock("CFGGuider").execute(guided, positive, negative, case["guidance"]))[0]
    else:
        guider = outputs(stock("BasicGuider").execute(model, positive))[0]
    noise = StoredNoise(tensors[f"{name}.noise" if f"{name}.noise" in tensors else f"{name}.eps"])
    import comfy.samplers
    sampler = comfy.samplers.sampler_object("euler")
    out = outputs(stock("SamplerCustomAdvanced").execute(noise, guider, sampler, sigmas, latent))[0]
    return model.model.process_latent_in(out["samples"])  # the reference returns normalized latents


@pytest.mark.parametrize("mode", ["merge", "runtime"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_pipeline_case_through_comfyui(comfy_env, tensors, name, mode):
    result = pipeline_output(comfy_env, tensors, name, mode)
    expected = tensors[f"{name}.out"]
    error = (result - expected).abs().max().item()
    print(f"{name} ({mode}): max abs {error:.2e}")
    assert error <= TOLERANCE[name], f"{name} ({mode}): max abs {error:.2e}"


def test_condition_cache_equals_the_uncached_path_and_dies_with_the_run(comfy_env, tensors, monkeypatch):
    """A continuation computes its condition's keys and values once per run (3 distill steps: 1 computation), gives
    what running the condition frames at every step gives, and holds nothing once the run is over."""
    import gc
    import sys
    import weakref
    # the pack as ComfyUI loaded it
    cache_class = sys.modules[comfy_env[0].__name__ + ".nodes.core.condition_attention"].ConditionCache
    caches, computed = [], []
    get = cache_class.get

    def counted(cache, condition, compute):
        if not any(c() is cache for c in caches):
            caches.append(weakref.ref(cache))
        return get(cache, condition, lambda: computed.append(1) or compute())
    monkeypatch.setattr(cache_class, "get", counted)
    cached = pipeline_output(comfy_env, tensors, "vc_kv", "merge")
    assert len(caches) == 1 and computed == [1]
    gc.collect()
    assert caches[0]() is None  # dropped with the run: nothing of it stays on the device
    uncached = pipeline_output(comfy_env, tensors, "vc_kv", "merge", cached=False)
    assert len(caches) == 1  # the uncached run used none
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=0)


def test_memory_estimate_hears_of_the_condition_cache_before_the_run(comfy_env, tensors, monkeypatch):
    """ComfyUI estimates a run's memory before the model loads; for a continuation that estimate must count the
    condition cache: the model knows the condition's length then, and forgets it when the run ends."""
    import sys
    comfy_model = sys.modules[comfy_env[0].__name__ + ".nodes.model.comfy_model"]
    seen = []
    required = comfy_model.LongCatVideoModel.memory_required
    monkeypatch.setattr(comfy_model.LongCatVideoModel, "memory_required",
                        lambda self, *args, **kw: seen.append(self.cached_condition_latents) or required(self, *args,
                                                                                                            **kw))
    pipeline_output(comfy_env, tensors, "vc_kv", "merge")
    assert seen and set(seen) == {tensors["vc_kv.cond_raw"].shape[2]}
    seen.clear()
    pipeline_output(comfy_env, tensors, "i2v_distill", "merge")  # one image frame: no cache, nothing to count
    assert seen and set(seen) == {0}
