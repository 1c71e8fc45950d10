"""The pack's node list (importing the route module registers /longcat/lora_info)."""
from .loaders import lora_info_route  # noqa: F401
from .stages.avatar.audio_node import LongCatAvatarAudio
from .stages.bsa_node import LongCatBlockSparseAttention
from .stages.condition_nodes import LongCatExtendVideo, LongCatImageToVideo, LongCatLatentCondition, \
    LongCatRefineCondition
from .loaders.dit_loader import LongCatDiTLoader
from .stages.guidance_node import LongCatCFGZeroStar
from .stages.long_video_nodes import LongCatLongVideo, LongCatRefineLongVideo
from .loaders.lora_node import LongCatLoraLoader
from .stages.refine_nodes import LongCatRefineUpscale, LongCatTrimFrames
from .stages.sigmas_node import LongCatSigmas
from .loaders.text_embeddings import LongCatTextEmbeddingsLoader

NODE_CLASS_MAPPINGS = {
    "LongCatDiTLoader": LongCatDiTLoader,
    "LongCatLoraLoader": LongCatLoraLoader,
    "LongCatTextEmbeddingsLoader": LongCatTextEmbeddingsLoader,
    "LongCatSigmas": LongCatSigmas,
    "LongCatCFGZeroStar": LongCatCFGZeroStar,
    "LongCatRefineUpscale": LongCatRefineUpscale,
    "LongCatTrimFrames": LongCatTrimFrames,
    "LongCatBlockSparseAttention": LongCatBlockSparseAttention,
    "LongCatLatentCondition": LongCatLatentCondition,
    "LongCatImageToVideo": LongCatImageToVideo,
    "LongCatExtendVideo": LongCatExtendVideo,
    "LongCatRefineCondition": LongCatRefineCondition,
    "LongCatLongVideo": LongCatLongVideo,
    "LongCatRefineLongVideo": LongCatRefineLongVideo,
    "LongCatAvatarAudio": LongCatAvatarAudio,
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
    "LongCatLatentCondition": "LongCat Condition (latents)",
    "LongCatImageToVideo": "LongCat Image to Video",
    "LongCatExtendVideo": "LongCat Extend Video",
    "LongCatRefineCondition": "LongCat Refine Condition",
    "LongCatLongVideo": "LongCat Long Video (continue N times)",
    "LongCatRefineLongVideo": "LongCat Refine Long Video (segment by segment)",
    "LongCatAvatarAudio": "LongCat Avatar Audio",
}
