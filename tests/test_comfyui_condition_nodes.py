"""The condition nodes inside real ComfyUI (in-process, CPU) with a Wan 2.1 VAE (ComfyUI's class, random weights):
the latent and mask each node makes for image-to-video, continuation and conditioned refinement, and clear errors
for conditions that do not fit."""
import pytest
import torch

from longcat_pack.nodes.cli.demo_set import write_demo_vae


@pytest.fixture(scope="module")
def vae(comfy_env, comfyui_root, tmp_path_factory):
    import comfy.sd
    import comfy.utils
    path = write_demo_vae(tmp_path_factory.mktemp("vae") / "wan21_random.safetensors", comfyui_root)
    return comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))


def node(comfy_env, name):
    return comfy_env[0].NODE_CLASS_MAPPINGS[name]()


def frames(n, height=64, width=96, seed=0):
    return torch.rand(n, height, width, 3, generator=torch.Generator().manual_seed(seed))


POSITIVE = [[torch.zeros(1, 512, 256), {}]]


def mask_frames(latent):
    return latent["noise_mask"][0, 0, :, 0, 0].tolist()


def test_image_to_video_puts_the_encoded_image_first(comfy_env, vae):
    image = frames(1, 80, 96)  # another aspect than 64x96: scaled and centre-cropped, as core's video nodes do
    positive, negative, latent, used = node(comfy_env, "LongCatImageToVideo").condition(
        POSITIVE, POSITIVE, vae, image, 96, 64, 13)
    assert positive is POSITIVE and negative is POSITIVE
    samples = latent["samples"]
    assert samples.shape == (1, 16, 4, 8, 12) and mask_frames(latent) == [0, 1, 1, 1]
    import comfy.utils
    cropped = comfy.utils.common_upscale(image.movedim(-1, 1), 96, 64, "bilinear", "center").movedim(1, -1)
    expected = vae.encode(cropped)
    torch.testing.assert_close(samples[:, :, :1], expected)
    assert not samples[:, :, 1:].any()
    assert torch.equal(used, cropped)  # the image the refinement is conditioned on: the video's own aspect


def test_extend_video_conditions_on_the_last_frames(comfy_env, vae):
    clip = frames(11, 32, 48)
    _, _, latent = node(comfy_env, "LongCatExtendVideo").condition(POSITIVE, POSITIVE, vae, clip, 5, 93)
    samples = latent["samples"]
    assert samples.shape == (1, 16, 24, 4, 6) and mask_frames(latent) == [0] * 2 + [1] * 22
    torch.testing.assert_close(samples[:, :, :2], vae.encode(clip[-5:]))


def test_refine_condition_pads_the_image_to_four_latents(comfy_env, vae):
    """Image-to-video refinement (the golden refine_i2v geometry): 5 stage-1 frames -> 10 + 12 front + 7 back
    copies = 29 frames (8 latents); the image repeated to 13 frames replaces the first 4 latents; after decoding,
    12 frames are skipped and 10 kept."""
    stage1 = frames(5, 64, 64)
    pixels, keep, _, skip = node(comfy_env, "LongCatRefineUpscale").upscale(stage1, "same as input", False, 1)
    assert (pixels.shape[0], keep, skip) == (29, 10, 12)
    encoded = {"samples": torch.randn(1, 16, 8, 4, 4, generator=torch.Generator().manual_seed(3))}  # 32x32 px
    image = frames(1, 48, 48)  # the clip's aspect at another size: scaled to 32x32
    _, _, latent = node(comfy_env, "LongCatRefineCondition").condition(POSITIVE, POSITIVE, vae, encoded, image, 1)
    assert mask_frames(latent) == [0] * 4 + [1] * 4
    import comfy.utils
    small = comfy.utils.common_upscale(image.movedim(-1, 1), 32, 32, "bilinear", "center").movedim(1, -1)
    torch.testing.assert_close(latent["samples"][:, :, :4], vae.encode(small.expand(13, -1, -1, -1)))
    assert torch.equal(latent["samples"][:, :, 4:], encoded["samples"][:, :, 4:])
    trimmed = node(comfy_env, "LongCatTrimFrames").trim(frames(29, 8, 8), keep, skip)[0]
    assert trimmed.shape[0] == 10


