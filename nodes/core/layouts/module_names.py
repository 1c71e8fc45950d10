"""The LongCat DiT's module names in each project's layout, and their translation to the native reference names.

A layout is a table of (native module, that layout's module) pairs; block modules are written without their
`blocks.{i}.` prefix. The native fused linears (`attn.qkv`, `cross_attn.kv_linear`) are split in other layouts:
their row pieces have native names of their own (`attn.q | attn.k | attn.v`, `cross_attn.k | cross_attn.v`, in
row order), the split aliases the LoRA reader knows; the checkpoint reader concatenates them back. Checkpoints and
LoRAs use the same tables, so a module is named the same way for both.
"""
import re
from dataclasses import dataclass

# Linear modules of one block and of the whole DiT (the modules a LoRA or a quantized layer may target).
# The avatar DiT (LongCat-Video-Avatar) adds an audio cross-attention per block and a global audio projection.
AVATAR_BLOCK_LINEARS = ("audio_cross_attn.q_linear", "audio_cross_attn.kv_linear", "audio_cross_attn.proj",
                        "audio_adaLN_modulation.1")
AVATAR_GLOBAL_LINEARS = ("audio_proj.proj1", "audio_proj.proj1_vf", "audio_proj.proj2", "audio_proj.proj3")
AVATAR_BLOCK_OTHERS = ("audio_cross_attn.q_norm", "audio_cross_attn.k_norm", "pre_video_crs_attn_norm",
                       "pre_audio_crs_attn_norm")
AVATAR_GLOBAL_OTHERS = ("audio_proj.norm",)
BLOCK_LINEARS = ("attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear", "cross_attn.proj",
                 "ffn.w1", "ffn.w2", "ffn.w3", "adaLN_modulation.1") + AVATAR_BLOCK_LINEARS
GLOBAL_LINEARS = ("final_layer.adaLN_modulation.1", "final_layer.linear", "t_embedder.mlp.0", "t_embedder.mlp.2",
                  "y_embedder.y_proj.0", "y_embedder.y_proj.2") + AVATAR_GLOBAL_LINEARS
BLOCK_OTHERS = ("attn.q_norm", "attn.k_norm", "pre_crs_attn_norm", "cross_attn.q_norm",
                "cross_attn.k_norm") + AVATAR_BLOCK_OTHERS
GLOBAL_OTHERS = ("x_embedder.proj",) + AVATAR_GLOBAL_OTHERS
FUSED_PIECES = {"attn.qkv": ("attn.q", "attn.k", "attn.v"), "cross_attn.kv_linear": ("cross_attn.k", "cross_attn.v")}
_BLOCK = re.compile(r"^blocks[._](\d+)[._](.+)$")
PIECE_OF = {piece: (fused, j, len(pieces)) for fused, pieces in FUSED_PIECES.items() for j, piece in enumerate(pieces)}


@dataclass(frozen=True)
class Layout:
    name: str  # short id the inspector and the route report
    title: str  # where a user got such a file
    block_modules: dict  # native block module (or fused piece) -> this layout's name
    global_modules: dict  # native global module -> this layout's name
    splits_fused: bool  # True when the fused linears are stored as their pieces

    def __post_init__(self):
        back = {v: k for k, v in self.block_modules.items()}
        object.__setattr__(self, "_block_back", back)
        object.__setattr__(self, "_global_back", {v: k for k, v in self.global_modules.items()})
        object.__setattr__(self, "_undotted", {k.replace(".", "_"): k for k in back})
        object.__setattr__(self, "_undotted_global", {v.replace(".", "_"): v for v in self.global_modules.values()})

    def to_native(self, module, undotted=False):
        """This layout's module path -> the native module (or fused piece) name, or None.
        `undotted`: names may be written with `_` for `.` (kohya: `lora_unet_blocks_0_self_attn_q`)."""
        m = _BLOCK.match(module)
        if m:
            index, rest = m.groups()
            native = self._block_back.get(self._undotted.get(rest, rest) if undotted else rest)
            return f"blocks.{index}.{native}" if native else None
        return self._global_back.get(self._undotted_global.get(module, module) if undotted else module)

    def from_native(self, native):
        """A native module (or fused piece) name -> this layout's name."""
        if native.startswith("blocks."):
            index, _, rest = native[len("blocks."):].partition(".")
            return f"blocks.{index}.{self.block_modules[rest]}"
        return self.global_modules[native]


def _identity(names):
    return {n: n for n in names}


NATIVE = Layout(
    "native", "native LongCat (meituan-longcat/LongCat-Video dit/)",
    _identity(BLOCK_LINEARS + BLOCK_OTHERS + tuple(PIECE_OF)), _identity(GLOBAL_LINEARS + GLOBAL_OTHERS),
    splits_fused=False)

