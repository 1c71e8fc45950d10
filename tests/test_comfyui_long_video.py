"""The long-video loop nodes inside real ComfyUI (in-process, CPU, the tiny DiT and a random Wan 2.1 VAE): segment
counts and joins as the reference's long-video demo makes them, each segment what the single-segment nodes give,
and interrupts between segments."""
import pytest
import torch

from test_comfyui_condition_nodes import POSITIVE, frames, node, vae  # noqa: F401  (fixture)


@pytest.fixture
def guider(comfy_env):
    from test_comfyui_pipeline_cases import outputs, stock
    comfy_env[1].unload_all_models()
    model = node(comfy_env, "LongCatDiTLoader").load("longcat_tiny.safetensors", "fp32")[0]
    text = torch.cat([torch.randn(1, 7, 256, generator=torch.Generator().manual_seed(9)), torch.zeros(1, 505, 256)], 1)
    return outputs(stock("BasicGuider").execute(model, [[text, {}]]))[0]


def euler():
    import comfy.samplers
    return comfy.samplers.sampler_object("euler")


def test_long_video_joins_continuations_without_repeats(comfy_env, vae, guider):
    """13 frames, then 2 continuations of 9 frames conditioned on the last 5: 13 + 2 x 4 frames; the first
    continuation is exactly what LongCat Extend Video -> sampler -> VAE Decode gives with the same seed."""
    from longcat_pack.nodes.stages.long_video_nodes import decode
    first = frames(13, 32, 32)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("distill", 2, 0.5)[0]
    video = node(comfy_env, "LongCatLongVideo").extend(guider, euler(), sigmas, vae, 7, first, 2, 5, 9)[0]
    assert video.shape == (21, 32, 32, 3) and torch.equal(video[:13], first)
    _, _, latent = node(comfy_env, "LongCatExtendVideo").condition(POSITIVE, POSITIVE, vae, first, 5, 9)
    import comfy.sample
    noise = comfy.sample.prepare_noise(latent["samples"], 7)
    by_hand = decode(vae, guider.sample(noise, latent["samples"], euler(), sigmas, denoise_mask=latent["noise_mask"],
                                        disable_pbar=True, seed=7))
    torch.testing.assert_close(video[13:17], by_hand[5:].to(video.dtype))


def test_long_video_stops_between_segments_on_interrupt(comfy_env, vae, guider, monkeypatch):
    import comfy.model_management as mm
    pack = comfy_env[0]
    import sys
    loop = sys.modules[pack.__name__ + ".nodes.stages.long_video_nodes"]
    sampled = []
    real = loop.sample_segment

    def interrupting(*args):
        sampled.append(1)
        out = real(*args)
        mm.interrupt_current_processing(True)  # the user presses Cancel during the first segment
        return out
    monkeypatch.setattr(loop, "sample_segment", interrupting)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("distill", 2, 0.5)[0]
    try:
        with pytest.raises(mm.InterruptProcessingException):
            node(comfy_env, "LongCatLongVideo").extend(guider, euler(), sigmas, vae, 7, frames(13, 32, 32), 3, 5, 9)
    finally:
        mm.interrupt_current_processing(False)
    assert sampled == [1]  # no second segment started


def test_refine_long_video_segments_follow_the_reference(comfy_env, vae, guider):
    """A 13-frame stage-1 video in 9-frame segments sharing 5 frames: 2 segments; the first refines 9 frames to
    18, the second is conditioned on the last 2 x 5 refined frames and adds 18 - 10: 26 frames (2 x 13)."""
    stage1 = frames(13, 64, 64, seed=4)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("refine", 0, 0.5)[0]
    refined = node(comfy_env, "LongCatRefineLongVideo").refine(
        guider, euler(), sigmas, vae, 3, stage1, 9, 5, "same as input", False)[0]
    assert refined.shape == (26, 64, 64, 3)
    assert refined.std() > 0.01  # decoded pictures, not a flat fill


def test_refine_long_video_refuses_an_overlap_that_leaves_nothing_new(comfy_env, vae, guider):
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("refine", 0, 0.5)[0]
    with pytest.raises(ValueError, match="num_cond_frames 9 must be between 0 and segment_length 9"):
        node(comfy_env, "LongCatRefineLongVideo").refine(guider, euler(), sigmas, vae, 3, frames(13, 64, 64), 9, 9,
                                                         "same as input", False)


def test_long_video_refuses_a_length_that_is_not_whole_latents(comfy_env, vae):
    """A length of 10 would sample 3 latents = 9 frames per segment: refused before anything runs, naming the two
    lengths that work (the UI's step of 4 rounds it; the API does not)."""
    with pytest.raises(ValueError, match=r"length is 10 frames, not 1 \+ 4k .* set 9 or 13"):
        node(comfy_env, "LongCatLongVideo").extend(None, None, torch.zeros(3), vae, 7, frames(13, 32, 32), 2, 5, 10)


