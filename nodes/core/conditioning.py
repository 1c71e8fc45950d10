"""Condition frames: image-to-video, video continuation and conditioned refinement (the reference's
`generate_i2v`, `generate_vc`, `generate_refine`).

The condition is the first n_c latent frames of the clip. They stay clean: each step gives them timestep 0, they
attend only to themselves, get no cross-attention, and are not stepped. In ComfyUI that is a latent whose first
n_c frames hold the condition plus a noise mask that is 0 on those frames and 1 elsewhere: the sampler keeps
masked frames at their clean value, and the model reads n_c (and the per-frame timesteps) off the mask.
"""
import torch

VAE_TIME_STRIDE = 4  # Wan 2.1 VAE: the first frame alone, then 4 frames per latent frame
LATENT_CHANNELS = 16


class ConditionError(ValueError):
    """A condition that does not fit its clip (sizes, frame counts); the message says which and how."""


def latent_frame_count(video_frames):
    """Latent frames the Wan 2.1 VAE makes of `video_frames` frames (as EmptyHunyuanLatentVideo counts them)."""
    if video_frames < 1:
        raise ConditionError(f"a clip needs at least 1 frame, got {video_frames}")
    return (video_frames - 1) // VAE_TIME_STRIDE + 1


def whole_latent_frames(frames, name):
    """The latent frames of a clip of `frames` frames given as input `name`, which must be 1 + 4k (the Wan VAE encodes
    the first frame alone, then 4 frames per latent): any other count would be cut silently, so it is refused."""
    if frames < 1 or (frames - 1) % VAE_TIME_STRIDE:
        lower = max(1, frames - (frames - 1) % VAE_TIME_STRIDE)
        raise ConditionError(f"{name} is {frames} frames, not 1 + 4k (1, 5, 9, 13, ..., 93): the Wan VAE encodes the "
                             f"first frame alone and then 4 frames per latent frame, so it would become "
                             f"{lower} frames; set {lower} or {lower + VAE_TIME_STRIDE}")
    return 1 + (frames - 1) // VAE_TIME_STRIDE


def continuation_condition_latents(num_cond_frames):
    """n_c of a continuation: the last `num_cond_frames` frames (1 + 4k: whole VAE groups) encode to 1 + k latents."""
    return whole_latent_frames(num_cond_frames, "num_cond_frames")


def conditioned_latent(cond_latent, length, start_latent=None):
    """(samples, noise_mask) of a `length`-frame clip whose first frames are `cond_latent` (raw VAE latents
    [B, 16, n_c, h, w], all of them the condition). The rest is zeros, or `start_latent` (a [B, 16, T, h, w] latent
    of the whole clip, for refinement). The mask [B, 1, T, 1, 1] is 0 on the condition and 1 elsewhere."""
    if cond_latent.dim() != 5 or cond_latent.shape[1] != LATENT_CHANNELS:
        raise ConditionError(f"cond_latent must be a video latent [batch, {LATENT_CHANNELS}, frames, height, width] "
                             f"as VAEEncode gives it, got {list(cond_latent.shape)}")
    batch, _, n_c, h, w = cond_latent.shape
    frames = latent_frame_count(length)
    if n_c >= frames:
        raise ConditionError(f"the condition ({n_c} latent frames) is not shorter than the clip ({length} frames = "
                             f"{frames} latent frames): nothing would be generated; raise length")
    if start_latent is None:
        samples = cond_latent.new_zeros(batch, LATENT_CHANNELS, frames, h, w)
    else:
        expected = (batch, LATENT_CHANNELS, frames, h, w)
        if tuple(start_latent.shape) != expected:
            raise ConditionError(f"latent {list(start_latent.shape)} does not fit the clip: expected {list(expected)} "
                                 f"({length} frames, the condition's size {h}x{w} latents, {LATENT_CHANNELS} "
                                 "channels)")
        samples = start_latent.clone()
    samples[:, :, :n_c] = cond_latent
    mask = torch.ones(batch, 1, frames, 1, 1, dtype=torch.float32, device=samples.device)
    mask[:, :, :n_c] = 0.0
    return samples, mask


def condition_frame_count(denoise_mask):
    """n_c read off a sampler's denoise mask [B, C, T, H, W]: the leading frames that are entirely 0. Anything else
    the mask holds (a spatial inpainting mask) is left to ComfyUI's ordinary masked sampling."""
    if denoise_mask.dim() != 5:
        return 0
    clean = denoise_mask.detach().amax(dim=(1, 3, 4)) == 0  # [B, T]
    counts = clean.int().cumprod(dim=1).sum(dim=1)
    if bool((counts != counts[0]).any()):
        raise ConditionError(f"the batch's condition lengths differ ({counts.tolist()} latent frames): LongCat runs "
                             "one condition length per batch; sample them separately")
    return int(counts[0])


def per_frame_timesteps(timestep, frames, n_c):
    """[B] timesteps -> [B, T]: timestep 0 on the n_c condition frames, t on the others (the reference's rule)."""
    t = timestep.reshape(-1, 1).expand(-1, frames).clone()
    t[:, :n_c] = 0
    return t
