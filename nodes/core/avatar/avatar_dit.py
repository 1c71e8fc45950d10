"""The LongCat-Video-Avatar DiT: the base DiT with an audio cross-attention in every block and a global audio
projection (the reference's `LongCatVideoAvatarTransformer3DModel`).

Each block runs self-attention, text cross-attention, then the audio cross-attention, then the FFN. The audio
cross-attention is per latent frame: the queries of frame t (after `pre_video_crs_attn_norm`) attend to frame t's
audio tokens only; its output is modulated (LayerNorm without affine, `audio_adaLN_modulation`'s shift and scale
of the frame's timestep) and gated into the residual stream, on the noisy frames only. "No audio" (the
unconditional pass) is an all-zero audio input, not a skipped branch.
"""
import functools

import torch
import torch.nn as nn

from ..dit import CrossAttention, LongCatBlock, LongCatDiT
from ..dit_config import dit_config_from_state_dict
from ..dit_ops import HEAD_DIM, NORM_EPS, gated_add_, modulate, norm_rope, run_fp32, sdpa
from ..frame_chunks import TOKEN_PARTS
from .audio_tokens import AudioProjModel, latent_slices
from .layout import ReferenceLayout
from .speakers import SpeakerRouting, rope_1d_tables, token_masks

AUDIO_PROJ = "audio_proj.proj1.weight"


