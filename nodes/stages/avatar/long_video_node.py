"""LongCat Avatar Long Video: a talking video as long as its speech in one queued run, as the reference's avatar
demos continue it: each segment is conditioned on the last num_cond_frames of the one before and on the first
clip's first frame (the reference latent), and takes its audio window from where the video so far ends."""
import logging

import torch

from ...core.conditioning import VAE_TIME_STRIDE
from ..condition_nodes import VAE, continuation_cond_latent, encode
from ..long_video_nodes import SEGMENT_INPUTS, StepProgress, decode, sample_segment
from .condition_node import AUDIO, LongCatAvatarCondition
from .guider_node import AvatarGuider

log = logging.getLogger("longcat")


def segment_count(video_frames, audio_frames, step):
    """Continuations needed until the video covers the audio: each adds `step` frames."""
    return max(0, -(-(audio_frames - video_frames) // step))


class LongCatAvatarLongVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The LongCat-Video-Avatar DiT (with its DMD LoRA or not)."}),
            "positive": ("CONDITIONING", {"tooltip": "The prompt (CLIPTextEncode), without audio: each segment gets "
                                                     "its own audio window."}),
            "negative": ("CONDITIONING", {"tooltip": "The negative prompt."}),
            "avatar_audio": AUDIO,
            "text_cfg": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip":
                                   "Text guidance of every segment (4 for the base schedule, 1 with the DMD LoRA)."}),
            "audio_cfg": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip":
                                    "Audio guidance of every segment (4 for the base schedule, 1 with the DMD LoRA)."}),
            "sampler": SEGMENT_INPUTS["sampler"],
            "sigmas": SEGMENT_INPUTS["sigmas"],
            "vae": VAE,
            "noise_seed": SEGMENT_INPUTS["noise_seed"],
            "video": ("IMAGE", {"tooltip": "The first clip (decoded): its frames start at the audio's frame 0 and "
                                           "its first frame is every continuation's identity reference."}),
            "segments": ("INT", {"default": 0, "min": 0, "max": 10000, "tooltip":
                                 "Continuations to add; 0 = as many as the speech needs (the video is then cut at "
                                 "the speech's last frame)."}),
            "num_cond_frames": ("INT", {"default": 13, "min": 1, "max": 1001, "step": 4, "tooltip":
                                        "Frames of the previous segment each continuation is conditioned on (1 + 4k; "
                                        "13 as the reference)."}),
            "length": ("INT", {"default": 93, "min": 5, "max": 100000, "step": 4, "tooltip":
                               "Frames of each continuation, its condition included (93 as the reference)."}),
        }, "optional": {
            "ref_img_index": ("INT", {"default": 10, "min": 0, "max": 1000, "tooltip":
                                      "RoPE time index of the reference latent (reference default 10)."}),
            "mask_frame_range": ("INT", {"default": 3, "min": 0, "max": 1000, "tooltip":
                                         "Latents near ref_img_index that do not see the reference (default 3)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The whole video: the first clip, then each continuation without its repeated condition "
                       "frames; with segments 0 cut to the speech's length.",)
    FUNCTION = "extend"
    CATEGORY = "LongCat/Avatar"
    DESCRIPTION = ("Continues a talking clip segment after segment until the speech ends (or `segments` times), "
                   "each segment with the audio from where the video so far ends.")

    def extend(self, model, positive, negative, avatar_audio, text_cfg, audio_cfg, sampler, sigmas, vae, noise_seed,
               video, segments, num_cond_frames, length, ref_img_index=10, mask_frame_range=3):
        if (length - 1) % VAE_TIME_STRIDE or length <= num_cond_frames:
            raise ValueError(f"length {length} must be 1 + 4k frames and longer than num_cond_frames "
                             f"{num_cond_frames}")
        step = length - num_cond_frames
        stride = avatar_audio.get("stride", 1)
        audio_frames = avatar_audio["embeddings"].shape[0] // stride
        until_audio_ends = segments == 0
        if until_audio_ends:
            segments = segment_count(video.shape[0], audio_frames, step)
            log.info("LongCat Avatar Long Video: %d continuation(s) of %d new frames for %d frames of speech",
                     segments, step, audio_frames)
        height, width = video.shape[1], video.shape[2]
        ref = {"samples": encode(vae, video[:1])}
        progress = StepProgress(max(segments, 1), len(sigmas) - 1)
        pieces, current, done = [video], video, video.shape[0]
        for i in range(segments):
            cond = {"samples": continuation_cond_latent(vae, current, num_cond_frames)}
            pos, neg, latent = LongCatAvatarCondition().condition(
                positive, negative, avatar_audio, width, height, length, done - num_cond_frames, cond_latent=cond,
                ref_latent=ref, ref_img_index=ref_img_index, mask_frame_range=mask_frame_range)
            guider = AvatarGuider(model, text_cfg, audio_cfg)
            guider.set_conds(pos, neg)
            current = decode(vae, sample_segment(guider, sampler, sigmas, latent, noise_seed + i, progress))
            pieces.append(current[num_cond_frames:].to(video.dtype))
            done += step
            progress.next_segment()
        out = torch.cat(pieces)
        if until_audio_ends and out.shape[0] > audio_frames >= video.shape[0]:
            out = out[:audio_frames]
        return (out,)
