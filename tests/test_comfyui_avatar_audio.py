"""LongCat Avatar Audio inside real ComfyUI (in-process, CPU), on the stock audio encoders: each loaded by ComfyUI's
`load_audio_encoder_from_sd` from the golden's random weights, regenerated from its recipe (not stored: 2.5 GB),
against the reference's features (golden/avatar/avatar_audio_cases.*); and a clear error for each audio or
encoder the features cannot be made from.

Tolerances (docs/avatar-audio.md): 2x the floor of the stock encoders driven through the reference recipe (fp16
weights on CPU, torchaudio's mel instead of the reference's numpy mel), measured with ComfyUI 0.33 on CPU."""
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import GOLDEN
from longcat_pack.nodes.core.avatar import audio_features
from longcat_pack.nodes.core.avatar.audio_demo import random_encoder_weights, synthetic_speech, \
    wav2vec2_base_shapes, write_demo_audio_encoder
from longcat_pack.nodes.core.avatar.audio_loudness import integrated_loudness, normalize_loudness
from longcat_pack.nodes.cli.demo_set import write_demo_speech

CASES = GOLDEN / "avatar" / "avatar_audio_cases"
WHISPER_TOL = (3.6e-2, 1.8e-3)  # max abs, rel L2 (floor 1.8e-2 / 8.7e-4; embedding max 23.5)
WAV2VEC2_TOL = (2e-2, 2.5e-3)  # with the golden's own noise floor (floor 8.5e-3 / 1.2e-3; embedding max 4.7)
WAV2VEC2_FRESH_NOISE_TOL = (3.2, 0.17)  # another noise floor realization (the reference's is unseeded): 1.6 / 8.4 %
MEL_ATOL = 1e-4  # torchaudio vs the reference's numpy mel: 2.1e-5 (log-mel max 1.2)


def close(actual, expected, tolerance):
    max_abs, rel = (actual - expected).abs().max().item(), ((actual - expected).norm() / expected.norm()).item()
    assert max_abs <= tolerance[0] and rel <= tolerance[1], f"max abs {max_abs:.3g}, rel L2 {rel:.3g} > {tolerance}"


def as_audio(wave, rate=16000):
    return {"waveform": torch.as_tensor(wave, dtype=torch.float32)[None, None], "sample_rate": rate}


@pytest.fixture(scope="module")
def golden():
    return json.loads(CASES.with_suffix(".json").read_text()), load_file(str(CASES.with_suffix(".safetensors")))


def golden_encoder(golden, name):
    """The stock encoder with the golden's random weights, as AudioEncoderLoader makes it from a file."""
    import comfy.audio_encoders.audio_encoders as audio_encoders
    recipe = golden[0][name]["encoder_weights"]
    weights = random_encoder_weights(recipe["keys"], recipe["seed"], torch.float16)
    return audio_encoders.load_audio_encoder_from_sd(weights)


@pytest.fixture(scope="module")
def node(comfy_env):
    return comfy_env[0].NODE_CLASS_MAPPINGS["LongCatAvatarAudio"]()


@pytest.fixture(scope="module")
def wav2vec2(comfy_env, golden):
    return golden_encoder(golden, "wav2vec2")


@pytest.fixture(scope="module")
def wav2vec2_node_out(node, wav2vec2, golden):
    """The node's output on the golden waveform at 16 kHz (its own seeded noise floor)."""
    return node.encode(wav2vec2, as_audio(golden[1]["audio.waveform"]))[0]


@pytest.fixture(scope="module")
def whisper_run(comfy_env, golden, node):
    """The node's output with the whisper-large-v3 encoder (50-160 s on 2 CPU cores; the encoder is dropped once
    done), and the stock mel of the first (only) chunk the node hands it."""
    encoder = golden_encoder(golden, "whisper")
    audio = as_audio(golden[1]["audio.waveform"])
    out = node.encode(encoder, audio)[0]
    wave = audio_features.prepared_waveform(audio["waveform"], 16000)
    (chunk,) = audio_features.whisper_chunks(audio_features.loudness_normalized(wave))
    with torch.no_grad():
        mel = encoder.model.feature_extractor(chunk[None, None])
    return out, mel


def test_loudness_normalization_matches_pyloudnorm(golden):
    wave = golden[1]["audio.waveform"].numpy()
    normalized = normalize_loudness(wave, integrated_loudness(wave, 16000), -23)
    np.testing.assert_allclose(normalized, golden[1]["audio.wav_loudnorm"].numpy(), rtol=0, atol=1e-8)


def test_loudness_gates_out_silence():
    """BS.1770's gates: 3 s of silence added to 3.2 s of speech barely move the loudness (blocks below -70 LUFS
    do not count), where the mean power drops by 2.9 dB."""
    speech = synthetic_speech(3.2)
    padded = np.concatenate([speech, np.zeros(3 * 16000, np.float32)])
    assert abs(integrated_loudness(padded, 16000) - integrated_loudness(speech, 16000)) < 0.5
    assert integrated_loudness(np.zeros(16000), 16000) == -np.inf


