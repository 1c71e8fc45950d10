"""Integrated loudness of ITU-R BS.1770-4 and normalisation to a target, as the reference avatar pipeline does it
with pyloudnorm 0.1.1 (`Meter(rate).integrated_loudness`, `normalize.loudness`): the same K-weighting biquads
(RBJ cookbook high shelf +4 dB at 1500 Hz, high pass at 38 Hz), 400 ms blocks every 100 ms, absolute gate
-70 LUFS, relative gate -10 LU. Mono, float64, vectorised (the reference loops over blocks in Python)."""
import math

import numpy as np
from scipy.signal import lfilter

BLOCK_SECONDS = 0.4
BLOCK_STEP = 0.25  # 75 % overlap
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0


def _biquad(kind, gain_db, q, fc, rate):
    """(b, a) of one RBJ cookbook biquad, normalised by a0 (pyloudnorm's IIRfilter)."""
    amp = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    alpha, cos = math.sin(w0) / (2.0 * q), math.cos(w0)
    if kind == "high_shelf":
        root = 2 * math.sqrt(amp) * alpha
        b = [amp * ((amp + 1) + (amp - 1) * cos + root), -2 * amp * ((amp - 1) + (amp + 1) * cos),
             amp * ((amp + 1) + (amp - 1) * cos - root)]
        a = [(amp + 1) - (amp - 1) * cos + root, 2 * ((amp - 1) - (amp + 1) * cos), (amp + 1) - (amp - 1) * cos - root]
    else:  # high pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return np.array(b) / a[0], np.array(a) / a[0]


def k_weighted(wave, rate):
    """The K-weighted signal: the head's acoustic response (high shelf), then the RLB high pass."""
    shelf = _biquad("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0, rate)
    high_pass = _biquad("high_pass", 0.0, 0.5, 38.0, rate)
    return lfilter(*high_pass, lfilter(*shelf, np.asarray(wave, dtype=np.float64)))


def integrated_loudness(wave, rate):
    """Gated loudness in LUFS of a mono waveform at least one block (0.4 s) long; -inf when every block is below
    the absolute gate (silence)."""
    if len(wave) <= BLOCK_SECONDS * rate:
        raise ValueError(f"loudness needs more than {BLOCK_SECONDS} s of audio, got {len(wave) / rate:.3f} s")
    energy = np.concatenate([[0.0], np.cumsum(np.square(k_weighted(wave, rate)))])
    blocks = int(np.round((len(wave) / rate - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP))) + 1
    j = np.arange(blocks)
    lower = (BLOCK_SECONDS * (j * BLOCK_STEP) * rate).astype(np.int64)  # pyloudnorm's block bounds, exactly
    upper = np.minimum((BLOCK_SECONDS * (j * BLOCK_STEP + 1) * rate).astype(np.int64), len(wave))
    power = (energy[upper] - energy[lower]) / (BLOCK_SECONDS * rate)
    with np.errstate(divide="ignore"):
        block_loudness = -0.691 + 10 * np.log10(power)
        above = block_loudness >= ABSOLUTE_GATE
        if not above.any():
            return -math.inf
        relative = -0.691 + 10 * np.log10(power[above].mean()) + RELATIVE_GATE
        gated = (block_loudness > relative) & (block_loudness > ABSOLUTE_GATE)
        return float(-0.691 + 10 * np.log10(power[gated].mean())) if gated.any() else -math.inf


def normalize_loudness(wave, loudness, target=-23.0):
    """`wave` (float64) scaled from its measured `loudness` to `target` LUFS."""
    return np.asarray(wave, dtype=np.float64) * 10 ** ((target - loudness) / 20)
