"""LongCat Avatar Audio: speech -> the per-frame audio features LongCat-Video-Avatar listens to (LONGCAT_AUDIO),
made with ComfyUI's stock audio encoder exactly as the reference's `get_audio_embedding_*` makes them. The encoder
decides the version: whisper-large-v3 -> v1.5 (25 fps), chinese-wav2vec2-base -> v1.0 (16 fps, 2 per frame)."""
import logging

import comfy.model_management as mm
import comfy.utils
import torch

from ...core.avatar.audio_features import SAMPLE_RATE, WHISPER, AudioInputError, prepared_waveform, \
    wav2vec2_embedding, wav2vec2_input, whisper_embedding
from ...model.avatar.audio_encoder import recipe_of, wav2vec2_parts, whisper_chunk_encoder


def log(message):
    logging.info(f"LongCat Avatar Audio: {message}")


class LongCatAvatarAudio:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio_encoder": ("AUDIO_ENCODER", {"tooltip": "From Load Audio Encoder: whisper-large-v3 for "
                                                           "LongCat-Video-Avatar 1.5, chinese-wav2vec2-base for 1.0. "
                                                           "It decides the version of the features."}),
            "audio": ("AUDIO", {"tooltip": "The speech the face follows (Load Audio, or a video's audio). Any "
                                           "sample rate (resampled to 16 kHz) and channel count (mixed to mono); "
                                           "vocals alone work best, as the reference separates them first."}),
        }}

    RETURN_TYPES = ("LONGCAT_AUDIO",)
    RETURN_NAMES = ("avatar_audio",)
    OUTPUT_TOOLTIPS = ("The audio features of the whole clip (one window per video frame), its video fps and "
                       "stride, for LongCat Avatar Condition.",)
    FUNCTION = "encode"
    CATEGORY = "LongCat/Avatar"
    DESCRIPTION = ("Audio features for LongCat-Video-Avatar, as the reference makes them: loudness to -23 LUFS, "
                   "then whisper-large-v3 in 30 s chunks (v1.5, 25 fps) or chinese-wav2vec2-base (v1.0, 16 fps).")

    def encode(self, audio_encoder, audio):
        recipe = recipe_of(audio_encoder)
        if audio is None or "waveform" not in audio:
            raise AudioInputError("audio is missing: the clip has no audio track")
        wave = prepared_waveform(audio["waveform"], int(audio["sample_rate"]), "audio", log)
        with torch.no_grad():
            if recipe is WHISPER:
                bar = None

                def on_chunk(done, total):
                    nonlocal bar
                    bar = bar or comfy.utils.ProgressBar(total)
                    bar.update_absolute(done, total)
                    mm.throw_exception_if_processing_interrupted()
                embeddings = whisper_embedding(wave, whisper_chunk_encoder(audio_encoder), "audio", log, on_chunk)
            else:
                embeddings = wav2vec2_embedding(wav2vec2_input(wave, "audio", log), *wav2vec2_parts(audio_encoder))
        seconds = len(wave) / SAMPLE_RATE
        log(f"{recipe.encoder}: {seconds:.2f} s -> {embeddings.shape[0]} audio frames {list(embeddings.shape[1:])} "
            f"for {recipe.version} at {recipe.fps} fps")
        return ({"embeddings": embeddings.float().cpu().contiguous(), "fps": recipe.fps, "stride": recipe.stride,
                 "encoder": recipe.encoder, "version": recipe.version, "seconds": seconds},)
