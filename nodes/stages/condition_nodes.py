"""Condition nodes: image-to-video, video continuation and conditioned refinement, all built on one latent rule
(core `conditioned_latent`): the condition's raw latents at the start of the clip and a noise mask that keeps them
clean. Stock samplers (SamplerCustomAdvanced with LongCat Sigmas and BasicGuider / CFGGuider) then run the
reference loops; the LongCat model reads the condition off the mask."""
import logging

import torch

import comfy.utils

from ..core.conditioning import ConditionError, continuation_condition_latents, conditioned_latent, \
    whole_latent_frames
from ..core.refine_geometry import refine_condition_padding

log = logging.getLogger("longcat")
SPATIAL_MULTIPLE = 16  # VAE 8 x patch 2
ASPECT_TOLERANCE = 0.02
CONDITIONING = ("CONDITIONING", "CONDITIONING", "LATENT")
CONDITIONING_NAMES = ("positive", "negative", "latent")
CONDITIONING_TOOLTIPS = ("The positive conditioning, unchanged (the condition travels in the latent).",
                         "The negative conditioning, unchanged.",
                         "The clip's latent: the condition's frames first, a noise mask that keeps them clean.")
POSITIVE = ("CONDITIONING", {"tooltip": "The prompt's conditioning (CLIPTextEncode with the umT5 encoder)."})
NEGATIVE = ("CONDITIONING", {"tooltip": "The negative prompt's conditioning (used with CFG-Zero*, guidance > 1)."})
LENGTH = ("INT", {"default": 93, "min": 5, "max": 100000, "step": 4, "tooltip":
                  "Video frames of the whole clip, condition included (as in EmptyHunyuanLatentVideo; 1 + 4k frames "
                  "fill whole latents). 93 frames = 6.2 s at 15 fps."})
VAE = ("VAE", {"tooltip": "The Wan 2.1 VAE (VAELoader with wan_2.1_vae.safetensors)."})


def condition_outputs(positive, negative, cond_samples, length, start_latent=None):
    whole_latent_frames(length, "length")  # the user's clip length: refused, not rounded, when not 1 + 4k
    samples, mask = conditioned_latent(cond_samples, length, start_latent)
    return positive, negative, {"samples": samples, "noise_mask": mask}


def encode(vae, frames):
    """Raw Wan 2.1 latents of IMAGE frames [F, H, W, C] (what VAEEncode gives: [1, 16, 1 + (F - 1) // 4, h, w])."""
    return vae.encode(frames[:, :, :, :3])


