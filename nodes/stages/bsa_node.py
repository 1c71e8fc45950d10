"""LongCat Block-Sparse Attention: the refinement stage's self-attention (keeps 6.25% of 4x4x4 key tiles)."""
from ..core.block_sparse_attention import DEFAULT_SPARSITY
from ..model.comfy_model import BSA_OPTION


class LongCatBlockSparseAttention:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The LongCat model of the refinement stage."}),
            "sparsity": ("FLOAT", {"default": DEFAULT_SPARSITY, "min": 0.0, "max": 0.99, "step": 0.0001, "tooltip":
                         "Share of key tiles each query tile skips (0.9375: keeps 1/16, the reference). 0 = dense. "
                         "Grids not divisible into 4x4x4 tiles fall back to dense attention (logged)."}),
        }}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with block-sparse self-attention for this branch only.",)
    FUNCTION = "patch"
    CATEGORY = "LongCat"
    DESCRIPTION = "Enables LongCat's block-sparse self-attention (4x4x4 tiles, top-k per query tile) on this branch."

    def patch(self, model, sparsity):
        m = model.clone()
        m.model_options.setdefault("transformer_options", {})[BSA_OPTION] = {"sparsity": float(sparsity)}
        return (m,)
