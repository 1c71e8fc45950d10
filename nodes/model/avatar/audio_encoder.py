"""ComfyUI's stock audio encoders (AudioEncoderLoader's AUDIO_ENCODER, comfy/audio_encoders/) as the avatar
recipes drive them. Whisper goes through the stock `encode_audio` one 30 s chunk at a time (it encodes at most
30 s per call); wav2vec2 through its submodules, because the reference interpolates the conv features to the
video's audio frame rate before the projection and the transformer, which the stock forward cannot do."""
import comfy.model_management as mm

from ...core.avatar.audio_features import SAMPLE_RATE, WAV2VEC2, WHISPER


class UnknownEncoderError(ValueError):
    """An AUDIO_ENCODER that no LongCat-Video-Avatar model listens through."""


WANTED = "LongCat-Video-Avatar listens through whisper-large-v3 (v1.5) or chinese-wav2vec2-base (v1.0)"


def recipe_of(audio_encoder):
    """WHISPER or WAV2VEC2 for a stock encoder of the right size; UnknownEncoderError otherwise."""
    # imported here: the stock encoders need torchaudio, which the pack's other nodes do without
    from comfy.audio_encoders.wav2vec2 import Wav2Vec2Model
    from comfy.audio_encoders.whisper import WhisperLargeV3
    model = getattr(audio_encoder, "model", audio_encoder)
    if isinstance(model, WhisperLargeV3):
        shape = (len(model.encoder.layers), model.encoder.conv1.out_channels, model.encoder.conv1.in_channels)
        if shape != (WHISPER.layers - 1, WHISPER.channels, 128):
            raise UnknownEncoderError(f"audio_encoder is a whisper encoder with {shape[0]} layers of {shape[1]} "
                                      f"channels on {shape[2]} mel bins, not whisper-large-v3 (32 x 1280 on 128): "
                                      + WANTED)
        return WHISPER
    if isinstance(model, Wav2Vec2Model):
        layers, width = len(model.encoder.layers), model.feature_projection.projection.out_features
        if (layers, width) != (WAV2VEC2.layers - 1, WAV2VEC2.channels) or model.encoder.do_stable_layer_norm:
            raise UnknownEncoderError(f"audio_encoder is a wav2vec2 with {layers} layers of {width} channels (a "
                                      f"wav2vec2-large?), not chinese-wav2vec2-base (12 x 768): {WANTED}")
        return WAV2VEC2
    raise UnknownEncoderError(f"audio_encoder ({type(model).__name__}) is not one of ComfyUI's audio encoders "
                              f"(Load Audio Encoder): {WANTED}")


def whisper_chunk_encoder(audio_encoder):
    """encode(float32 [samples] at 16 kHz, at most 30 s) -> the 33 hidden states, through the stock API."""
    def encode(chunk):
        return audio_encoder.encode_audio(chunk[None, None], SAMPLE_RATE)["encoded_audio_all_layers"]
    return encode


def wav2vec2_parts(audio_encoder):
    """(conv_features, transformer) of the stock wav2vec2 on its load device (see audio_features.wav2vec2_embedding)."""
    model = audio_encoder.model

    def conv_features(input_values):
        mm.load_model_gpu(audio_encoder.patcher)
        return model.feature_extractor(input_values.to(audio_encoder.load_device))

    def transformer(features):
        return model.encoder(model.feature_projection(features.to(audio_encoder.load_device)))[1]
    return conv_features, transformer
