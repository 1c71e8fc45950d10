"""Schedules against the lists in longcat-video.md §4, recomputed independently with numpy."""
import json

import numpy as np
import pytest
import torch

from longcat_pack.nodes.core.schedules import (
    base_sigmas,
    cfg_zero_star,
    distill_sigmas,
    enhance_hf_sigmas,
    optimized_scale,
    refine_sigmas,
    shift_sigmas,
)

DISTILL_UNSHIFTED = [1.0, .94, .88, .82, .76, .70, .64, .58, .50, .44, .38, .32, .26, .20, .14, .08]


def np_shift(s, shift=12.0):
    s = np.asarray(s, dtype=np.float64)
    return shift * s / (1 + (shift - 1) * s)


def test_shift_formula():
    s = np.linspace(0, 1, 11)
    np.testing.assert_allclose(shift_sigmas(torch.tensor(s)).numpy(), np_shift(s), rtol=0, atol=1e-15)
    np.testing.assert_allclose(shift_sigmas(torch.tensor(s), shift=3.0).numpy(), np_shift(s, 3.0), atol=1e-15)


def test_base_schedule():
    sig = base_sigmas(50)
    assert sig.dtype == torch.float32 and sig.dim() == 1
    assert len(sig) == 51 and sig[0].item() == 1.0 and sig[-1].item() == 0.0
    assert bool((sig[1:] < sig[:-1]).all())
    np.testing.assert_allclose(sig[:-1].numpy(), np_shift(np.linspace(1, 0.001, 50)), rtol=1e-6)
    assert len(base_sigmas(7)) == 8


def test_distill_schedule():
    sig = distill_sigmas(16)
    assert sig.dtype == torch.float32 and len(sig) == 17 and sig[-1].item() == 0.0
    np.testing.assert_allclose(sig[:-1].numpy(), np_shift(DISTILL_UNSHIFTED), rtol=1e-6)
    # the last step goes from about 0.51 to 0
    assert sig[-2].item() == pytest.approx(12 * 0.08 / (1 + 11 * 0.08), rel=1e-6)
    assert sig[-2].item() == pytest.approx(0.51, abs=0.005)


def test_distill_other_step_counts_use_the_grid():
    grid = (1000 - 20 * np.arange(50)) / 1000
    for steps in (1, 8, 25, 50):
        picks = np.floor(np.linspace(0, 50, steps, endpoint=False)).astype(int)
        np.testing.assert_allclose(distill_sigmas(steps)[:-1].numpy(), np_shift(grid[picks]), rtol=1e-6)
    with pytest.raises(ValueError):
        distill_sigmas(51)


def test_refine_schedule():
    sig = refine_sigmas()
    assert sig.dtype == torch.float32 and sig[-1].item() == 0.0
    np.testing.assert_allclose((1000 * sig[:-1]).numpy(), [500, 443.0, 343.5, 207.8, 11.9], atol=0.1)
    assert len(sig) - 1 == 5  # model calls


def test_cfg_zero_star_matches_numpy():
    g = torch.Generator().manual_seed(0)
    cond = torch.randn(3, 4, 2, 5, 5, generator=g)
    uncond = torch.randn(3, 4, 2, 5, 5, generator=g)
    c = cond.double().numpy().reshape(3, -1)
    u = uncond.double().numpy().reshape(3, -1)
    s = np.einsum("bi,bi->b", c, u) / (np.einsum("bi,bi->b", u, u) + 1e-8)
    expected = (s[:, None] * u + 4.0 * (c - s[:, None] * u)).reshape(cond.shape)
    np.testing.assert_allclose(optimized_scale(cond, uncond).numpy(), s, rtol=1e-5)
    out = cfg_zero_star(cond, uncond, 4.0)
    assert out.shape == cond.shape and out.dtype == cond.dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_cfg_zero_star_same_direction():
    uncond = torch.randn(2, 16, 3, 4, 4)
    np.testing.assert_allclose(optimized_scale(uncond, uncond).numpy(), [1.0, 1.0], rtol=1e-6)
    torch.testing.assert_close(cfg_zero_star(uncond, uncond, 4.0), uncond)
    # a condition along the same direction is scaled back exactly: s* = 2, v = cond
    np.testing.assert_allclose(optimized_scale(2 * uncond, uncond).numpy(), [2.0, 2.0], rtol=1e-6)
    torch.testing.assert_close(cfg_zero_star(2 * uncond, uncond, 4.0), 2 * uncond)


def test_cfg_zero_star_sign_invariance():
    cond, uncond = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(cfg_zero_star(-cond, -uncond, 3.5), -cfg_zero_star(cond, uncond, 3.5))


def test_enhance_hf_is_the_continuation_schedule_of_the_golden_run(golden_dir):
    """56 timesteps: the shifted 50-step ones above 500, then 500, 450, ..., 50 (as the golden vc_enhance_hf ran)."""
    cases = json.loads((golden_dir / "pipeline_cases.json").read_text())["cases"]
    reference = torch.tensor(next(c for c in cases if c["name"] == "vc_enhance_hf")["timesteps"])
    sigmas = enhance_hf_sigmas()
    assert len(sigmas) == 57 and sigmas[-1] == 0
    torch.testing.assert_close(1000 * sigmas[:-1], reference, atol=2e-4, rtol=0)  # float32 rounding of the shift
    assert (1000 * sigmas[-11:-1]).tolist() == [500, 450, 400, 350, 300, 250, 200, 150, 100, 50]
    base = 1000 * base_sigmas(50)
    torch.testing.assert_close(sigmas[:-11], base[base > 500] / 1000, atol=0, rtol=1e-6)  # the base head


def test_avatar_distill_schedule():
    """LongCat-Video-Avatar v1.5's `get_timesteps_sigmas(use_distill=True)` recomputed: the 1000-point grid flipped,
    indices 1000 - k * (1000 // 8), shifted by 12; the golden README's values."""
    from longcat_pack.nodes.core.schedules import avatar_distill_sigmas
    grid = np.linspace(0, 1, 1000)[::-1]
    picks = 1000 - np.arange(1, 9) * 125
    expected = np_shift(grid[picks][::-1])
    np.testing.assert_allclose(avatar_distill_sigmas(8)[:-1].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(avatar_distill_sigmas(8).numpy(),
                               [1, 0.9882, 0.9729, 0.9523, 0.9229, 0.8778, 0.7994, 0.6297, 0], atol=1e-4)
