"""LongCat Avatar Guider: the reference's three-pass audio guidance for stock SamplerCustomAdvanced.

out = uncond + text_cfg (cond - uncond_text) + audio_cfg (uncond_text - uncond), where cond = (prompt, audio),
uncond_text = (negative, audio), uncond = (negative, zero audio). With both scales 1 only the cond pass runs. The
combination is linear with weights summing to 1, so combining ComfyUI's denoised predictions equals combining the
reference's velocities.
"""
import comfy.samplers

from ...model.comfy_model import AVATAR_CONDITION


def silenced(conditioning):
    """The conditioning with its avatar audio replaced by zeros (the unconditional pass's "no audio")."""
    out = []
    for embedding, options in conditioning:
        cond = options.get(AVATAR_CONDITION)
        if cond is None:
            raise ValueError("negative: no avatar audio in this conditioning (run it through LongCat Avatar "
                             "Condition)")
        out.append([embedding, dict(options, **{AVATAR_CONDITION: cond.silent()})])
    return out


class AvatarGuider(comfy.samplers.CFGGuider):
    def __init__(self, model_patcher, text_cfg, audio_cfg):
        super().__init__(model_patcher)
        self.text_cfg, self.audio_cfg = text_cfg, audio_cfg

    def set_conds(self, positive, negative):
        self.inner_set_conds({"positive": positive, "negative": negative, "silent": silenced(negative)})

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        if self.text_cfg == 1 and self.audio_cfg == 1:
            return comfy.samplers.calc_cond_batch(self.inner_model, [self.conds["positive"]], x, timestep,
                                                  model_options)[0]
        cond, uncond_text, uncond = comfy.samplers.calc_cond_batch(
            self.inner_model, [self.conds["positive"], self.conds["negative"], self.conds["silent"]], x, timestep,
            model_options)
        return uncond + self.text_cfg * (cond - uncond_text) + self.audio_cfg * (uncond_text - uncond)


class LongCatAvatarGuider:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "A LongCat-Video-Avatar DiT (Load LongCat DiT), with its DMD LoRA or not."}),
            "positive": ("CONDITIONING", {"tooltip": "From LongCat Avatar Condition: the prompt with the audio."}),
            "negative": ("CONDITIONING", {"tooltip": "From LongCat Avatar Condition: the negative prompt with the "
                                                     "audio (the silent pass is made from it)."}),
            "text_cfg": ("FLOAT", {"default": 4.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip":
                                   "Text guidance (reference 4; 1 with the DMD LoRA)."}),
            "audio_cfg": ("FLOAT", {"default": 4.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip":
                                    "Audio guidance (reference 4; 1 with the DMD LoRA). Above 1 a third model pass "
                                    "runs per step (negative prompt with silence)."}),
        }}

    RETURN_TYPES = ("GUIDER",)
    OUTPUT_TOOLTIPS = ("A guider for SamplerCustomAdvanced: three passes per step, or one when both scales are 1.",)
    FUNCTION = "get_guider"
    CATEGORY = "LongCat/Avatar"
    DESCRIPTION = ("LongCat-Video-Avatar's guidance: uncond + text_cfg (cond - uncond_text) + audio_cfg (uncond_text "
                   "- uncond), as the reference pipeline runs it.")

    def get_guider(self, model, positive, negative, text_cfg, audio_cfg):
        guider = AvatarGuider(model, text_cfg, audio_cfg)
        guider.set_conds(positive, negative)
        return (guider,)