class AudioCrossAttention(CrossAttention):
    """Cross-attention of each latent frame's tokens to that frame's audio tokens; q/k RMSNorm, and with two
    speakers a 1-D RoPE on q and k (see speakers.py)."""

    def forward(self, x, tokens, frames, q_positions=None, k_positions=None, attention=sdpa):
        """x [B, frames·S, C] (normed video tokens), tokens [B, frames, n, C_a] -> [B, frames·S, C]; `attention`: the
        model's attention kernel (see dit_ops.sdpa)."""
        B, N, C = x.shape
        n = tokens.shape[2]
        k, v = self.kv_linear(tokens).view(B * frames, n, 2, self.num_heads, HEAD_DIM).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        q = self.q_linear(x).view(B * frames, N // frames, self.num_heads, HEAD_DIM).transpose(1, 2)
        if q_positions is None:
            q, k = self.q_norm(q), self.k_norm(k)
        else:
            cos, sin = rope_1d_tables(q_positions.reshape(B * frames, 1, -1), HEAD_DIM)
            q = norm_rope(q, self.q_norm.cast_weight(q), cos, sin, self.q_norm.eps)
            cos, sin = rope_1d_tables(k_positions.to(x.device), HEAD_DIM)
            k = norm_rope(k, self.k_norm.cast_weight(k), cos, sin, self.k_norm.eps)
        out = attention(q, k, v, self.num_heads)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class AvatarAudio:
    """The audio of one forward call: tokens [B, T, n, C_a] for every latent frame of the clip, and the speaker
    routing (None for one speaker)."""

    def __init__(self, tokens, routing=None):
        self.tokens, self.routing = tokens, routing


class AvatarBlock(LongCatBlock):
    def __init__(self, hidden_size, num_heads, adaln_tembed_dim, ffn_hidden, audio_dim, audio_prenorm=False,
                 dtype=None, device=None, operations=nn):
        super().__init__(hidden_size, num_heads, adaln_tembed_dim, ffn_hidden, dtype=dtype, device=device,
                         operations=operations)
        kw = dict(dtype=dtype, device=device)
        self.audio_adaLN_modulation = nn.Sequential(
            nn.SiLU(), operations.Linear(adaln_tembed_dim, 3 * hidden_size, bias=True, **kw))
        self.pre_video_crs_attn_norm = operations.LayerNorm(hidden_size, eps=NORM_EPS, elementwise_affine=True, **kw)
        self.pre_audio_crs_attn_norm = operations.LayerNorm(audio_dim, eps=NORM_EPS, elementwise_affine=True, **kw) \
            if audio_prenorm else nn.Identity()
        self.audio_prenorm = audio_prenorm
        self.audio_cross_attn = AudioCrossAttention(hidden_size, num_heads, operations=operations,
                                                    context_dim=audio_dim, **kw)

    def forward(self, x, y, t_emb, rope, grid, num_cond_tokens, first_frame=0, cached_kv=None, record_kv=None,
                attention=sdpa, layout=None, audio=None):
        """The base block's contract (see LongCatBlock) plus `audio` (an AvatarAudio; unused by a cache fill)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            run_fp32(self.adaLN_modulation, t_emb).unsqueeze(2).chunk(6, dim=-1)
        num_cond_frames = layout.num_cond_frames
        routing = audio.routing if audio is not None and y is not None else None
        chunks, last_frame = self.self_attention(x, shift_msa, scale_msa, gate_msa, rope, grid, layout, first_frame,
                                                 cached_kv, record_kv,
                                                 routing.visit(num_cond_frames) if routing else None, attention)
        noisy = list(chunks(TOKEN_PARTS, max(first_frame, num_cond_frames), last_frame))
        if noisy:
            self.text_cross_attention(x, y, noisy, attention)
            self.audio_cross_attention(x, t_emb, audio, noisy, grid, num_cond_frames, attention)
        self.feed_forward(x, shift_mlp, scale_mlp, gate_mlp, chunks(TOKEN_PARTS, first_frame, last_frame))
        return x

    def audio_cross_attention(self, x, t_emb, audio, chunks, grid, num_cond_frames, attention=sdpa):
        shift, scale, gate = run_fp32(self.audio_adaLN_modulation, t_emb).unsqueeze(2).chunk(3, dim=-1)
        frame_tokens = grid[1] * grid[2]
        q_positions = k_positions = None
        if audio.routing is not None:
            q_positions = audio.routing.query_positions()
            k_positions = audio.routing.key_positions(audio.tokens.shape[2])
        for rows, frames in chunks:
            count = frames.stop - frames.start
            tokens = audio.tokens[:, frames].to(x.dtype)
            if self.audio_prenorm:
                tokens = run_fp32(self.pre_audio_crs_attn_norm, tokens).to(x.dtype)
            q_pos = None
            if q_positions is not None:
                q_pos = q_positions[:, (frames.start - num_cond_frames) * frame_tokens:
                                    (frames.stop - num_cond_frames) * frame_tokens]
            out = self.audio_cross_attn(run_fp32(self.pre_video_crs_attn_norm, x[:, rows]).to(x.dtype), tokens, count,
                                        q_pos, k_positions, attention)
            gated_add_(x[:, rows], gate[:, frames], modulate(out, shift[:, frames], scale[:, frames]))


class LongCatAvatarDiT(LongCatDiT):
    """The avatar DiT. Constructor: the base arguments plus the audio projection's sizes
    (`avatar_config_from_state_dict`)."""

    def __init__(self, *args, audio_window_dim, audio_window_vf_dim, audio_intermediate_dim, audio_dim,
                 audio_context_tokens, audio_prenorm=False, class_range=24, class_interval=4, dtype=None, device=None,
                 operations=nn, **kwargs):
        block = functools.partial(AvatarBlock, audio_dim=audio_dim, audio_prenorm=audio_prenorm)
        super().__init__(*args, dtype=dtype, device=device, operations=operations, block=block, **kwargs)
        self.audio_proj = AudioProjModel(audio_window_dim, audio_window_vf_dim, audio_intermediate_dim, audio_dim,
                                         audio_context_tokens, dtype=dtype, device=device, operations=operations)
        self.audio_window_dim = audio_window_dim
        self.class_range, self.class_interval = class_range, class_interval

    def forward(self, x, timestep, context, audio, context_mask=None, num_cond_latents=0, condition_cache=None,
                num_ref_latents=0, ref_img_index=10, mask_frame_range=3, speaker_masks=None,
                transformer_options=None):
        """The base forward plus the avatar inputs. audio: [B, speakers, 1 + 4(T' - 1), window, groups, channels],
        the windows of the clip's video frames (T' = T - num_ref_latents latent frames: the reference latent has
        none of its own); zeros for "no audio". num_ref_latents (0 or 1): a continuation's reference latent in
        front of the condition (counted in num_cond_latents), at RoPE time `ref_img_index`, hidden from the noisy
        frames within `mask_frame_range` of it. speaker_masks: [speakers + 1, h, w] masks of the first frame (the
        speakers', then the background) for two or more speakers."""
        B, _, T, H, W = x.shape
        tokens = self.audio_tokens(audio, T, num_ref_latents, self.residual_dtype(x))
        layout = ReferenceLayout(num_cond_latents, T, num_ref_latents, ref_img_index, mask_frame_range)
        routing = None
        if speaker_masks is not None:
            if not num_cond_latents:
                raise ValueError("two speakers need a reference image (image to video or continuation): their masks "
                                 "are matched against the first frame")
            _, ph, pw = self.patch_size
            routing = SpeakerRouting(token_masks(speaker_masks.to(x.device), (-(-H // ph), -(-W // pw))),
                                     audio.shape[1], self.class_range, self.class_interval)
        elif audio.shape[1] > 1:
            raise ValueError(f"{audio.shape[1]} audio streams need speaker masks (one per speaker)")
        # The base forward by name: a subclass that is also a ComfyUI model (model/avatar) overrides `forward`.
        return LongCatDiT.forward(self, x, timestep, context, context_mask, num_cond_latents, condition_cache,
                                  transformer_options, layout=layout,
                                  block_inputs={"audio": AvatarAudio(tokens, routing)})

    def audio_tokens(self, audio, frames, num_ref_latents, dtype):
        """[B, T, speakers · context_tokens, audio_dim] tokens for the T latent frames of x, computed in `dtype`
        (the residual stream's, as the reference casts the audio to it)."""
        B, speakers = audio.shape[:2]
        if audio.shape[3] * audio.shape[4] * audio.shape[5] != self.audio_window_dim:
            raise ValueError(f"audio windows of {list(audio.shape[3:])} (window, groups, channels) do not fit this "
                             f"DiT's audio projection ({self.audio_window_dim} inputs per frame)")
        first, later = latent_slices(audio.flatten(0, 1).to(dtype))
        tokens = self.audio_proj(first, later)  # [B·speakers, T', n, C]
        tokens = tokens.unflatten(0, (B, speakers)).permute(0, 2, 1, 3, 4).flatten(2, 3)  # speakers side by side
        if num_ref_latents:
            tokens = torch.cat([tokens[:, :1], tokens], dim=1)
        if tokens.shape[1] < frames:
            raise ValueError(f"audio for {tokens.shape[1]} latent frames, the latent has {frames}")
        return tokens[:, -frames:]


def avatar_config_from_state_dict(shapes):
    """LongCatAvatarDiT constructor arguments read off tensor shapes; a plain DiT's config when the state dict has
    no audio projection."""
    config = dit_config_from_state_dict(shapes)
    if AUDIO_PROJ not in shapes:
        return config
    proj1, proj1_vf, proj3 = (shapes[f"audio_proj.{n}.weight"] for n in ("proj1", "proj1_vf", "proj3"))
    audio_dim = shapes["audio_proj.norm.weight"][0]
    return dict(config, audio_window_dim=proj1[1], audio_window_vf_dim=proj1_vf[1], audio_intermediate_dim=proj1[0],
                audio_dim=audio_dim, audio_context_tokens=proj3[0] // audio_dim,
                audio_prenorm="blocks.0.pre_audio_crs_attn_norm.weight" in shapes)


def dit_class(config):
    """The model class a configuration describes: the avatar DiT when it has an audio projection."""
    return LongCatAvatarDiT if is_avatar(config) else LongCatDiT


def is_avatar(config):
    return "audio_dim" in config
