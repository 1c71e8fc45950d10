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