def resized(frames, width, height):
    """Frames scaled to width x height, cropping the centre where the aspect differs (as core's video nodes do)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return comfy.utils.common_upscale(frames.movedim(-1, 1), width, height, "bilinear", "center").movedim(1, -1)


def check_size(width, height, what):
    if width % SPATIAL_MULTIPLE or height % SPATIAL_MULTIPLE:
        raise ConditionError(f"{what} is {width}x{height}: width and height must be multiples of {SPATIAL_MULTIPLE} "
                             "(VAE 8 x patch 2); resize it first")


class LongCatLatentCondition:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": POSITIVE,
            "negative": NEGATIVE,
            "cond_latent": ("LATENT", {"tooltip": "The condition's raw latents, as VAEEncode gives them (an image: 1 "
                                                  "latent frame; the last 13 frames of a clip: 4). All of its frames "
                                                  "are the condition."}),
            "length": LENGTH,
        }, "optional": {
            "latent": ("LATENT", {"tooltip": "A starting latent of the whole clip (refinement: the encoded upscaled "
                                             "stage-1 video); its first frames are replaced by the condition. "
                                             "Without it the rest of the clip starts empty (pure noise)."}),
        }}

    RETURN_TYPES = CONDITIONING
    RETURN_NAMES = CONDITIONING_NAMES
    OUTPUT_TOOLTIPS = CONDITIONING_TOOLTIPS
    FUNCTION = "condition"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Puts condition latents at the start of a LongCat clip (image-to-video, continuation, "
                   "conditioned refinement): they stay clean, get timestep 0 and attend only to themselves.")

    def condition(self, positive, negative, cond_latent, length, latent=None):
        start = None if latent is None else latent["samples"]
        return condition_outputs(positive, negative, cond_latent["samples"], length, start)


class LongCatImageToVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": POSITIVE,
            "negative": NEGATIVE,
            "vae": VAE,
            "start_image": ("IMAGE", {"tooltip": "The first frame of the video (its first image if several); scaled "
                                                 "to width x height, the centre cropped where the aspect differs."}),
            "width": ("INT", {"default": 832, "min": 16, "max": 4096, "step": 16, "tooltip":
                              "Video width: 832 (landscape) or 480 (portrait) at LongCat's 480p."}),
            "height": ("INT", {"default": 480, "min": 16, "max": 4096, "step": 16, "tooltip":
                               "Video height: 480 (landscape) or 832 (portrait) at LongCat's 480p."}),
            "length": LENGTH,
        }}

    RETURN_TYPES = CONDITIONING + ("IMAGE",)
    RETURN_NAMES = CONDITIONING_NAMES + ("start_image",)
    OUTPUT_TOOLTIPS = CONDITIONING_TOOLTIPS + ("The start image as the video uses it (width x height): the "
                                               "condition of the 720p refinement (LongCat Refine Condition).",)
    FUNCTION = "condition"
    CATEGORY = "LongCat"
    DESCRIPTION = "Image-to-video: the start image, encoded, is the clip's first latent frame (the reference's i2v)."

    def condition(self, positive, negative, vae, start_image, width, height, length):
        check_size(width, height, "the video")
        whole_latent_frames(length, "length")  # before the encode
        if start_image.shape[0] > 1:
            log.info("LongCat Image to Video: start_image holds %d images; the first is the start frame",
                     start_image.shape[0])
        image = resized(start_image[:1], width, height)
        return condition_outputs(positive, negative, encode(vae, image), length) + (image,)


class LongCatExtendVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": POSITIVE,
            "negative": NEGATIVE,
            "vae": VAE,
            "video": ("IMAGE", {"tooltip": "The clip to continue (its frames; the new clip has the same size)."}),
            "num_cond_frames": ("INT", {"default": 13, "min": 1, "max": 1001, "step": 4, "tooltip":
                                        "How many of its last frames condition the continuation: 1 + 4k (13, the "
                                        "reference's choice, encodes to 4 latent frames)."}),
            "length": LENGTH,
        }}

    RETURN_TYPES = CONDITIONING
    RETURN_NAMES = CONDITIONING_NAMES
    OUTPUT_TOOLTIPS = CONDITIONING_TOOLTIPS
    FUNCTION = "condition"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Video continuation: the clip's last num_cond_frames frames condition a new clip of `length` "
                   "frames that starts with them. Sample with LongCat Sigmas 'enhance_hf' and CFG-Zero* (guidance 4), "
                   "or 'distill' with the distill LoRA. Drop the first num_cond_frames decoded frames when joining.")

    def condition(self, positive, negative, vae, video, num_cond_frames, length):
        whole_latent_frames(length, "length")  # before the encode
        return condition_outputs(positive, negative, continuation_cond_latent(vae, video, num_cond_frames), length)


def continuation_cond_latent(vae, video, num_cond_frames):
    """The raw latents of the last `num_cond_frames` frames of `video`, checked against the 4-frame VAE rule."""
    n_c = continuation_condition_latents(num_cond_frames)
    if num_cond_frames > video.shape[0]:
        raise ConditionError(f"num_cond_frames {num_cond_frames} is more than the clip's {video.shape[0]} frames")
    check_size(video.shape[2], video.shape[1], "the clip")
    cond = encode(vae, video[-num_cond_frames:])
    assert cond.shape[2] == n_c, (cond.shape, n_c)
    return cond


class LongCatRefineCondition:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": POSITIVE,
            "negative": NEGATIVE,
            "vae": VAE,
            "latent": ("LATENT", {"tooltip": "The encoded upscaled stage-1 clip (VAEEncode of LongCat Refine Upscale "
                                             "with the same condition_frames)."}),
            "condition": ("IMAGE", {"tooltip": "The condition at the refinement size's aspect: the start image "
                                               "(image-to-video), or the previous refined segment (long video)."}),
            "condition_frames": ("INT", {"default": 1, "min": 1, "max": 10000, "tooltip":
                                         "How many of the condition's last frames to use, as given to LongCat Refine "
                                         "Upscale: 1 for an image, 2 x 13 = 26 for the previous refined segment."}),
        }}

    RETURN_TYPES = CONDITIONING
    RETURN_NAMES = CONDITIONING_NAMES
    OUTPUT_TOOLTIPS = CONDITIONING_TOOLTIPS
    FUNCTION = "condition"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Conditioned 720p refinement: the start image or the previous refined frames, front-padded to "
                   "a multiple of 4 latent frames, replace the first frames of the stage-1 latent.")

    def condition(self, positive, negative, vae, latent, condition, condition_frames):
        samples = latent["samples"]
        height, width = 8 * samples.shape[3], 8 * samples.shape[4]
        cond = refine_condition_clip(condition, condition_frames, width, height)
        frames = 1 + 4 * (samples.shape[2] - 1)
        return condition_outputs(positive, negative, encode(vae, cond), frames, samples)


def refine_condition_clip(condition, condition_frames, width, height):
    """The last `condition_frames` frames of `condition` at width x height, front-padded with their first frame to
    fill a multiple of 4 latent frames (the reference's `num_cond_frames_added`)."""
    if condition_frames > condition.shape[0]:
        raise ConditionError(f"condition_frames {condition_frames} is more than the condition's "
                             f"{condition.shape[0]} frames")
    src_h, src_w = condition.shape[1:3]
    if abs(src_w / src_h - width / height) > ASPECT_TOLERANCE * width / height:
        raise ConditionError(f"the condition is {src_w}x{src_h} but the clip refines at {width}x{height}: a "
                             "different aspect; give the image (or frames) the stage-1 video started from")
    clip = resized(condition[-condition_frames:], width, height)
    _, pad_front = refine_condition_padding(condition_frames)
    return torch.cat([clip[:1].expand(pad_front, -1, -1, -1), clip])
