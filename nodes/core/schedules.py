"""Sigma schedules and CFG-Zero* guidance of the LongCat-Video reference sampler, for ComfyUI's flow sampling.

ComfyUI's SIGMAS are on the 0..1 scale (timestep = 1000 * sigma) and go through the model unchanged, so the
reference's sampling shift of 12 is applied here, explicitly. Every schedule is built in float64 exactly the way
the reference builds it, then returned as float32 with the terminal sigma 0 appended.
"""
import numpy as np
import torch

SHIFT = 12.0
_DISTILL_GRID_POINTS = 50  # the distill LoRA was trained on the sigmas (1000 - 20 j) / 1000, j = 0..49


def shift_sigmas(sigmas, shift: float = SHIFT) -> torch.Tensor:
    """sigma' = s * sigma / (1 + (s - 1) * sigma), computed in float64, returned in the input's float dtype."""
    sigmas = torch.as_tensor(sigmas)
    s = sigmas.double()
    shifted = shift * s / (1.0 + (shift - 1.0) * s)
    return shifted.to(sigmas.dtype if sigmas.is_floating_point() else torch.float32)


def _finish(sigmas64: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas64, sigmas64.new_zeros(1)]).to(torch.float32)


def _base_sigmas64(steps: int) -> torch.Tensor:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return shift_sigmas(torch.linspace(1.0, 0.001, steps, dtype=torch.float64))


def base_sigmas(steps: int = 50) -> torch.Tensor:
    """The base model's schedule: linspace(1, 0.001, steps) shifted by 12, then 0 (steps + 1 values)."""
    return _finish(_base_sigmas64(steps))


def distill_sigmas(steps: int = 16) -> torch.Tensor:
    """The distill LoRA's schedule: `steps` points of its 50-point training grid, shifted by 12, then 0.

    The points are grid[floor(linspace(0, 50, steps, endpoint=False))]; numpy's linspace is used as in the
    reference so that the floor lands on the same indices for every step count.
    """
    if not 1 <= steps <= _DISTILL_GRID_POINTS:
        raise ValueError(f"distill steps must be in 1..{_DISTILL_GRID_POINTS}, got {steps}")
    grid = (1000.0 - 20.0 * torch.arange(_DISTILL_GRID_POINTS, dtype=torch.float64)) / 1000.0
    picks = np.floor(np.linspace(0, _DISTILL_GRID_POINTS, num=steps, endpoint=False)).astype(np.int64)
    return _finish(shift_sigmas(grid[torch.from_numpy(picks)]))


def avatar_distill_sigmas(steps: int = 8) -> torch.Tensor:
    """LongCat-Video-Avatar v1.5's DMD schedule: of the 1000-point grid 1 - i/999, the points i = 1000 - k * (1000 //
    steps) for k = steps .. 1 (8 steps: 1, 0.8749, ..., 0.1241), shifted by 12, then 0."""
    if not 1 <= steps <= 1000:
        raise ValueError(f"avatar distill steps must be in 1..1000, got {steps}")
    picks = 1000 - torch.arange(steps, 0, -1, dtype=torch.float64) * (1000 // steps)
    return _finish(shift_sigmas(1.0 - picks / 999.0))


def refine_sigmas(steps: int = 50, t_thresh: float = 0.5) -> torch.Tensor:
    """The refinement schedule: the shifted base schedule below t_thresh, with t_thresh prepended, then 0.

    The refinement starts from the upscaled stage-1 latent noised to t_thresh, so it skips the high-noise part
    of the schedule. With the defaults the model timesteps are 500, 443.0, 343.5, 207.8, 11.9 (5 model calls).
    """
    if not 0.0 < t_thresh <= 1.0:
        raise ValueError(f"t_thresh must be in (0, 1], got {t_thresh}")
    timesteps = 1000.0 * _base_sigmas64(steps)
    start = 1000.0 * t_thresh
    kept = timesteps[timesteps < start]
    return _finish(torch.cat([kept.new_tensor([start]), kept]) / 1000.0)


ENHANCE_HF_TAIL_START = 500.0  # timesteps from here down run on a uniform grid
ENHANCE_HF_TAIL_STEPS = 10


def enhance_hf_sigmas(steps: int = 50) -> torch.Tensor:
    """Video continuation's default ("enhance_hf"): the shifted base timesteps above 500, then 500, 450, ..., 50
    (10 uniform steps that spend more of the budget on high-frequency detail), then 0. 56 model calls by default."""
    timesteps = 1000.0 * _base_sigmas64(steps)
    tail = torch.linspace(ENHANCE_HF_TAIL_START, 0.0, ENHANCE_HF_TAIL_STEPS + 1, dtype=torch.float64)[:-1]
    return _finish(torch.cat([timesteps[timesteps > ENHANCE_HF_TAIL_START], tail]) / 1000.0)


def optimized_scale(cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
    """CFG-Zero*'s s* = <v_c, v_u> / (||v_u||^2 + 1e-8) per batch element, as a float32 tensor of shape [B]."""
    c = cond.reshape(cond.shape[0], -1).float()
    u = uncond.reshape(uncond.shape[0], -1).float()
    return (c * u).sum(dim=1) / ((u * u).sum(dim=1) + 1e-8)


def cfg_zero_star(cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """The reference's guidance: v = s* v_u + g (v_c - s* v_u), with s* from `optimized_scale`.

    The sign of the model output does not matter: negating both inputs leaves s* unchanged (it is a ratio of
    two products of the same sign) and negates v, so guiding the raw DiT output and negating afterwards equals
    guiding the negated output (the flow velocity). The result has cond's dtype.
    """
    s = optimized_scale(cond, uncond).view(-1, *([1] * (cond.dim() - 1)))
    c, u = cond.float(), uncond.float()
    return (s * u + guidance * (c - s * u)).to(cond.dtype)
