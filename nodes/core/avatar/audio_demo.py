"""Random audio encoder weights and a synthetic speech clip, for the demo set and the audio golden tests.

The weights follow the golden's recipe (tests/golden/avatar/README.md, "Audio cases"): one generator seeded once,
keys in sorted order, N(0, 1) per tensor; 1 + 0.1 N for norm gains (`layer_norm.weight`, the weight-norm `original0`),
0.05 N for other 1-D tensors, N(0, 1/fan_in) for the rest. The layout is ComfyUI's (`load_audio_encoder_from_sd`)."""
import math
import wave

import numpy as np
import torch
from safetensors.torch import save_file

from ..demo_files import NOISE_LABEL

WAV2VEC2_BASE = dict(hidden=768, layers=12, ffn=3072, conv=512, pos_kernel=128, pos_groups=16)
CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)


def wav2vec2_base_shapes(hidden=WAV2VEC2_BASE["hidden"], layers=WAV2VEC2_BASE["layers"], ffn=WAV2VEC2_BASE["ffn"],
                         conv=WAV2VEC2_BASE["conv"]):
    """{key: shape} of chinese-wav2vec2-base (group-norm conv, no conv bias) in the stock layout."""
    shapes = {f"feature_extractor.conv_layers.{i}.conv.weight": [conv, 1 if i == 0 else conv, k]
              for i, k in enumerate(CONV_KERNELS)}
    shapes.update({"feature_extractor.conv_layers.0.layer_norm.weight": [conv],
                   "feature_extractor.conv_layers.0.layer_norm.bias": [conv],
                   "feature_projection.layer_norm.weight": [conv], "feature_projection.layer_norm.bias": [conv],
                   "feature_projection.projection.weight": [hidden, conv],
                   "feature_projection.projection.bias": [hidden],
                   "masked_spec_embed": [hidden], "encoder.layer_norm.weight": [hidden],
                   "encoder.layer_norm.bias": [hidden], "encoder.pos_conv_embed.conv.bias": [hidden],
                   "encoder.pos_conv_embed.conv.parametrizations.weight.original0": [1, 1, WAV2VEC2_BASE["pos_kernel"]],
                   "encoder.pos_conv_embed.conv.parametrizations.weight.original1":
                       [hidden, hidden // WAV2VEC2_BASE["pos_groups"], WAV2VEC2_BASE["pos_kernel"]]})
    for i in range(layers):
        b = f"encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes.update({f"{b}attention.{proj}.weight": [hidden, hidden], f"{b}attention.{proj}.bias": [hidden]})
        shapes.update({f"{b}feed_forward.intermediate_dense.weight": [ffn, hidden],
                       f"{b}feed_forward.intermediate_dense.bias": [ffn],
                       f"{b}feed_forward.output_dense.weight": [hidden, ffn],
                       f"{b}feed_forward.output_dense.bias": [hidden]})
        for norm in ("layer_norm", "final_layer_norm"):
            shapes.update({f"{b}{norm}.weight": [hidden], f"{b}{norm}.bias": [hidden]})
    return shapes


def random_encoder_weights(shapes, seed, dtype=torch.float32):
    """{key: tensor} for `shapes` by the golden's recipe (computed in float32, then cast to `dtype`)."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for key in sorted(shapes):
        shape = list(shapes[key])
        r = torch.randn(shape, generator=gen, dtype=torch.float32)
        if key.endswith("layer_norm.weight") or key.endswith("original0"):
            value = 1 + 0.1 * r
        elif len(shape) == 1:
            value = 0.05 * r
        else:
            value = r / math.sqrt(r.numel() / shape[0])
        weights[key] = value.to(dtype)
    return weights


def synthetic_speech(seconds=3.2, rate=16000, seed=0):
    """A speech-like float32 signal: 30 harmonics of a gliding f0 weighted by three vowel formants, a 3.7 Hz
    syllable envelope over a 0.3 floor, a little noise. Not speech, but loud, voiced and rhythmic like it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.45 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = np.array([700.0, 1200.0, 2600.0])
    signal = np.zeros_like(t)
    for k in range(1, 31):
        weight = np.exp(-((k * f0[:, None] - formants) / 160.0) ** 2).sum(1) + 0.02
        signal += weight * np.sin(k * phase) / k ** 0.5
    envelope = 0.3 + 0.7 * np.clip(np.sin(np.pi * 3.7 * t), 0, None) ** 2
    signal = signal * envelope + 0.01 * rng.standard_normal(len(t))
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def write_wav(path, signal, rate=16000):
    """16-bit PCM mono WAV (what LoadAudio reads everywhere)."""
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def write_demo_audio_encoder(path, seed=0):
    """Random chinese-wav2vec2-base weights in the stock layout, float16 (about 190 MB), labelled as noise."""
    save_file(random_encoder_weights(wav2vec2_base_shapes(), seed, torch.float16), str(path), metadata=NOISE_LABEL)
    return path
