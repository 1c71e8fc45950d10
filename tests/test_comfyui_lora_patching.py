"""Apply LongCat LoRA inside real ComfyUI model management (in-process, CPU): golden parity at the default strength,
merge = runtime, branch switches, partial unloads, unloads and interrupts always leave base + the current stack."""
import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import GOLDEN


@pytest.fixture(scope="module")
def cases():
    meta = json.loads((GOLDEN / "cases.json").read_text())
    return {c["name"]: c for c in meta["cases"]}, load_file(str(GOLDEN / "cases.safetensors"))


@pytest.fixture(scope="module")
def checkpoint():
    return load_file(str(GOLDEN / "tiny_dit.safetensors"))


def nodes_of(pack):
    return pack.NODE_CLASS_MAPPINGS["LongCatDiTLoader"](), pack.NODE_CLASS_MAPPINGS["LongCatLoraLoader"]()


@pytest.fixture
def base_model(comfy_env):
    pack, mm = comfy_env
    mm.unload_all_models()
    loader, _ = nodes_of(pack)
    return loader.load("longcat_tiny.safetensors", "fp32")[0]


def with_loras(comfy_env, model, loras, mode="auto"):
    _, lora_node = nodes_of(comfy_env[0])
    for name, strength in loras:
        model = lora_node.apply(model, name, strength, mode)["result"][0]
    return model


def raw_output(patcher, inputs, tensors):
    """The reference forward (before the ComfyUI sign flip) of the model as ComfyUI holds it now."""
    from longcat_pack.nodes.core.dit import LongCatDiT
    dit = patcher.model.diffusion_model
    with torch.no_grad():
        return LongCatDiT.forward(dit, tensors[inputs["hidden_states"]["key"]], tensors[inputs["timestep"]["key"]],
                                  tensors[inputs["encoder_hidden_states"]["key"]],
                                  tensors[inputs["encoder_attention_mask"]["key"]])


def assert_reproduces(patcher, cases, case):
    """The model as ComfyUI holds it now gives the golden output of `case` (the README's 1e-4 tolerance)."""
    meta, tensors = cases
    out = raw_output(patcher, meta[case]["inputs"], tensors)
    torch.testing.assert_close(out, tensors[meta[case]["output"]["key"]], atol=1e-4, rtol=1e-4)


def assert_base_weights(patcher, checkpoint):
    for key, value in patcher.model.diffusion_model.state_dict().items():
        assert torch.equal(value.cpu(), checkpoint[key]), key
    assert not any(m._forward_hooks for m in patcher.model.diffusion_model.modules())


GOLDEN_STACKS = {
    "c_distill": [("lora_distill.safetensors", 0.5)],
    "d_refine": [("lora_refine.safetensors", 0.5)],
    "e_distill_m060": [("lora_distill.safetensors", 0.3)],  # reference multiplier 0.6 x alpha/rank 0.5
    "h_distill_plus_refine": [("lora_distill.safetensors", 0.5), ("lora_refine.safetensors", 0.5)],
}


@pytest.mark.parametrize("mode", ["merge", "runtime"])
@pytest.mark.parametrize("case", sorted(GOLDEN_STACKS))
def test_golden_lora_cases_through_comfyui(comfy_env, base_model, cases, case, mode):
    """At the file's default strength (alpha/rank = 0.5) the node reproduces the reference at multiplier 1.0."""
    _, mm = comfy_env
    model = with_loras(comfy_env, base_model, GOLDEN_STACKS[case], mode)
    mm.load_models_gpu([model])
    assert_reproduces(model, cases, case)
    assert model.lora_state().applied[1] == mode


def test_branch_switches_restore_base_bit_exactly(comfy_env, base_model, cases, checkpoint):
    _, mm = comfy_env
    distill = with_loras(comfy_env, base_model, GOLDEN_STACKS["c_distill"])
    refine = with_loras(comfy_env, base_model, GOLDEN_STACKS["d_refine"])
    for _ in range(3):
        for branch, case in ((distill, "c_distill"), (refine, "d_refine")):
            mm.load_models_gpu([branch])
            assert_reproduces(branch, cases, case)
        mm.load_models_gpu([base_model])
        assert_base_weights(base_model, checkpoint)
    mm.load_models_gpu([distill])
    mm.unload_all_models()  # what POST /free does
    assert_base_weights(distill, checkpoint)


def test_changed_slider_is_never_doubled(comfy_env, base_model, cases):
    _, mm = comfy_env
    first = with_loras(comfy_env, base_model, [("lora_distill.safetensors", 1.0)])
    mm.load_models_gpu([first])
    second = with_loras(comfy_env, base_model, [("lora_distill.safetensors", 0.3)])
    mm.load_models_gpu([second])
    assert_reproduces(second, cases, "e_distill_m060")


