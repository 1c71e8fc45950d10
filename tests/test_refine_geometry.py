"""Refinement geometry (longcat-video.md §5): buckets, frame plan, resampling, trimming."""
import pytest
import torch

from longcat_pack.nodes.core.refine_geometry import (
    REFINE_BUCKETS_720P,
    refine_bucket,
    refine_frame_plan,
    trim_frames,
    upscale_frames,
)


def test_known_buckets():
    assert refine_bucket(480, 832) == (704, 1280)
    assert refine_bucket(832, 480) == (1280, 704)
    assert refine_bucket(720, 720) == (960, 960)
    assert refine_bucket(768, 1024) == (832, 1088)  # 4:3 landscape: key 0.76 is the closest to 0.75


def test_bucket_table_fits_the_bsa_tiles():
    for _, h, w in REFINE_BUCKETS_720P:
        assert h % 64 == 0 and w % 64 == 0  # VAE 8 x patch 2 x tile 4


def test_frame_plan_reference_example():
    plan = refine_frame_plan(93)
    assert (plan.interp_frames, plan.padded_frames, plan.latent_frames) == (186, 192, 48)
    assert plan.pad_back == 6 and plan.fps_factor == 2 and plan.output_frames == 186
    assert (plan.padded_frames - 1) // 4 + 1 == plan.latent_frames  # what the Wan VAE encodes


def test_frame_plan_spatial_only_keeps_frames():
    plan = refine_frame_plan(93, spatial_only=True)
    assert (plan.interp_frames, plan.fps_factor) == (93, 1)
    assert (plan.latent_frames, plan.padded_frames, plan.pad_back) == (24, 96, 3)


@pytest.mark.parametrize("frames", range(1, 70))
def test_frame_plan_rule(frames):
    plan = refine_frame_plan(frames)
    assert plan.latent_frames % 4 == 0 and plan.padded_frames == 4 * plan.latent_frames
    assert plan.padded_frames >= plan.interp_frames
    assert plan.latent_frames - 4 < -(-plan.interp_frames // 4) <= plan.latent_frames  # smallest such count
    assert plan.output_frames == min(plan.interp_frames, 4 * plan.latent_frames - 3)


def test_conditioned_plan_of_the_golden_image_refine():
    """golden refine_i2v: 5 stage-1 frames -> 10, the image as a 1-frame condition: 12 front copies fill 4 latents,
    the 9 other frames 3 latents -> 4 (7 back copies): 29 frames -> 8 latents."""
    plan = refine_frame_plan(5, condition_frames=1)
    assert (plan.cond_latent_frames, plan.pad_front, plan.noise_latent_frames, plan.pad_back) == (4, 12, 4, 7)
    assert (plan.padded_frames, plan.latent_frames, plan.output_frames) == (29, 8, 10)


def test_conditioned_plan_of_a_long_video_segment():
    """Each later segment of the long-video refine: 93 frames -> 186, the last 2 x 13 refined frames as condition:
    26 frames need 7 latents -> 8 (3 front copies), the other 160 frames 40 latents; decoded and trimmed: 186."""
    plan = refine_frame_plan(93, condition_frames=26)
    assert (plan.cond_latent_frames, plan.pad_front, plan.noise_latent_frames, plan.pad_back) == (8, 3, 40, 0)
    assert (plan.padded_frames, plan.latent_frames, plan.output_frames) == (189, 48, 186)


@pytest.mark.parametrize("frames", [1, 5, 13, 47, 93])
@pytest.mark.parametrize("condition", [1, 2, 13, 26])
def test_conditioned_plan_rule(frames, condition):
    if condition >= 2 * frames:
        with pytest.raises(ValueError, match="condition_frames"):
            refine_frame_plan(frames, condition_frames=condition)
        return
    plan = refine_frame_plan(frames, condition_frames=condition)
    assert plan.cond_latent_frames % 4 == 0 and plan.noise_latent_frames % 4 == 0
    assert plan.pad_front + condition == 1 + 4 * (plan.cond_latent_frames - 1)  # the condition fills its latents
    assert plan.pad_front < 16 and plan.pad_back < 16  # never a whole extra tile
    assert (plan.padded_frames - 1) // 4 + 1 == plan.latent_frames  # what the Wan VAE encodes
    assert plan.output_frames == plan.interp_frames  # 4L - 3 decoded frames always cover the clip after the pad


def test_upscale_pads_the_front_with_the_first_frame():
    frames = _frames(n=5)
    out = upscale_frames(frames, 8, 8, double_frames=True, condition_frames=1)
    plan = refine_frame_plan(5, condition_frames=1)
    assert out.shape[0] == plan.padded_frames == 29
    for i in range(plan.pad_front + 1):
        assert torch.equal(out[i], out[plan.pad_front])
    assert torch.equal(trim_frames(out, plan.output_frames, plan.pad_front),
                       upscale_frames(frames, 8, 8, double_frames=True)[:plan.interp_frames])


def _frames(n=5, h=6, w=10):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, h, w, 3, generator=g)


