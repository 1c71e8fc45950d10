"""Condition frames (core): the clip latent and noise mask a condition makes, and what the model reads back."""
import pytest
import torch

from longcat_pack.nodes.core.conditioning import ConditionError, condition_frame_count, conditioned_latent, \
    continuation_condition_latents, latent_frame_count, per_frame_timesteps


def sampler_mask(mask, shape):
    """The mask as ComfyUI's sampler hands it to the model: interpolated to the latent and repeated over channels."""
    import torch.nn.functional as F
    return F.interpolate(mask, size=shape[2:], mode="trilinear").repeat(1, shape[1], 1, 1, 1)


def test_condition_at_the_start_of_an_empty_clip():
    cond = torch.randn(1, 16, 1, 6, 8)
    samples, mask = conditioned_latent(cond, length=93)
    assert samples.shape == (1, 16, 24, 6, 8) and mask.shape == (1, 1, 24, 1, 1)
    assert torch.equal(samples[:, :, :1], cond) and not samples[:, :, 1:].any()
    assert mask.flatten().tolist() == [0.0] + [1.0] * 23


def test_condition_replaces_the_start_of_a_given_latent():
    start = torch.randn(2, 16, 8, 4, 6)
    cond = torch.randn(2, 16, 4, 4, 6)
    samples, mask = conditioned_latent(cond, length=29, start_latent=start)
    assert torch.equal(samples[:, :, :4], cond) and torch.equal(samples[:, :, 4:], start[:, :, 4:])
    assert mask[:, 0, :, 0, 0].tolist() == [[0.0] * 4 + [1.0] * 4] * 2
    assert not torch.equal(start[:, :, :4], cond)  # the input latent itself is not changed


def test_model_reads_the_condition_back_off_the_sampler_mask():
    samples, mask = conditioned_latent(torch.randn(1, 16, 2, 4, 6), length=17)
    prepared = sampler_mask(mask, (2,) + tuple(samples.shape[1:]))  # cond + uncond of CFG
    assert condition_frame_count(prepared) == 2
    t = per_frame_timesteps(torch.tensor([700.0, 700.0]), samples.shape[2], 2)
    assert t.tolist() == [[0, 0, 700, 700, 700]] * 2
    assert condition_frame_count(torch.ones(1, 16, 5, 4, 6)) == 0  # a mask without condition frames


@pytest.mark.parametrize("frames,latents", [(1, 1), (5, 2), (9, 3), (13, 4), (93, 24)])
def test_continuation_latents(frames, latents):
    assert continuation_condition_latents(frames) == latents == latent_frame_count(frames)


@pytest.mark.parametrize("frames", [0, 2, 4, 12, 14])
def test_condition_frames_must_fill_whole_latents(frames):
    with pytest.raises(ConditionError, match=r"1 \+ 4k"):
        continuation_condition_latents(frames)


def test_condition_longer_than_the_clip():
    with pytest.raises(ConditionError, match="not shorter than the clip"):
        conditioned_latent(torch.randn(1, 16, 4, 4, 6), length=13)


def test_latent_of_the_wrong_size_or_channels():
    with pytest.raises(ConditionError, match=r"does not fit the clip: expected \[1, 16, 8, 4, 6\]"):
        conditioned_latent(torch.randn(1, 16, 1, 4, 6), length=29, start_latent=torch.randn(1, 16, 7, 4, 6))
    with pytest.raises(ConditionError, match=r"does not fit the clip"):
        conditioned_latent(torch.randn(1, 16, 1, 4, 6), length=29, start_latent=torch.randn(1, 16, 8, 4, 8))
    with pytest.raises(ConditionError, match="16, frames, height, width"):
        conditioned_latent(torch.randn(1, 48, 1, 4, 6), length=29)  # a Wan 2.2 VAE latent


def test_only_whole_leading_frames_are_a_condition():
    """Masks of other shapes (inpainting) are left to ComfyUI's masked sampling: no condition frames."""
    mask = torch.ones(1, 16, 4, 4, 4)
    mask[:, :, 0, :2] = 0  # half a frame
    assert condition_frame_count(mask) == 0
    mask = torch.ones(1, 16, 4, 4, 4)
    mask[:, :, 2] = 0  # a clean frame after a noisy one
    assert condition_frame_count(mask) == 0
    mask[:, :, :1] = 0
    assert condition_frame_count(mask) == 1
    assert condition_frame_count(torch.zeros(1, 4, 4)) == 0  # an image mask


def test_batch_elements_with_different_condition_lengths_are_refused():
    mask = torch.ones(2, 16, 4, 4, 4)
    mask[0, :, 0] = 0
    with pytest.raises(ConditionError, match=r"condition lengths differ \(\[1, 0\] latent frames\)"):
        condition_frame_count(mask)