# Native module: (WanVideoWrapper / Kijai name, FastVideo name).
# WanVideoWrapper: kijai/ComfyUI-WanVideoWrapper runs LongCat as its WanModel with `is_longcat`
# (wanvideo/modules/model.py: WanSelfAttention q/k/v/o with head-wise norm_q/norm_k, norm3 = the affine
# cross-attention LayerNorm, `modulation` = Sequential(SiLU, Linear), Head_adaLN `head.head` / `head.modulation`;
# LongCat/layers.py: TimestepEmbedder `mlp.0/.2`, FeedForwardSwiGLU `w1/w2/w3`). nodes_model_loading.py loads a
# checkpoint by those parameter names, so Kijai's single files (Kijai/LongCat-Video_comfy) hold exactly them.
# FastVideo: hao-ai-lab/FastVideo's native LongCat (fastvideo/configs/models/dits/longcat.py `param_names_mapping`,
# fastvideo/models/dits/longcat.py), as scripts/checkpoint_conversion/longcat_to_fastvideo.py writes it (qkv split
# into to_q/to_k/to_v, kv_linear into to_k/to_v): FastVideo/LongCat-Video-T2V-Diffusers.
BLOCK_NAMES = {
    "adaLN_modulation.1": ("modulation.1", "adaln_linear_1"),
    "attn.q": ("self_attn.q", "self_attn.to_q"),
    "attn.k": ("self_attn.k", "self_attn.to_k"),
    "attn.v": ("self_attn.v", "self_attn.to_v"),
    "attn.q_norm": ("self_attn.norm_q", "self_attn.q_norm"),
    "attn.k_norm": ("self_attn.norm_k", "self_attn.k_norm"),
    "attn.proj": ("self_attn.o", "self_attn.to_out"),
    "pre_crs_attn_norm": ("norm3", "norm_cross"),
    "cross_attn.q_linear": ("cross_attn.q", "cross_attn.to_q"),
    "cross_attn.k": ("cross_attn.k", "cross_attn.to_k"),
    "cross_attn.v": ("cross_attn.v", "cross_attn.to_v"),
    "cross_attn.q_norm": ("cross_attn.norm_q", "cross_attn.q_norm"),
    "cross_attn.k_norm": ("cross_attn.norm_k", "cross_attn.k_norm"),
    "cross_attn.proj": ("cross_attn.o", "cross_attn.to_out"),
    "ffn.w1": ("ffn.w1", "ffn.w1"),
    "ffn.w2": ("ffn.w2", "ffn.w2"),
    "ffn.w3": ("ffn.w3", "ffn.w3"),
}
GLOBAL_NAMES = {
    "x_embedder.proj": ("patch_embedding", "patch_embed.proj"),
    "t_embedder.mlp.0": ("time_embedding.mlp.0", "time_embedder.linear_1"),
    "t_embedder.mlp.2": ("time_embedding.mlp.2", "time_embedder.linear_2"),
    "y_embedder.y_proj.0": ("text_embedding.0", "caption_embedder.linear_1"),
    "y_embedder.y_proj.2": ("text_embedding.2", "caption_embedder.linear_2"),
    "final_layer.adaLN_modulation.1": ("head.modulation.1", "final_layer.adaln_linear"),
    "final_layer.linear": ("head.head", "final_layer.proj"),
}


# The avatar modules in WanVideoWrapper / Kijai's layout: the blocks keep the reference names (its MultiTalk-style
# audio cross-attention is named like the reference's), the audio projection is `multitalk_audio_proj`. FastVideo
# has no avatar model; its column repeats the native names.
BLOCK_NAMES.update({n: (n, n) for n in AVATAR_BLOCK_LINEARS + AVATAR_BLOCK_OTHERS})
GLOBAL_NAMES.update({n: ("multitalk_" + n, n) for n in AVATAR_GLOBAL_LINEARS + AVATAR_GLOBAL_OTHERS})


def _column(column):
    return ({n: names[column] for n, names in BLOCK_NAMES.items()},
            {n: names[column] for n, names in GLOBAL_NAMES.items()})


WANVIDEO = Layout("wanvideo", "WanVideoWrapper / Kijai (Kijai/LongCat-Video_comfy)", *_column(0), splits_fused=True)
FASTVIDEO = Layout("fastvideo", "FastVideo / diffusers (FastVideo/LongCat-Video-T2V-Diffusers)", *_column(1),
                   splits_fused=True)
LAYOUTS = (NATIVE, WANVIDEO, FASTVIDEO)


def is_linear(native):
    """Whether a native module name (fused pieces included) is a Linear layer."""
    if native.startswith("blocks."):
        rest = native.split(".", 2)[2]
        return rest in BLOCK_LINEARS or rest in PIECE_OF
    return native in GLOBAL_LINEARS


def fused_of(native):
    """`blocks.3.attn.k` -> ("blocks.3.attn.qkv", 1, 3); any other name -> (name, None, 1)."""
    if native.startswith("blocks."):
        _, index, rest = native.split(".", 2)
        if rest in PIECE_OF:
            fused, j, count = PIECE_OF[rest]
            return f"blocks.{index}.{fused}", j, count
    return native, None, 1


def pieces_of(native):
    """`blocks.3.attn.qkv` -> the native names of its row pieces in order; () for an unfused module."""
    if native.startswith("blocks."):
        _, index, rest = native.split(".", 2)
        return tuple(f"blocks.{index}.{p}" for p in FUSED_PIECES.get(rest, ()))
    return ()