def test_upscale_shapes_and_range():
    frames = _frames()
    out = upscale_frames(frames, 12, 16, double_frames=True)
    plan = refine_frame_plan(5)
    assert out.shape == (plan.padded_frames, 12, 16, 3) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # align_corners=True keeps the corner pixels of the first and last source frames
    torch.testing.assert_close(out[0, 0, 0], frames[0, 0, 0])
    torch.testing.assert_close(out[plan.interp_frames - 1, -1, -1], frames[-1, -1, -1])


def test_upscale_doubles_frames_linearly():
    frames = _frames(n=3, h=4, w=4)
    out = upscale_frames(frames, 4, 4, double_frames=True)  # same size: only time is resampled
    # 3 -> 6 frames with align_corners: source positions 0, 0.4, 0.8, 1.2, 1.6, 2
    for i, pos in enumerate([0, 0.4, 0.8, 1.2, 1.6, 2.0]):
        lo = min(int(pos), 1)
        expected = frames[lo] * (lo + 1 - pos) + frames[lo + 1] * (pos - lo)
        torch.testing.assert_close(out[i], expected)


def test_padding_repeats_last_frame():
    frames = _frames(n=7)
    out = upscale_frames(frames, 8, 8, double_frames=True)
    plan = refine_frame_plan(7)
    assert plan.pad_back > 0
    for i in range(plan.interp_frames, plan.padded_frames):
        assert torch.equal(out[i], out[plan.interp_frames - 1])


def test_spatial_only_keeps_frame_count():
    frames = _frames(n=5)
    out = upscale_frames(frames, 8, 12, double_frames=False)
    plan = refine_frame_plan(5, spatial_only=True)
    assert out.shape[0] == plan.padded_frames == 16
    resized = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2), size=(8, 12), mode="bilinear",
                                              align_corners=True).permute(0, 2, 3, 1)
    torch.testing.assert_close(out[:5], resized)
    assert torch.equal(out[-1], out[4])


def test_trim():
    frames = _frames(n=8)
    assert torch.equal(trim_frames(frames, 5), frames[:5])
    assert torch.equal(trim_frames(frames, 3, skip=2), frames[2:5])
    with pytest.raises(ValueError):
        trim_frames(frames, 0)
    with pytest.raises(ValueError):
        trim_frames(frames, 3, skip=-1)


def test_a_trim_that_leaves_no_frame_is_refused():
    """keep 5, skip 9 of 9: an empty batch breaks VAEEncode and SaveImage, and SaveVideo writes nothing."""
    with pytest.raises(ValueError, match="skipping 9 of 9 frames leaves no frame to keep \\(keep 5\\)"):
        trim_frames(_frames(n=9), 5, skip=9)
    assert trim_frames(_frames(n=9), 1, skip=8).shape[0] == 1
    with pytest.raises(ValueError, match="cannot keep 5 frames after skipping 8: there are only 9"):
        trim_frames(_frames(n=9), 5, skip=8)
