"""LongCat-Video-Avatar registered with ComfyUI: the avatar DiT as ComfyUI's sampling calls it, and its condition.

The avatar's inputs travel in the conditioning under AVATAR_CONDITION (an AvatarCondition, set by LongCat Avatar
Condition) and reach the DiT through `extra_conds`: the audio windows of the clip (batched like the text: cond and
uncond rows side by side), and for a continuation the reference latent, its RoPE index and masked range; for two
speakers their masks. The unconditional pass of the three-pass guidance is the same condition with zero audio
(`silent`).
"""
from dataclasses import dataclass, replace

import torch

import comfy.conds

from ...core.avatar.avatar_dit import LongCatAvatarDiT
from ..comfy_model import (AVATAR_CONDITION, BSA_OPTION, CACHED_FROM_LATENTS, CONDITION_CACHE, TEXT_TOKENS,
                           LongCatComfyDiT, LongCatVideoConfig, LongCatVideoModel)


@dataclass(frozen=True)
class AvatarCondition:
    audio: torch.Tensor  # [speakers, video frames of the clip, window, groups, channels]
    encoder: str  # the audio encoder's name, for messages
    ref_latent: torch.Tensor = None  # raw VAE latent [1, 16, 1, h, w] of the first clip's first frame (continuation)
    ref_img_index: int = 10
    mask_frame_range: int = 3
    speaker_masks: torch.Tensor = None  # [speakers + 1, height, width]: the speakers' masks, then the background

    def silent(self):
        """The same condition with zero audio: the reference's "no audio" (not a skipped branch)."""
        return replace(self, audio=torch.zeros_like(self.audio))


class LongCatComfyAvatarDiT(LongCatAvatarDiT, LongCatComfyDiT):
    """The avatar DiT as ComfyUI's flow sampling calls it (the sign flip and condition frames of LongCatComfyDiT).
    A continuation's reference latent goes in front of the clip inside the call (timestep 0, counted with the
    condition) and its output frame is dropped: the sampler's latent is the clip's."""

    forward = LongCatComfyDiT.forward  # through ComfyUI's DIFFUSION_MODEL wrappers, as the base model

    def _forward(self, x, timestep, context, control=None, transformer_options={}, num_cond_latents=0,
                 avatar_audio=None, avatar_ref_latent=None, avatar_ref_img_index=10, avatar_mask_frame_range=3,
                 avatar_speaker_masks=None, **kwargs):
        if avatar_audio is None:
            raise ValueError("this is a LongCat-Video-Avatar DiT: it needs audio. Condition it with LongCat Avatar "
                             "Condition (its audio from LongCat Avatar Audio) before sampling")
        if transformer_options.get(BSA_OPTION):
            raise ValueError("block-sparse attention (LongCat Block Sparse Attention) is not supported on the avatar "
                             "DiT: remove that node")
        B = x.shape[0]
        num_cond = num_cond_latents
        num_ref = 0
        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(B, x.shape[2])
        if avatar_ref_latent is not None:
            if not num_cond:
                raise ValueError("a reference latent (ref_latent) goes with a continuation's condition frames "
                                 "(cond_latent)")
            x = torch.cat([avatar_ref_latent.to(x), x], dim=2)
            timestep = torch.cat([timestep.new_zeros(B, 1), timestep], dim=1)
            num_cond, num_ref = num_cond + 1, 1
        cache = transformer_options.get(CONDITION_CACHE) if num_cond >= CACHED_FROM_LATENTS else None
        out = LongCatAvatarDiT.forward(
            self, x, timestep, context[:, :TEXT_TOKENS], avatar_audio, num_cond_latents=num_cond,
            condition_cache=cache, transformer_options=transformer_options, num_ref_latents=num_ref, ref_img_index=int(avatar_ref_img_index),
            mask_frame_range=int(avatar_mask_frame_range),
            speaker_masks=None if avatar_speaker_masks is None else avatar_speaker_masks[0])
        return -out[:, :, num_ref:]


class LongCatAvatarModel(LongCatVideoModel):
    unet_model = LongCatComfyAvatarDiT

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        cond = kwargs.get(AVATAR_CONDITION)
        if cond is None:
            return out
        expected = self.model_config.unet_config["audio_window_dim"]
        got = cond.audio.shape[2] * cond.audio.shape[3] * cond.audio.shape[4]
        if got != expected:
            raise ValueError(f"the audio from {cond.encoder} ({cond.audio.shape[3]} groups x {cond.audio.shape[4]} "
                             f"channels x window {cond.audio.shape[2]} = {got}) does not fit the avatar DiT "
                             f"{getattr(self, 'source_name', '')} (its audio projection takes {expected}): v1.0 "
                             "avatar DiTs listen through chinese-wav2vec2-base, v1.5 through whisper-large-v3")
        out["avatar_audio"] = comfy.conds.CONDRegular(cond.audio[None])
        if cond.ref_latent is not None:
            out["avatar_ref_latent"] = comfy.conds.CONDRegular(self.process_latent_in(cond.ref_latent))
            out["avatar_ref_img_index"] = comfy.conds.CONDConstant(cond.ref_img_index)
            out["avatar_mask_frame_range"] = comfy.conds.CONDConstant(cond.mask_frame_range)
        if cond.speaker_masks is not None:
            out["avatar_speaker_masks"] = comfy.conds.CONDRegular(cond.speaker_masks[None])
        return out


    def extra_frames(self, cond_shapes):
        """A continuation's reference latent: one more frame in every step and in the condition cache."""
        return 1 if cond_shapes.get("avatar_ref_latent") else 0


class LongCatAvatarConfig(LongCatVideoConfig):
    def get_model(self, state_dict, prefix="", device=None):
        return LongCatAvatarModel(self, device=device)