def test_partial_unload_switches_to_runtime_and_back(comfy_env, base_model, cases, checkpoint):
    _, mm = comfy_env
    model = with_loras(comfy_env, base_model, GOLDEN_STACKS["c_distill"])
    mm.load_models_gpu([model])
    assert model.lora_state().applied[1] == "merge"
    model.partially_unload(model.offload_device, memory_to_free=model.model_size() // 2)
    assert model.model.model_lowvram and model.lora_state().applied[1] == "runtime"
    for key, value in model.model.diffusion_model.state_dict().items():
        assert torch.equal(value.cpu(), checkpoint[key]), key  # runtime mode: weights are the base ones
    assert_reproduces(model, cases, "c_distill")
    mm.unload_all_models()
    assert_base_weights(model, checkpoint)


def test_interrupted_load_leaves_base_weights(comfy_env, base_model, checkpoint, cases):
    _, mm = comfy_env
    model = with_loras(comfy_env, base_model, GOLDEN_STACKS["h_distill_plus_refine"], "merge")
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            mm.load_models_gpu([model])
    finally:
        mm.interrupt_current_processing(False)
    assert_base_weights(model, checkpoint)
    mm.unload_all_models()
    mm.load_models_gpu([model])
    assert_reproduces(model, cases, "h_distill_plus_refine")


def test_interrupted_sampling_then_rerun_equals_clean_run(comfy_env, base_model):
    import comfy.sample
    _, mm = comfy_env
    model = with_loras(comfy_env, base_model, GOLDEN_STACKS["h_distill_plus_refine"])
    g = torch.Generator().manual_seed(3)
    latent = torch.zeros(1, 16, 3, 6, 8)
    noise = torch.randn(latent.shape, generator=g)
    cond = [[torch.cat([torch.randn(1, 7, 256, generator=g), torch.zeros(1, 505, 256)], 1), {}]]

    def sample(callback=None):
        return comfy.sample.sample(model, noise, 4, 1.0, "euler", "simple", cond, cond, latent, callback=callback,
                                   disable_pbar=True, seed=3)

    clean = sample()

    def interrupt_at_step_two(step, *args):
        if step == 1:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()  # what the server's progress hook does after each step

    try:
        with pytest.raises(mm.InterruptProcessingException):
            sample(interrupt_at_step_two)
    finally:
        mm.interrupt_current_processing(False)
    assert torch.equal(sample(), clean)


def test_fp8_weights_take_the_runtime_path(comfy_env, cases, checkpoint):
    """fp8 storage (ComfyUI manual cast): auto applies the stack at run time, weights stay the stored fp8 bytes."""
    meta, tensors = cases
    pack, mm = comfy_env
    mm.unload_all_models()
    fp8 = pack.NODE_CLASS_MAPPINGS["LongCatDiTLoader"]().load("longcat_tiny.safetensors", "fp8_e4m3fn")[0]
    stored = {k: v.clone() for k, v in fp8.model.diffusion_model.state_dict().items()}
    model = with_loras(comfy_env, fp8, GOLDEN_STACKS["c_distill"])
    mm.load_models_gpu([model])
    assert model.lora_state().applied[1] == "runtime"
    for key, value in model.model.diffusion_model.state_dict().items():
        assert torch.equal(value.view(torch.uint8), stored[key].view(torch.uint8)), key
    out = raw_output(model, meta["c_distill"]["inputs"], tensors)
    expected = tensors["c_distill.out"]
    assert torch.isfinite(out).all()
    # fp8 weights: only roughly the fp32 reference, and closer to it with the LoRA than without
    assert (out - expected).norm() / expected.norm() < 0.25
    mm.load_models_gpu([fp8])  # the plain branch: hooks come off
    base_out = raw_output(fp8, meta["c_distill"]["inputs"], tensors)
    mm.unload_all_models()
    assert (out - expected).norm() < (base_out - expected).norm()


def test_slow_merges_show_a_progress_bar_fast_ones_do_not(comfy_env, base_model, monkeypatch):
    """ComfyUI's progress bar appears for a merge that takes long (a first one with pinned host backups can take
    seconds), counting targets up to all of them; the usual millisecond merge shows none."""
    import comfy.utils
    pack, mm = comfy_env
    patcher_module = sys.modules[pack.__name__ + ".nodes.model.model_patcher"]
    updates = []  # what the pack reports to the bar (newer ComfyUI throttles what reaches the UI hook)
    report = comfy.utils.ProgressBar.update_absolute

    def recorded(bar, value, total=None, preview=None):
        updates.append((value, total))
        return report(bar, value, total, preview)
    monkeypatch.setattr(comfy.utils.ProgressBar, "update_absolute", recorded)
    distill = with_loras(comfy_env, base_model, [("lora_distill.safetensors", 0.5)], "merge")
    refine = with_loras(comfy_env, base_model, [("lora_refine.safetensors", 0.5)], "merge")
    monkeypatch.setattr(patcher_module, "PROGRESS_AFTER_S", 3600.0)  # every merge counts as fast (no wall clock)
    mm.load_models_gpu([distill])
    assert updates == []
    monkeypatch.setattr(patcher_module, "PROGRESS_AFTER_S", 0.0)  # every merge counts as slow now
    mm.load_models_gpu([refine])
    targets = len(refine.longcat_loras[0][0].targets)
    assert updates == [(done, targets) for done in range(1, targets + 1)]
