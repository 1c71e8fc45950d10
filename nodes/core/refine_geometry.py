"""Geometry of the 480p -> 720p refinement stage: the target bucket, the frame plan, and the frame resampling.

Everything follows the reference's `generate_refine`: bilinear resize (align_corners) to the 720p bucket,
trilinear doubling of the frame count (15 -> 30 fps), padding with the last frame so the latent frame count is a
multiple of 4 (block-sparse attention groups 4 latent frames per tile), and trimming after decoding.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The reference's 720p buckets for a spatial granularity of 64 pixels (`ASPECT_RATIO_960_F64`; 64 = VAE 8 x
# patch 2 x BSA tile 4, so the patched grid divides into 4x4 tiles): (height / width key, height, width).
REFINE_BUCKETS_720P = (
    (0.22, 448, 2048), (0.29, 512, 1792), (0.36, 576, 1600), (0.45, 640, 1408), (0.55, 704, 1280),
    (0.63, 768, 1216), (0.76, 832, 1088), (0.88, 896, 1024), (1.00, 960, 960), (1.14, 1024, 896),
    (1.31, 1088, 832), (1.50, 1152, 768), (1.58, 1216, 768), (1.82, 1280, 704), (1.91, 1344, 704),
    (2.20, 1408, 640), (2.30, 1472, 640), (2.67, 1536, 576), (2.89, 1664, 576), (3.62, 1856, 512),
    (3.75, 1920, 512),
)

_VAE_TIME_STRIDE = 4  # Wan 2.1 VAE: 4 frames per latent frame
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
    """Frame counts of one refinement run.

    num_frames: stage-1 frames. interp_frames: after temporal doubling (or unchanged when spatial only).
    padded_frames: frames handed to the VAE encoder, = 4 * latent_frames. pad_frames: copies of the last frame
    appended. latent_frames: latent frames encoded, a multiple of 4. fps_factor: output fps / input fps.
    output_frames: frames kept after decoding; decoding L latents gives 4L - 3 frames, which the reference trims
    to interp_frames; it falls short only when interp_frames is 16m - 2 .. 16m (e.g. 96 -> 192 keeps 189).
    """

    num_frames: int
    interp_frames: int
    padded_frames: int
    pad_frames: int
    latent_frames: int
    fps_factor: int
    output_frames: int


def refine_frame_plan(num_frames: int, spatial_only: bool = False) -> RefineFramePlan:
    """The reference's padding rule: latent_frames = 4 * ceil(ceil(interp / 4) / 4), padded = 4 * latent_frames.

    The reference counts ceil(interp / 4) latent frames, rounds that up to a multiple of 4 for the BSA tiles and
    pads to 4 frames per latent frame: 93 -> 186 -> 47 -> 48 latents -> 192 frames (6 pad frames). The Wan VAE
    maps 4L frames to (4L - 1) // 4 + 1 = L latent frames, so the encoded count is exactly latent_frames.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    fps_factor = 1 if spatial_only else 2
    interp = fps_factor * num_frames
    latents = _BSA_LATENT_FRAMES * math.ceil(math.ceil(interp / _VAE_TIME_STRIDE) / _BSA_LATENT_FRAMES)
    padded = _VAE_TIME_STRIDE * latents
    return RefineFramePlan(
        num_frames=num_frames,
        interp_frames=interp,
        padded_frames=padded,
        pad_frames=padded - interp,
        latent_frames=latents,
        fps_factor=fps_factor,
        output_frames=min(interp, _VAE_TIME_STRIDE * latents - 3),
    )


def upscale_frames(frames: torch.Tensor, height: int, width: int, double_frames: bool) -> torch.Tensor:
    """Resize ComfyUI IMAGE frames [F, H, W, C] (0..1) for the refinement encoder.

    Bilinear resize with align_corners=True to (height, width); when double_frames, trilinear interpolation to
    2F frames (align_corners=True, so frame 0 and frame F-1 are kept exactly); then the last frame is repeated up
    to `refine_frame_plan(F, not double_frames).padded_frames`. Returns float32 [padded, height, width, C].
    """
    if frames.dim() != 4:
        raise ValueError(f"expected frames [F, H, W, C], got shape {tuple(frames.shape)}")
    plan = refine_frame_plan(frames.shape[0], spatial_only=not double_frames)
    video = frames.float().permute(0, 3, 1, 2)  # [F, C, H, W]
    video = F.interpolate(video, size=(height, width), mode="bilinear", align_corners=True)
    video = video.permute(1, 0, 2, 3).unsqueeze(0)  # [1, C, F, h, w]
    if double_frames:
        video = F.interpolate(video, size=(plan.interp_frames, height, width), mode="trilinear", align_corners=True)
    video = video[0].permute(1, 2, 3, 0)  # [F', h, w, C]
    pad = video[-1:].expand(plan.pad_frames, -1, -1, -1)
    return torch.cat([video, pad]).clamp_(0.0, 1.0)


def trim_frames(frames: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` frames (the decoded refinement carries the padding at its end)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return frames[:count]
