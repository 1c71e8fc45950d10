"""The pack's node list (importing the route module registers /longcat/lora_info)."""
from . import lora_info_route  # noqa: F401
from .dit_loader import LongCatDiTLoader
from .lora_node import LongCatLoraLoader
from .text_embeddings import LongCatTextEmbeddingsLoader

NODE_CLASS_MAPPINGS = {
    "LongCatDiTLoader": LongCatDiTLoader,
    "LongCatLoraLoader": LongCatLoraLoader,
    "LongCatTextEmbeddingsLoader": LongCatTextEmbeddingsLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LongCatDiTLoader": "Load LongCat DiT",
    "LongCatLoraLoader": "Apply LongCat LoRA",
    "LongCatTextEmbeddingsLoader": "Load LongCat Text Embeddings",
}
