"""The reference's audio features for LongCat-Video-Avatar (`get_audio_embedding_whisper` of v1.5,
`get_audio_embedding_wav2vec2` of v1.0), around an encoder that the caller runs: the encoders themselves are
ComfyUI's stock ones (see nodes/model/avatar/audio_encoder.py). Input: `prepared_waveform`, mono at 16 kHz.

v1.5: loudness to -23 LUFS; 30 s chunks, each its own padded 30 s mel and encoder call (1500 frames at 50 Hz);
the 33 hidden states grouped as mean 0-7, 8-15, 16-23, 24-31 and the last (after the final layer norm); the first
2 T frames interpolated linearly (align_corners) to T = int(seconds x 25): [T, 5, 1280], one per video frame.
v1.0: loudness, a -45 dB noise floor, a 3 kHz low pass (butter 3 + lfilter), zero mean / unit variance; the conv
features interpolated to T = int(seconds x 32) before the projection and the transformer; the 12 layer outputs:
[T, 12, 768], two per video frame at 16 fps."""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import butter, lfilter

from .audio_loudness import integrated_loudness, normalize_loudness

SAMPLE_RATE = 16000
TARGET_LUFS = -23.0
LOUDNESS_LIMIT = 100  # the reference leaves audio whose |loudness| exceeds this as it is
WHISPER_CHUNK = 30 * SAMPLE_RATE  # samples per encoder call (the encoder's 30 s window)
WHISPER_GROUPS = ((0, 8), (8, 16), (16, 24), (24, 32), (32, 33))
NOISE_FLOOR_DB = -45
NOISE_SEED = 0  # the reference draws the noise floor unseeded; a fixed seed makes the features reproducible
LOW_PASS = (3, 3000 / (SAMPLE_RATE / 2))  # butter order, normalised cutoff


class AudioInputError(ValueError):
    """Audio the features cannot be made from (empty, NaN, silent, too short); the message names the input."""


@dataclass(frozen=True)
class AudioRecipe:
    encoder: str  # the encoder's usual name
    version: str  # the avatar model generation that listens through it
    fps: int  # video frames per second
    stride: int  # audio frames per video frame
    layers: int  # hidden states the recipe reads
    channels: int

    @property
    def audio_fps(self):
        return self.fps * self.stride

    def frames(self, samples):
        """Audio frames for `samples` at 16 kHz, computed as the reference does (int(seconds x fps))."""
        return int(samples / SAMPLE_RATE * self.audio_fps)


WHISPER = AudioRecipe("whisper-large-v3", "avatar-v1.5", fps=25, stride=1, layers=33, channels=1280)
WAV2VEC2 = AudioRecipe("chinese-wav2vec2-base", "avatar-v1.0", fps=16, stride=2, layers=13, channels=768)


def prepared_waveform(waveform, sample_rate, name="audio", log=None):
    """A ComfyUI AUDIO waveform [batch 1, channels, samples] at `sample_rate` as mono float64 numpy at 16 kHz
    (channels averaged, as librosa.load does; resampled with torchaudio, and said), after the checks every
    recipe needs. AudioInputError names `name`."""
    if waveform.dim() != 3 or waveform.shape[0] != 1:
        raise AudioInputError(f"{name} must be one clip [1, channels, samples], got {list(waveform.shape)}")
    if waveform.numel() == 0:
        raise AudioInputError(f"{name} is empty ({list(waveform.shape)}: no samples)")
    bad = ~torch.isfinite(waveform[0])
    if bad.any():
        first = int(bad.any(0).nonzero()[0]) / sample_rate
        raise AudioInputError(f"{name} holds {int(bad.sum())} NaN or infinite samples (the first at {first:.3f} s)")
    wave = waveform[0].float().mean(0)
    if waveform.shape[1] > 1 and log:
        log(f"{name}: {waveform.shape[1]} channels mixed to mono")
    if sample_rate != SAMPLE_RATE:
        import torchaudio  # as ComfyUI's own audio nodes (only needed here)
        wave = torchaudio.functional.resample(wave, sample_rate, SAMPLE_RATE)
        if log:
            log(f"{name}: resampled from {sample_rate} Hz to {SAMPLE_RATE} Hz, the encoders' rate")
    if wave.numel() <= 0.4 * SAMPLE_RATE:
        raise AudioInputError(f"{name} is {wave.numel() / SAMPLE_RATE:.3f} s long: LongCat's loudness measure "
                              "needs more than 0.4 s")
    return wave.double().numpy()