def test_whisper_features_match_the_reference(whisper_run, golden):
    out, _ = whisper_run
    assert (out["fps"], out["stride"], out["encoder"], out["version"]) == (25, 1, "whisper-large-v3", "avatar-v1.5")
    assert out["seconds"] == pytest.approx(3.2) and out["embeddings"].dtype == torch.float32
    assert out["embeddings"].shape == golden[1]["whisper.embedding"].shape == (80, 5, 1280)
    close(out["embeddings"], golden[1]["whisper.embedding"], WHISPER_TOL)


def test_whisper_mel_matches_the_reference(whisper_run, golden):
    torch.testing.assert_close(whisper_run[1], golden[1]["whisper.mel"], rtol=0, atol=MEL_ATOL)


def test_wav2vec2_features_match_the_reference_with_its_noise_floor(wav2vec2, golden):
    """The v1.0 recipe with the golden run's own noise floor (the reference draws it unseeded): input values and
    features tight."""
    from longcat_pack.nodes.model.avatar.audio_encoder import wav2vec2_parts
    wave = audio_features.prepared_waveform(as_audio(golden[1]["audio.waveform"])["waveform"], 16000)
    input_values = audio_features.wav2vec2_input(wave, noise_floor=golden[1]["wav2vec2.noise_floor"].numpy())
    torch.testing.assert_close(input_values, golden[1]["wav2vec2.input_values"], rtol=0, atol=1e-5)
    with torch.no_grad():
        embeddings = audio_features.wav2vec2_embedding(input_values, *wav2vec2_parts(wav2vec2))
    assert embeddings.shape == golden[1]["wav2vec2.embedding"].shape == (102, 12, 768)
    close(embeddings, golden[1]["wav2vec2.embedding"], WAV2VEC2_TOL)


def test_wav2vec2_node_matches_the_reference_within_the_noise_floor(node, wav2vec2, wav2vec2_node_out, golden):
    out = wav2vec2_node_out
    assert (out["fps"], out["stride"], out["encoder"]) == (16, 2, "chinese-wav2vec2-base")
    assert out["version"] == "avatar-v1.0"
    close(out["embeddings"], golden[1]["wav2vec2.embedding"], WAV2VEC2_FRESH_NOISE_TOL)
    again = node.encode(wav2vec2, as_audio(golden[1]["audio.waveform"]))[0]
    assert torch.equal(again["embeddings"], out["embeddings"])  # the noise floor is seeded: reproducible


def test_resampled_stereo_audio_is_said_and_encoded_as_mono(node, wav2vec2, wav2vec2_node_out, golden, caplog):
    import torchaudio
    wave = golden[1]["audio.waveform"]
    at_48k = torchaudio.functional.resample(wave, 16000, 48000)
    stereo = {"waveform": torch.stack([at_48k, at_48k])[None], "sample_rate": 48000}
    with caplog.at_level(logging.INFO):
        out = node.encode(wav2vec2, stereo)[0]
    assert "resampled from 48000 Hz to 16000 Hz" in caplog.text and "2 channels mixed to mono" in caplog.text
    reference = wav2vec2_node_out
    assert out["seconds"] == pytest.approx(3.2) and out["embeddings"].shape == reference["embeddings"].shape
    close(out["embeddings"], reference["embeddings"], (0.5, 0.05))  # the resampling round trip only


def test_whisper_chunks_long_speech_through_the_stock_encoder(comfy_env):
    """A 35 s speech through a narrow stock whisper (32 layers of 64 channels, random): two calls, 30 s and 5 s
    (the stock encoder pads each to 30 s and encodes no more), one feature per video frame over the whole clip."""
    import comfy.audio_encoders.audio_encoders as audio_encoders
    from longcat_pack.nodes.model.avatar.audio_encoder import whisper_chunk_encoder
    encoder = audio_encoders.AudioEncoderModel({"model_type": "whisper3", "n_audio_state": 64, "n_audio_head": 2})
    shapes = {k: list(v.shape) for k, v in encoder.get_sd().items() if not k.startswith("feature_extractor.")}
    assert encoder.load_sd(random_encoder_weights(shapes, 3, torch.float16)).unexpected_keys == []
    stock, calls = whisper_chunk_encoder(encoder), []

    def encode(chunk):
        hidden_states = stock(chunk)
        calls.append((chunk.shape[0], hidden_states[0].shape[1]))
        return hidden_states
    speech = np.tile(synthetic_speech(5.0), 7)
    with torch.no_grad():
        embeddings = audio_features.whisper_embedding(audio_features.prepared_waveform(as_audio(speech)["waveform"],
                                                                                       16000), encode)
    assert calls == [(480000, 1500), (80000, 1500)]
    assert embeddings.shape == (35 * 25, 5, 64) and torch.isfinite(embeddings).all()
    last_chunk = embeddings[30 * 25:]  # speech to the end, not the padding's constant features
    assert (last_chunk - last_chunk.mean(0)).abs().mean() > 0.05 * last_chunk.abs().mean()


