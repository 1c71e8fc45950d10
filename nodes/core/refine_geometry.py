"""Geometry of the 480p -> 720p refinement stage: the target bucket, the frame plan, and the frame resampling.

Everything follows the reference's `generate_refine`: bilinear resize (align_corners) to the 720p bucket,
trilinear doubling of the frame count (15 -> 30 fps), padding (the first frame before a condition, the last frame
at the end) so the latent frame counts are multiples of 4 (block-sparse attention groups 4 latent frames per tile),
and trimming after decoding.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .conditioning import VAE_TIME_STRIDE

# The reference's 720p buckets for a spatial granularity of 64 pixels (`ASPECT_RATIO_960_F64`; 64 = VAE 8 x
# patch 2 x BSA tile 4, so the patched grid divides into 4x4 tiles): (height / width key, height, width).
REFINE_BUCKETS_720P = (
    (0.22, 448, 2048), (0.29, 512, 1792), (0.36, 576, 1600), (0.45, 640, 1408), (0.55, 704, 1280),
    (0.63, 768, 1216), (0.76, 832, 1088), (0.88, 896, 1024), (1.00, 960, 960), (1.14, 1024, 896),
    (1.31, 1088, 832), (1.50, 1152, 768), (1.58, 1216, 768), (1.82, 1280, 704), (1.91, 1344, 704),
    (2.20, 1408, 640), (2.30, 1472, 640), (2.67, 1536, 576), (2.89, 1664, 576), (3.62, 1856, 512),
    (3.75, 1920, 512),
)

_BSA_LATENT_FRAMES = 4  # block-sparse attention tiles span 4 latent frames


def refine_bucket(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the 720p bucket whose key is closest to height / width, as the reference picks it.

    480x832 -> 704x1280 and 832x480 -> 1280x704. On a tie the bucket listed first wins (the reference sorts
    stably). The table is `REFINE_BUCKETS_720P`, copied from the reference.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    ratio = height / width
    _, h, w = min(REFINE_BUCKETS_720P, key=lambda bucket: abs(bucket[0] - ratio))
    return h, w


@dataclass(frozen=True)
class RefineFramePlan:
    """Frame counts of one refinement run (`generate_refine`).

    num_frames: stage-1 frames. interp_frames: after temporal doubling (or unchanged when spatial only).
    condition_frames: the first of the interp frames that are the condition (0 = none; an image: 1; the previous
    refined segment's overlap: 26). cond_latent_frames: the condition's latent frames, rounded up to a multiple of 4
    for the BSA tiles. pad_front: copies of the first frame put before the clip so the condition fills exactly
    cond_latent_frames (1 + 4 (n_c - 1) frames). noise_latent_frames: latents of the generated part, a multiple of 4.
    pad_back: copies of the last frame appended so those fill whole latents. padded_frames: frames handed to the VAE
    encoder; latent_frames: what it encodes them to. fps_factor: output fps / input fps. output_frames: frames kept
    after decoding, from frame pad_front on; decoding L latents gives 4L - 3 frames, which falls short of
    interp_frames only without a condition when interp_frames is 16m - 2 .. 16m (e.g. 96 -> 192 keeps 189).
    """

    num_frames: int
    interp_frames: int
    condition_frames: int
    cond_latent_frames: int
    pad_front: int
    noise_latent_frames: int
    pad_back: int
    padded_frames: int
    latent_frames: int
    fps_factor: int
    output_frames: int


def refine_frame_plan(num_frames: int, spatial_only: bool = False, condition_frames: int = 0) -> RefineFramePlan:
    """The reference's padding rule, also with a condition at the start of the clip.

    Without a condition: latents = 4 * ceil(ceil(interp / 4) / 4), padded = 4 * latents: 93 -> 186 -> 47 -> 48
    latents -> 192 frames (6 pad frames). With one: the condition's 1 + ceil((c - 1) / 4) latents are rounded up to
    a multiple of 4 and the clip is front-padded to fill them (an image: 12 copies, 4 latents); the other
    interp - c frames take the rule above. The Wan VAE maps 1 + 4k frames to 1 + k latents, so the padded clip
    encodes to exactly cond + noise latents.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    fps_factor = 1 if spatial_only else 2
    interp = fps_factor * num_frames
    if not 0 <= condition_frames < interp:
        raise ValueError(f"condition_frames must be in 0..{interp - 1} (the clip has {interp} frames to refine), "
                         f"got {condition_frames}")
    cond_latents, pad_front = refine_condition_padding(condition_frames)
    noise_frames = interp - condition_frames
    noise_latents = _round_up(math.ceil(noise_frames / VAE_TIME_STRIDE), _BSA_LATENT_FRAMES)
    pad_back = VAE_TIME_STRIDE * noise_latents - noise_frames
    latents = cond_latents + noise_latents
    decoded = VAE_TIME_STRIDE * latents - 3
    return RefineFramePlan(
        num_frames=num_frames,
        interp_frames=interp,
        condition_frames=condition_frames,
        cond_latent_frames=cond_latents,
        pad_front=pad_front,
        noise_latent_frames=noise_latents,
        pad_back=pad_back,
        padded_frames=pad_front + interp + pad_back,
        latent_frames=latents,
        fps_factor=fps_factor,
        output_frames=min(interp, decoded - pad_front),
    )


def refine_condition_padding(condition_frames: int) -> tuple[int, int]:
    """(latent frames, front padding frames) of a refinement condition of `condition_frames` frames: its
    1 + ceil((c - 1) / 4) latents rounded up to a multiple of 4 (the BSA tile), filled by repeating its first frame
    in front (an image: 4 latents, 12 copies; 26 frames: 8 latents, 3 copies). No condition: (0, 0)."""
    if not condition_frames:
        return 0, 0
    latents = _round_up(1 + math.ceil((condition_frames - 1) / VAE_TIME_STRIDE), _BSA_LATENT_FRAMES)
    return latents, 1 + VAE_TIME_STRIDE * (latents - 1) - condition_frames


def _round_up(n, multiple):
    return multiple * math.ceil(n / multiple)


def upscale_frames(frames: torch.Tensor, height: int, width: int, double_frames: bool,
                   condition_frames: int = 0) -> torch.Tensor:
    """Resize ComfyUI IMAGE frames [F, H, W, C] (0..1) for the refinement encoder.

    Bilinear resize with align_corners=True to (height, width); when double_frames, trilinear interpolation to
    2F frames (align_corners=True, so frame 0 and frame F-1 are kept exactly); then the first frame is repeated
    `pad_front` times before and the last `pad_back` times after, as `refine_frame_plan` says. Returns float32
    [padded, height, width, C].
    """
    if frames.dim() != 4:
        raise ValueError(f"expected frames [F, H, W, C], got shape {tuple(frames.shape)}")
    plan = refine_frame_plan(frames.shape[0], spatial_only=not double_frames, condition_frames=condition_frames)
    video = frames.float().permute(0, 3, 1, 2)  # [F, C, H, W]
    video = F.interpolate(video, size=(height, width), mode="bilinear", align_corners=True)
    video = video.permute(1, 0, 2, 3).unsqueeze(0)  # [1, C, F, h, w]
    if double_frames:
        video = F.interpolate(video, size=(plan.interp_frames, height, width), mode="trilinear", align_corners=True)
    video = video[0].permute(1, 2, 3, 0)  # [F', h, w, C]
    front = video[:1].expand(plan.pad_front, -1, -1, -1)
    back = video[-1:].expand(plan.pad_back, -1, -1, -1)
    return torch.cat([front, video, back]).clamp_(0.0, 1.0)


def trim_frames(frames: torch.Tensor, count: int, skip: int = 0) -> torch.Tensor:
    """`count` frames from frame `skip` on (the decoded refinement carries its padding before and after)."""
    if count < 1 or skip < 0:
        raise ValueError(f"count must be at least 1 and skip at least 0, got count {count}, skip {skip}")
    if skip >= frames.shape[0]:
        raise ValueError(f"skipping {skip} of {frames.shape[0]} frames leaves no frame to keep (keep {count})")
    if skip + count > frames.shape[0]:
        raise ValueError(f"cannot keep {count} frames after skipping {skip}: there are only {frames.shape[0]} "
                         "frames (connect LongCat Refine Upscale's keep_frames and skip_frames)")
    return frames[skip:skip + count]
