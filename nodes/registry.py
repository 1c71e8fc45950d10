"""The pack's node list (importing the route module registers /longcat/lora_info)."""
from . import lora_info_route  # noqa: F401
from .bsa_node import LongCatBlockSparseAttention
from .dit_loader import LongCatDiTLoader
from .guidance_node import LongCatCFGZeroStar
from .lora_node import LongCatLoraLoader
from .refine_nodes import LongCatRefineUpscale, LongCatTrimFrames
from .sigmas_node import LongCatSigmas
from .text_embeddings import LongCatTextEmbeddingsLoader

NODE_CLASS_MAPPINGS = {
    "LongCatDiTLoader": LongCatDiTLoader,
    "LongCatLoraLoader": LongCatLoraLoader,
    "LongCatTextEmbeddingsLoader": LongCatTextEmbeddingsLoader,
    "LongCatSigmas": LongCatSigmas,
    "LongCatCFGZeroStar": LongCatCFGZeroStar,
    "LongCatRefineUpscale": LongCatRefineUpscale,
    "LongCatTrimFrames": LongCatTrimFrames,
    "LongCatBlockSparseAttention": LongCatBlockSparseAttention,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LongCatDiTLoader": "Load LongCat DiT",
    "LongCatLoraLoader": "Apply LongCat LoRA",
    "LongCatTextEmbeddingsLoader": "Load LongCat Text Embeddings",
    "LongCatSigmas": "LongCat Sigmas",
    "LongCatCFGZeroStar": "LongCat CFG-Zero*",
    "LongCatRefineUpscale": "LongCat Refine Upscale (720p, 2x frames)",
    "LongCatTrimFrames": "LongCat Trim Frames",
    "LongCatBlockSparseAttention": "LongCat Block-Sparse Attention",
}