def test_conditions_that_do_not_fit_are_clear_errors(comfy_env):
    from longcat_pack.nodes.core.conditioning import ConditionError
    condition = node(comfy_env, "LongCatLatentCondition")
    with pytest.raises(ValueError, match="not shorter than the clip"):
        condition.condition(POSITIVE, POSITIVE, {"samples": torch.zeros(1, 16, 4, 8, 12)}, 13)
    with pytest.raises(ValueError, match=r"latent \[1, 16, 3, 8, 12\] does not fit the clip"):
        condition.condition(POSITIVE, POSITIVE, {"samples": torch.zeros(1, 16, 1, 8, 12)}, 13,
                            {"samples": torch.zeros(1, 16, 3, 8, 12)})
    with pytest.raises(ValueError, match="16, frames, height, width"):
        condition.condition(POSITIVE, POSITIVE, {"samples": torch.zeros(1, 48, 1, 8, 12)}, 13)
    with pytest.raises(ValueError, match=r"1 \+ 4k"):
        node(comfy_env, "LongCatExtendVideo").condition(POSITIVE, POSITIVE, None, frames(21), 12, 93)
    with pytest.raises(ValueError, match="more than the clip's 9 frames"):
        node(comfy_env, "LongCatExtendVideo").condition(POSITIVE, POSITIVE, None, frames(9), 13, 93)
    with pytest.raises(ValueError, match="different aspect"):
        node(comfy_env, "LongCatRefineCondition").condition(
            POSITIVE, POSITIVE, None, {"samples": torch.zeros(1, 16, 8, 8, 16)}, frames(1, 64, 64), 1)
    with pytest.raises(ValueError, match="multiples of 16"):
        node(comfy_env, "LongCatImageToVideo").condition(POSITIVE, POSITIVE, None, frames(1), 100, 64, 13)
    assert ConditionError.__mro__[1] is ValueError


@pytest.mark.parametrize("name, args", [
    ("LongCatImageToVideo", lambda: (POSITIVE, POSITIVE, None, frames(1), 96, 64, 10)),
    ("LongCatExtendVideo", lambda: (POSITIVE, POSITIVE, None, frames(21), 13, 10)),
    ("LongCatLatentCondition", lambda: (POSITIVE, POSITIVE, {"samples": torch.zeros(1, 16, 1, 8, 12)}, 10)),
])
def test_a_length_that_is_not_whole_latents_is_refused(comfy_env, name, args):
    """Through the API a length of 10 would become 9 frames (3 latents): refused with the two lengths that work,
    before the VAE runs (none is given here)."""
    with pytest.raises(ValueError, match=r"length is 10 frames, not 1 \+ 4k .*it would become 9 frames; set 9 or 13"):
        node(comfy_env, name).condition(*args())


def test_refining_at_the_input_size_logs_the_size_it_rounds_to(comfy_env, caplog):
    """'same as input' refines at multiples of 64 px (the block-sparse tiles): a 40x72 clip is refined at 64x128,
    and the log says so."""
    with caplog.at_level("WARNING", logger="longcat"):
        pixels = node(comfy_env, "LongCatRefineUpscale").upscale(frames(5, 40, 72), "same as input", True)[0]
    assert pixels.shape[1:3] == (64, 128)
    assert "72x40 is refined at 128x64" in caplog.text


def test_trim_refuses_more_frames_than_there_are(comfy_env):
    with pytest.raises(ValueError, match="cannot keep 186 frames after skipping 3: there are only 150 frames"):
        node(comfy_env, "LongCatTrimFrames").trim(frames(150, 8, 8), 186, 3)
