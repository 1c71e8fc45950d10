"""Long videos in one queued run: continue a clip segment after segment, then refine it segment by segment, as
the reference's `run_demo_long_video.py` does. Each segment is one ordinary sampler run (the guider, sampler and
sigmas the user wires in); only the current segment's latents and condition are on the GPU (the condition's cache
even off it, in CPU memory, when the card is tight), the frames collect on the CPU. ComfyUI's progress bar counts
the steps of all segments and the node says what runs between them; an interrupt stops between any two steps. A
prompt per continuation: segment_prompts."""
import copy
import logging

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.sample
import comfy.utils
from server import PromptServer

from ..core.conditioning import conditioned_latent, whole_latent_frames
from ..core.refine_geometry import refine_frame_plan, trim_frames, upscale_frames
from ..model.condition_offload import CHOICES, CONDITION_OFFLOAD
from .condition_nodes import LENGTH, VAE, continuation_cond_latent, encode, refine_condition_clip
from .refine_nodes import RESOLUTIONS, refine_size
from .segment_prompts import PROMPTS, log_prompt_plan, segment_prompt, with_positive

log = logging.getLogger("longcat")
HIDDEN = {"hidden": {"unique_id": "UNIQUE_ID"}}  # the node's id, for its progress text
SEGMENT_INPUTS = {
    "guider": ("GUIDER", {"tooltip": "The model and prompts of every segment: CFGGuider (cfg 4) with LongCat "
                                     "CFG-Zero* for the base model, or BasicGuider with the distill LoRA."}),
    "sampler": ("SAMPLER", {"tooltip": "The sampler of every segment (KSamplerSelect: euler, as the reference)."}),
    "sigmas": ("SIGMAS", {"tooltip": "The schedule of every segment (LongCat Sigmas)."}),
    "vae": VAE,
    "noise_seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                           "tooltip": "Noise seed of the first segment; segment i uses seed + i."}),
}
CONDITION_CACHE = {"condition_cache": (CHOICES, {"default": "auto", "tooltip":
                                                 "Where each segment keeps its condition's keys and values (4.5 GiB "
                                                 "at 480p, 21 GiB at 720p, bf16). auto: in CPU memory when the card "
                                                 "cannot hold them with the weights and the step (the log says "
                                                 "which); gpu: on the card; cpu: in pinned CPU memory, streamed to "
                                                 "the card block by block (same video, a little slower)."})}


def with_condition_cache(guider, choice):
    """A copy of the guider whose runs keep their condition cache where `choice` says (see condition_offload)."""
    copied = copy.copy(guider)
    copied.model_options = comfy.model_patcher.create_model_options_clone(guider.model_options)
    copied.model_options.setdefault("transformer_options", {})[CONDITION_OFFLOAD] = choice
    return copied


class StepProgress:
    """One ComfyUI progress bar over the sampling steps of all segments (updating it also honours interrupts), and
    a line of text on the node (and in the log, and on `python -m nodes.cli run`'s console) for the work between
    the steps: the VAE decoding and encoding of each segment, which takes longer than its steps on a CPU."""

    def __init__(self, segments, steps, node_id=None, name="LongCat"):
        self.steps, self.segment, self.segments = steps, 0, segments
        self.node_id, self.name = node_id, name
        self.bar = comfy.utils.ProgressBar(segments * steps)

    def say(self, what):
        text = f"segment {self.segment + 1}/{self.segments}: {what}"
        log.info("%s: %s", self.name, text)
        if self.node_id is not None and getattr(PromptServer, "instance", None) is not None:
            PromptServer.instance.send_progress_text(text, self.node_id)

    def callback(self, step, x0, x, total_steps):
        self.bar.update_absolute(self.segment * self.steps + step + 1)

    def next_segment(self):
        self.segment += 1
        mm.throw_exception_if_processing_interrupted()


