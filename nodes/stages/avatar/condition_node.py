"""LongCat Avatar Condition: the audio windows of a clip (and the speakers' routing, a continuation's reference
latent) attached to both conditionings, and the clip's latent with its condition frames kept clean."""
import logging

import node_helpers
import torch

from ...core.avatar.condition import (AvatarInputError, check_embeddings, clip_audio, masks_with_background,
                                      mixed_embeddings)
from ...core.conditioning import LATENT_CHANNELS, VAE_TIME_STRIDE, conditioned_latent, latent_frame_count
from ...model.avatar.comfy_avatar import AvatarCondition
from ...model.comfy_model import AVATAR_CONDITION
from ..condition_nodes import CONDITIONING_NAMES, POSITIVE, check_size

log = logging.getLogger("longcat")
AUDIO = ("LONGCAT_AUDIO", {"tooltip": "The speech as LongCat Avatar Audio gives it (whisper-large-v3 for v1.5 DiTs, "
                                      "chinese-wav2vec2-base for v1.0)."})


class LongCatAvatarCondition:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": POSITIVE,
            "negative": ("CONDITIONING", {"tooltip": "The negative prompt's conditioning. The guider's unconditional "
                                                     "passes use it with the audio and with silence."}),
            "avatar_audio": AUDIO,
            "width": ("INT", {"default": 832, "min": 16, "max": 4096, "step": 16, "tooltip": "Video width in pixels."}),
            "height": ("INT", {"default": 480, "min": 16, "max": 4096, "step": 16,
                               "tooltip": "Video height in pixels."}),
            "length": ("INT", {"default": 93, "min": 5, "max": 100000, "step": 4, "tooltip":
                               "Video frames of the whole clip, condition frames included (1 + 4k)."}),
            "audio_start_frame": ("INT", {"default": 0, "min": 0, "max": 10000000, "tooltip":
                                          "The video frame of the audio where this clip starts (a continuation: "
                                          "where the previous clip's new frames ended, minus its condition frames)."}),
        }, "optional": {
            "cond_latent": ("LATENT", {"tooltip": "Raw VAEEncode latents of the condition: 1 latent = the reference "
                                                  "image (image to video), n latents = a continuation's last frames."}),
            "ref_latent": ("LATENT", {"tooltip": "Continuation only: the raw latent of the first clip's first frame, "
                                                 "put in front of the condition as the identity reference."}),
            "ref_img_index": ("INT", {"default": 10, "min": 0, "max": 1000, "tooltip":
                                      "RoPE time index of the reference latent (reference default 10)."}),
            "mask_frame_range": ("INT", {"default": 3, "min": 0, "max": 1000, "tooltip":
                                         "Noisy latents within this many frames of ref_img_index do not attend to the "
                                         "reference latent (prevents repeated motions; reference default 3)."}),
            "avatar_audio_2": ("LONGCAT_AUDIO", {"tooltip": "The second speaker's speech (needs speaker_masks)."}),
            "speaker_masks": ("MASK", {"tooltip": "One mask per speaker [speakers, H, W] in pixels of the first frame, "
                                                  "mask i for audio i; the background is derived from them."}),
            "audio_mix": (["para", "add"], {"default": "para", "tooltip":
                                            "Two speakers: para = both talk over the same time; add = speaker 1, "
                                            "then speaker 2 (each silent, zero features, while the other talks)."}),
        }}

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = CONDITIONING_NAMES
    OUTPUT_TOOLTIPS = ("The positive conditioning with the clip's audio.", "The negative conditioning with the audio.",
                       "The clip's latent (condition frames first, kept clean by its noise mask; never the reference "
                       "latent).")
    FUNCTION = "condition"
    CATEGORY = "LongCat/Avatar"
    DESCRIPTION = ("Attaches a clip's speech to the LongCat-Video-Avatar conditioning: audio to video, image to video "
                   "(cond_latent = the image), continuation (cond_latent = the last frames, ref_latent = the first "
                   "clip's first frame), two speakers (avatar_audio_2 + speaker_masks).")

    def condition(self, positive, negative, avatar_audio, width, height, length, audio_start_frame, cond_latent=None,
                  ref_latent=None, ref_img_index=10, mask_frame_range=3, avatar_audio_2=None, speaker_masks=None,
                  audio_mix="para"):
        check_size(width, height, "the video")
        if (length - 1) % VAE_TIME_STRIDE:
            raise AvatarInputError(f"length {length}: an avatar clip has 1 + 4k frames (each later latent takes the "
                                   "audio of 4 frames), e.g. 93")
        embeddings = [check_embeddings("avatar_audio", avatar_audio)]
        stride, encoder = avatar_audio.get("stride", 1), avatar_audio.get("encoder", "the audio encoder")
        masks = None
        if avatar_audio_2 is not None:
            second = check_embeddings("avatar_audio_2", avatar_audio_2)
            if (avatar_audio_2.get("stride"), tuple(second.shape[1:])) != (stride, tuple(embeddings[0].shape[1:])):
                raise AvatarInputError("avatar_audio_2 comes from another encoder than avatar_audio: both speakers "
                                       "need the same one")
            if speaker_masks is None:
                raise AvatarInputError("avatar_audio_2 needs speaker_masks (one mask per speaker)")
            embeddings = list(mixed_embeddings(embeddings[0], second, audio_mix))
            masks = masks_with_background(speaker_masks, height, width, 2)
        elif speaker_masks is not None:
            raise AvatarInputError("speaker_masks route two voices: connect avatar_audio_2 too")
        audio, past = clip_audio(embeddings, audio_start_frame, length, stride)
        if past:
            log.warning("LongCat Avatar Condition: the audio ends %d frame(s) before the clip does; those frames "
                        "repeat the audio's last frame (shorten length or pad the speech with silence)", past)

        frames, h, w = latent_frame_count(length), height // 8, width // 8
        if cond_latent is None:
            if ref_latent is not None:
                raise AvatarInputError("ref_latent is for a continuation: connect its condition frames (cond_latent)")
            latent = {"samples": torch.zeros(1, LATENT_CHANNELS, frames, h, w)}
        else:
            cond = cond_latent["samples"]
            if cond.dim() != 5 or tuple(cond.shape[-2:]) != (h, w):
                raise AvatarInputError(f"cond_latent {list(cond.shape)} does not fit a {width}x{height} video "
                                       f"(latent {h}x{w}): encode the image or frames at that size")
            samples, mask = conditioned_latent(cond, length)
            latent = {"samples": samples, "noise_mask": mask}
        ref = None
        if ref_latent is not None:
            ref = ref_latent["samples"][:, :, :1]
            if tuple(ref.shape[-2:]) != (h, w):
                raise AvatarInputError(f"ref_latent {list(ref.shape)} does not fit a {width}x{height} video")
            if latent["samples"].shape[2] - cond.shape[2] < 1:
                raise AvatarInputError("the continuation has no new frames: raise length")
        value = AvatarCondition(audio, encoder, ref, ref_img_index, mask_frame_range, masks)
        set_value = node_helpers.conditioning_set_values
        return set_value(positive, {AVATAR_CONDITION: value}), set_value(negative, {AVATAR_CONDITION: value}), latent
