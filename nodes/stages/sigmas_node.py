"""LongCat Sigmas: the reference's sigma schedules (shift 12) for stock SamplerCustomAdvanced / SamplerCustom."""
from ..core.schedules import avatar_distill_sigmas, base_sigmas, distill_sigmas, enhance_hf_sigmas, refine_sigmas

REFERENCE_STEPS = {"base": 50, "distill": 16, "refine": 50, "enhance_hf": 50, "avatar_distill": 8}


class LongCatSigmas:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "stage": (list(REFERENCE_STEPS), {"default": "distill", "tooltip":
                      "base: 50 steps with CFG-Zero* (guidance 4). distill: 16 steps for the distill LoRA (no CFG). "
                      "refine: the refinement LoRA's schedule, starting at t_thresh (5 model calls by default). "
                      "enhance_hf: video continuation's default (base steps above t = 500, then 10 uniform steps "
                      "500 ... 50: 56 calls), with CFG-Zero* at guidance 4. avatar_distill: LongCat-Video-Avatar "
                      "v1.5's 8-step DMD schedule, for its DMD LoRA (text and audio guidance 1)."}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 200, "tooltip":
                      "0 = the reference's count for the stage (base 50, distill 16, avatar_distill 8, refine 50: of the refine "
                      "schedule only the steps below t_thresh run; enhance_hf 50: of those only the steps above "
                      "t = 500 run, then the 10-step tail)."}),
            "t_thresh": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 0.99, "step": 0.01, "tooltip":
                         "refine only: the noise level the refinement starts from (the stage-2 latent is "
                         "(1 - t) * z0 + t * noise). Ignored by base and distill."}),
        }}

    RETURN_TYPES = ("SIGMAS",)
    OUTPUT_TOOLTIPS = ("Sigmas for SamplerCustomAdvanced (ending at 0).",)
    FUNCTION = "sigmas"
    CATEGORY = "LongCat"
    DESCRIPTION = ("The reference LongCat-Video schedules: base, distill (16 steps), refine (starts at t_thresh) and "
                   "enhance_hf (video continuation), avatar_distill (LongCat-Video-Avatar v1.5 DMD, 8 steps).")

    def sigmas(self, stage, steps, t_thresh):
        if stage not in REFERENCE_STEPS:
            raise ValueError(f"stage must be one of {', '.join(REFERENCE_STEPS)}, got {stage!r}")
        steps = steps or REFERENCE_STEPS[stage]
        if stage == "base":
            return (base_sigmas(steps),)
        if stage == "distill":
            return (distill_sigmas(steps),)
        if stage == "avatar_distill":
            return (avatar_distill_sigmas(steps),)
        if stage == "enhance_hf":
            return (enhance_hf_sigmas(steps),)
        return (refine_sigmas(steps, t_thresh),)