def test_refine_long_video_takes_any_segment_length_exactly(comfy_env, vae, guider):
    """segment_length 10 (not 1 + 4k) is refined as it is, not rounded: segments of 10 and 8 stage-1 frames
    sharing 5 give 20 + (16 - 10) = 26 frames, twice the 13 stage-1 frames."""
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("refine", 0, 0.5)[0]
    refined = node(comfy_env, "LongCatRefineLongVideo").refine(
        guider, euler(), sigmas, vae, 3, frames(13, 64, 64, seed=4), 10, 5, "same as input", False)[0]
    assert refined.shape == (26, 64, 64, 3)


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file
    from conftest import GOLDEN
    return load_file(str(GOLDEN / "pipeline_cases.safetensors"))


def golden_segments(comfy_env, vae, golden, monkeypatch, prompts, condition_cache="auto"):
    """LongCat Long Video, 2 continuations, each made as the golden continuation `vc_kv` is (its condition latents
    and initial noise in place of the VAE's encoding of the previous segment and a seeded draw; distill LoRA, 3
    distill steps), the guider's own prompt a zero prompt, `prompts` the story. Returns each continuation's sampled
    latent, normalized as the golden output."""
    import sys
    import comfy.sample
    from test_comfyui_lora_patching import with_loras
    from test_comfyui_pipeline_cases import outputs, stock
    comfy_env[1].unload_all_models()
    loop = sys.modules[comfy_env[0].__name__ + ".nodes.stages.long_video_nodes"]
    model = node(comfy_env, "LongCatDiTLoader").load("longcat_tiny.safetensors", "fp32")[0]
    model = with_loras(comfy_env, model, [("lora_distill.safetensors", 0.5)], "merge")
    guider = outputs(stock("BasicGuider").execute(model, POSITIVE))[0]
    monkeypatch.setattr(loop, "continuation_cond_latent", lambda vae, video, n: golden["vc_kv.cond_raw"])
    monkeypatch.setattr(comfy.sample, "prepare_noise", lambda samples, seed: golden["vc_kv.noise"].clone())
    sampled, real = [], loop.sample_segment
    monkeypatch.setattr(loop, "sample_segment", lambda *args: sampled.append(real(*args)) or sampled[-1])
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("distill", 3, 0.5)[0]
    video = node(comfy_env, "LongCatLongVideo").extend(guider, euler(), sigmas, vae, 7, frames(13, 64, 96), 2, 5, 17,
                                                       prompts, condition_cache)[0]
    assert video.shape == (13 + 2 * 12, 64, 96, 3)
    assert guider.original_conds["positive"][0]["cross_attn"].abs().max() == 0  # the given guider is unchanged
    return [model.model.process_latent_in(out) for out in sampled]


def golden_error(latent, golden):
    return (latent - golden["vc_kv.out"]).abs().max().item()


def test_each_continuation_samples_with_its_own_prompt(comfy_env, vae, golden, monkeypatch):
    """The story [prompt 0, A, B] and [prompt 0, B, A] with A the golden continuation's prompt: the continuation
    that gets A reproduces the reference's output (1e-3, the README's threshold), the one that gets B does not."""
    from test_comfyui_pipeline_cases import conditioning
    a, b = conditioning(golden, "vc_kv"), conditioning(golden, "i2v_distill")
    first = golden_segments(comfy_env, vae, golden, monkeypatch, [POSITIVE, a, b])
    assert golden_error(first[0], golden) <= 1e-3 and golden_error(first[1], golden) > 1e-2
    second = golden_segments(comfy_env, vae, golden, monkeypatch, [POSITIVE, b, a])
    assert golden_error(second[0], golden) > 1e-2 and golden_error(second[1], golden) <= 1e-3


def test_the_last_prompt_carries_on_and_the_offloaded_cache_changes_nothing(comfy_env, vae, golden, monkeypatch,
                                                                             caplog):
    """[prompt 0, A] for 2 continuations: both sample with A (the log says so). With the condition cache in CPU
    memory (condition_cache cpu) the continuations are bit for bit those of the cache on the device."""
    import logging
    from test_comfyui_pipeline_cases import conditioning
    story = [POSITIVE, conditioning(golden, "vc_kv")]
    with caplog.at_level(logging.INFO, logger="longcat"):
        on_device = golden_segments(comfy_env, vae, golden, monkeypatch, story, "gpu")
    assert all(golden_error(latent, golden) <= 1e-3 for latent in on_device)
    assert "continuations 2 to 2 repeat prompt 1" in caplog.text
    assert caplog.text.count("on the compute device (as chosen)") == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="longcat"):
        offloaded = golden_segments(comfy_env, vae, golden, monkeypatch, story, "cpu")
    assert caplog.text.count("in CPU memory, streamed to the card block by block (as chosen)") == 2
    assert all(torch.equal(a, b) for a, b in zip(on_device, offloaded))


def test_segment_prompts_keep_their_order_and_refuse_gaps(comfy_env):
    prompts = [[[torch.full((1, 512, 256), float(i)), {}]] for i in range(4)]
    collect = node(comfy_env, "LongCatSegmentPrompts").collect
    story = collect(prompts[0], prompt_2=prompts[2], prompt_1=prompts[1], prompt_3=prompts[3])[0]
    assert story == prompts
    with pytest.raises(ValueError, match="prompt_2 is not connected but prompt_3 is"):
        collect(prompts[0], prompt_1=prompts[1], prompt_3=prompts[3])
