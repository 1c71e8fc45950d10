"""LongCat CFG-Zero*: the reference's optimized-scale guidance for the 50-step base stage.

Core's CFGZeroStar node applies the formula to denoised predictions; for a flow model that differs from the
reference (which applies it to velocities) by x * (alpha - 1) * (1 - guidance). This node converts ComfyUI's
denoised predictions back to velocities, applies core `cfg_zero_star`, and converts back.
"""
from ..core.schedules import cfg_zero_star


class LongCatCFGZeroStar:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "The LongCat model used with CFG (base stage, guidance "
                                                            "4.0 in the sampler's cfg)."})}}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with the reference CFG-Zero* guidance (per-sample optimized scale).",)
    FUNCTION = "patch"
    CATEGORY = "LongCat"
    DESCRIPTION = "CFG-Zero* exactly as LongCat-Video's base pipeline applies it: v = s*v_u + g (v_c - s*v_u)."

    def patch(self, model):
        m = model.clone()

        def guidance(args):
            x, sigma = args["input"], args["sigma"].view(-1, *[1] * (args["input"].dim() - 1))
            v_cond = (x - args["cond_denoised"]) / sigma
            v_uncond = (x - args["uncond_denoised"]) / sigma
            return x - sigma * cfg_zero_star(v_cond, v_uncond, args["cond_scale"])

        m.set_model_sampler_post_cfg_function(guidance)
        return (m,)