def loudness_normalized(wave, name="audio", log=None):
    """The reference's `_loudness_norm`: `wave` scaled to -23 LUFS. Silence (every 400 ms block below -70 LUFS)
    is refused: there is no speech to drive a face."""
    loudness = integrated_loudness(wave, SAMPLE_RATE)
    if loudness == -np.inf:
        raise AudioInputError(f"{name} is silent (no 400 ms block louder than -70 LUFS): give the speech to follow")
    if abs(loudness) > LOUDNESS_LIMIT:
        if log:
            log(f"{name}: loudness {loudness:.1f} LUFS is out of range; used as it is, as the reference does")
        return np.asarray(wave, dtype=np.float64)
    return normalize_loudness(wave, loudness, TARGET_LUFS)


def resample_frames(features, size):
    """[T, ...] -> [size, ...], linear along time with align_corners=True (the reference's interpolation)."""
    flat = features.reshape(1, features.shape[0], -1).transpose(1, 2)
    out = F.interpolate(flat, size=size, mode="linear", align_corners=True)
    return out.transpose(1, 2).reshape(size, *features.shape[1:])


def whisper_chunks(wave):
    """The 30 s pieces the encoder sees, each as float32 [samples] (the last one shorter; the encoder pads it)."""
    return [torch.from_numpy(np.ascontiguousarray(wave[i:i + WHISPER_CHUNK], dtype=np.float32))
            for i in range(0, len(wave), WHISPER_CHUNK)]


def whisper_groups(hidden_states):
    """33 hidden states [1, frames, D] of one chunk -> [frames, 5, D]: the reference's layer groups."""
    if len(hidden_states) != WHISPER.layers:
        raise ValueError(f"whisper-large-v3 gives {WHISPER.layers} hidden states, got {len(hidden_states)}")
    stacked = torch.stack([h[0].float() for h in hidden_states])
    return torch.stack([stacked[a:b].mean(0) for a, b in WHISPER_GROUPS], dim=1)


def whisper_embedding(wave, encode_chunk, name="audio", log=None, on_chunk=None):
    """[T, 5, 1280] of `wave`. `encode_chunk(float32 [samples])` returns the encoder's 33 hidden states of one
    30 s chunk; `on_chunk(i, n)` is called after each (progress, interruption)."""
    wave = loudness_normalized(wave, name, log)
    frames = WHISPER.frames(len(wave))
    chunks = whisper_chunks(wave)
    grouped = []
    for i, chunk in enumerate(chunks):
        grouped.append(whisper_groups(encode_chunk(chunk)).cpu())
        if on_chunk:
            on_chunk(i + 1, len(chunks))
    encoded = torch.cat(grouped)[:frames * 2]  # the encoder's 50 Hz: two frames per 25 fps frame
    return resample_frames(encoded, frames)


def wav2vec2_input(wave, name="audio", log=None, noise_floor=None):
    """The reference's v1.0 preprocessing and Wav2Vec2FeatureExtractor (do_normalize): float32 [samples].
    `noise_floor` (float64 [samples], already scaled) defaults to N(0, 1) x 10^(-45/20) with a fixed seed."""
    wave = loudness_normalized(wave, name, log)
    if noise_floor is None:
        noise_floor = np.random.default_rng(NOISE_SEED).standard_normal(len(wave)) * 10 ** (NOISE_FLOOR_DB / 20)
    smoothed = lfilter(*butter(*LOW_PASS), wave + noise_floor).astype(np.float32)
    normalized = (smoothed - smoothed.mean()) / np.sqrt(smoothed.var() + 1e-7)
    return torch.from_numpy(normalized)


def wav2vec2_embedding(input_values, conv_features, transformer):
    """[T, 12, 768] from `wav2vec2_input`. `conv_features(float32 [1, samples])` is the encoder's conv feature
    extractor ([1, frames, 512] at 50 Hz); `transformer(features)` runs the projection and the transformer on
    the features interpolated to T frames and returns its 13 hidden states [1, T, 768] (the first is its input)."""
    frames = WAV2VEC2.frames(input_values.shape[-1])
    features = resample_frames(conv_features(input_values[None])[0].float(), frames)
    hidden_states = transformer(features[None])
    if len(hidden_states) != WAV2VEC2.layers:
        raise ValueError(f"chinese-wav2vec2-base gives {WAV2VEC2.layers} hidden states, got {len(hidden_states)}")
    return torch.stack([h[0].float() for h in hidden_states[1:]], dim=1).cpu()