@pytest.mark.parametrize("audio, problem", [
    (None, "no audio track"),
    ({"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}, "empty"),
    (as_audio(np.where(np.arange(32000) == 20000, np.nan, 0.1 * np.sin(np.arange(32000) * 0.1))), "1 NaN"),
    (as_audio(np.zeros(32000)), "silent"),
    (as_audio(1e-6 * np.random.default_rng(0).standard_normal(32000)), "silent"),  # -120 LUFS: below the gate
    (as_audio(synthetic_speech(0.3)), "0.300 s long"),
    ({"waveform": torch.rand(2, 1, 32000) - 0.5, "sample_rate": 16000}, "one clip"),
])
def test_audio_that_cannot_drive_a_face_is_refused(node, wav2vec2, audio, problem):
    with pytest.raises(ValueError, match="audio") as error:
        node.encode(wav2vec2, audio)
    assert type(error.value).__name__ == "AudioInputError" and problem in str(error.value)


def test_unknown_encoders_are_refused(comfy_env, node):
    """A wav2vec2-large, a whisper of another size and something that is no audio encoder: each named."""
    import comfy.audio_encoders.audio_encoders as audio_encoders
    large = audio_encoders.AudioEncoderModel({"model_type": "wav2vec2", "embed_dim": 1024, "num_heads": 16,
                                              "num_layers": 24, "conv_norm": True, "conv_bias": True,
                                              "do_normalize": True, "do_stable_layer_norm": True})
    small_whisper = audio_encoders.AudioEncoderModel({"model_type": "whisper3", "n_audio_state": 64,
                                                      "n_audio_head": 2, "n_audio_layer": 4})
    speech = as_audio(synthetic_speech(1.0))
    for encoder, problem in ((large, "24 layers of 1024 channels (a wav2vec2-large?)"),
                             (small_whisper, "4 layers of 64 channels"), (object(), "(object) is not one of")):
        with pytest.raises(ValueError, match="audio_encoder") as error:
            node.encode(encoder, speech)
        assert type(error.value).__name__ == "UnknownEncoderError"
        assert problem in str(error.value) and "chinese-wav2vec2-base" in str(error.value)


def test_demo_encoder_and_speech_run_through_the_stock_loader(comfy_env, node, golden, tmp_path):
    """The demo set's random wav2vec2-base: the stock layout key for key (as the golden's list), loaded by the
    stock loader with nothing missing or unexpected; its synthetic speech read by LoadAudio's own loader."""
    import comfy.audio_encoders.audio_encoders as audio_encoders
    import comfy.utils
    from comfy_extras.nodes_audio import load
    assert wav2vec2_base_shapes() == golden[0]["wav2vec2"]["encoder_weights"]["keys"]
    sd = comfy.utils.load_torch_file(str(write_demo_audio_encoder(tmp_path / "wav2vec2.safetensors")))
    assert all(v.dtype == torch.float16 for v in sd.values())
    encoder = audio_encoders.load_audio_encoder_from_sd(dict(sd))
    loaded = encoder.load_sd(sd)
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    waveform, rate = load(str(write_demo_speech(tmp_path / "speech.wav")))
    out = node.encode(encoder, {"waveform": waveform[None], "sample_rate": rate})[0]
    assert rate == 16000 and out["embeddings"].shape == (102, 12, 768) and torch.isfinite(out["embeddings"]).all()


def test_node_contract_and_help_page(comfy_env):
    """The contract other nodes and scripts drive: name, inputs from the stock loaders' types, LONGCAT_AUDIO out."""
    from comfy_api.latest import io
    from conftest import PACK_ROOT
    pack = comfy_env[0]
    cls = pack.NODE_CLASS_MAPPINGS["LongCatAvatarAudio"]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["LongCatAvatarAudio"] == "LongCat Avatar Audio"
    required = cls.INPUT_TYPES()["required"]
    assert list(required) == ["audio_encoder", "audio"] and "optional" not in cls.INPUT_TYPES()
    assert (required["audio_encoder"][0], required["audio"][0]) == (io.AudioEncoder.io_type, io.Audio.io_type)
    assert all(spec[1]["tooltip"] for spec in required.values())
    assert cls.RETURN_TYPES == ("LONGCAT_AUDIO",) and cls.CATEGORY == "LongCat/Avatar"
    assert (PACK_ROOT / "js" / "docs" / "LongCatAvatarAudio.md").read_text().startswith("# LongCat Avatar Audio")