def sample_segment(guider, sampler, sigmas, latent, seed, progress):
    """What SamplerCustomAdvanced does for one latent: its noise from `seed`, the mask kept, the result in RAM."""
    samples = comfy.sample.fix_empty_latent_channels(guider.model_patcher, latent["samples"])
    noise = comfy.sample.prepare_noise(samples, seed)
    out = guider.sample(noise, samples, sampler, sigmas, denoise_mask=latent.get("noise_mask"),
                        callback=progress.callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return out.to(mm.intermediate_device())


def decode(vae, samples):
    images = vae.decode(samples)
    return images.reshape(-1, *images.shape[-3:]) if images.dim() == 5 else images


class LongCatLongVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **SEGMENT_INPUTS,
            "video": ("IMAGE", {"tooltip": "The first segment (e.g. the decoded text-to-video clip): each "
                                           "continuation starts from the last num_cond_frames of the one before."}),
            "segments": ("INT", {"default": 3, "min": 1, "max": 1000, "tooltip":
                                 "How many continuations to add. Each adds length - num_cond_frames frames (80 with "
                                 "the defaults: 5.3 s at 15 fps); 3 after a 93-frame clip make 333 frames, 22 s at "
                                 "15 fps (and at 30 fps after refinement)."}),
            "num_cond_frames": ("INT", {"default": 13, "min": 1, "max": 1001, "step": 4, "tooltip":
                                        "Frames of the previous segment each continuation is conditioned on (1 + 4k; "
                                        "13 as the reference)."}),
            "length": LENGTH,
        }, "optional": {
            "prompts": (PROMPTS, {"tooltip": "A prompt per segment (LongCat Segment Prompts): continuation i uses "
                                             "prompt i in place of the guider's positive prompt, the last one "
                                             "repeating; the negative prompt stays the guider's. Unconnected: the "
                                             "guider's prompt for every continuation."}),
            **CONDITION_CACHE,
        }, **HIDDEN}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The whole video: the first segment, then each continuation without its repeated "
                       "condition frames.",)
    FUNCTION = "extend"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Continues a clip `segments` times in one run (the reference's long video): each segment is "
                   "conditioned on the last num_cond_frames of the previous one; joined without repeats.")

    def extend(self, guider, sampler, sigmas, vae, noise_seed, video, segments, num_cond_frames, length,
               prompts=None, condition_cache="auto", unique_id=None):
        whole_latent_frames(length, "length")
        guider = with_condition_cache(guider, condition_cache)
        if prompts is not None:
            log_prompt_plan(prompts, segments)
        progress = StepProgress(segments, len(sigmas) - 1, unique_id, "LongCat Long Video")
        pieces, current = [video], video
        for i in range(segments):
            progress.say(f"encoding the last {num_cond_frames} frames")
            samples, mask = conditioned_latent(continuation_cond_latent(vae, current, num_cond_frames), length)
            progress.say(f"sampling {length} frames")
            segment_guider = guider if prompts is None else with_positive(guider, segment_prompt(prompts, i + 1))
            out = sample_segment(segment_guider, sampler, sigmas, {"samples": samples, "noise_mask": mask},
                                 noise_seed + i, progress)
            progress.say(f"decoding {length} frames")
            current = decode(vae, out)
            pieces.append(current[num_cond_frames:].to(video.dtype))
            progress.next_segment()
        return (torch.cat(pieces),)


class LongCatRefineLongVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **SEGMENT_INPUTS,
            "video": ("IMAGE", {"tooltip": "The whole stage-1 video (LongCat Long Video's output)."}),
            "segment_length": ("INT", {"default": 93, "min": 5, "max": 100000, "tooltip":
                                       "Stage-1 frames per refined segment (93, the continuation's length)."}),
            "num_cond_frames": ("INT", {"default": 13, "min": 1, "max": 1001, "tooltip":
                                        "Stage-1 frames two neighbouring segments share (13, the continuation's "
                                        "num_cond_frames); each later segment is conditioned on that overlap of "
                                        "the previous refined segment (2 x 13 = 26 frames at 30 fps)."}),
            "resolution": (RESOLUTIONS, {"default": "720p bucket", "tooltip":
                                         "720p bucket: the reference's refinement size for this aspect ratio. same as "
                                         "input: keep the size (small previews)."}),
            "spatial_only": ("BOOLEAN", {"default": False, "tooltip":
                                         "Keep the frame rate (no 15 -> 30 fps doubling)."}),
        }, "optional": CONDITION_CACHE, **HIDDEN}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The refined video (2x the frames unless spatial_only), segments joined without repeats.",)
    FUNCTION = "refine"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Refines a long stage-1 video segment by segment (the reference's long-video refinement): each "
                   "segment after the first is conditioned on the last refined frames of the one before.")

    def refine(self, guider, sampler, sigmas, vae, noise_seed, video, segment_length, num_cond_frames, resolution,
               spatial_only, condition_cache="auto", unique_id=None):
        if not 0 < num_cond_frames < segment_length:
            raise ValueError(f"num_cond_frames {num_cond_frames} must be between 0 and segment_length "
                             f"{segment_length} (exclusive)")
        guider = with_condition_cache(guider, condition_cache)
        height, width = refine_size(video.shape[1], video.shape[2], resolution)
        step = segment_length - num_cond_frames
        starts = [0] + list(range(step, video.shape[0] - num_cond_frames, step))
        progress = StepProgress(len(starts), len(sigmas) - 1, unique_id, "LongCat Refine Long Video")
        pieces, previous = [], None
        for i, start in enumerate(starts):
            stage1 = video[start:start + segment_length]
            condition_frames = 0 if previous is None else num_cond_frames * (1 if spatial_only else 2)
            plan = refine_frame_plan(stage1.shape[0], spatial_only, condition_frames)
            pixels = upscale_frames(stage1, height, width, not spatial_only, condition_frames)
            progress.say(f"encoding {pixels.shape[0]} frames at {width}x{height}")
            latent = encode(vae, pixels.to(video.dtype))
            mask = None
            if previous is not None:
                progress.say(f"encoding the condition ({condition_frames} refined frames)")
                cond = encode(vae, refine_condition_clip(previous, condition_frames, width, height))
                latent, mask = conditioned_latent(cond, plan.padded_frames, latent)
            progress.say("sampling")
            out = sample_segment(guider, sampler, sigmas, {"samples": latent, "noise_mask": mask}, noise_seed + i,
                                 progress)
            progress.say(f"decoding {plan.output_frames} frames")
            previous = trim_frames(decode(vae, out), plan.output_frames, plan.pad_front).to(video.dtype)
            pieces.append(previous[condition_frames:])
            progress.next_segment()
        return (torch.cat(pieces),)
