"""The pack's node list (importing the route module registers /longcat/lora_info)."""
from .loaders import lora_info_route  # noqa: F401
from .stages.avatar.audio_node import LongCatAvatarAudio
from .stages.avatar.condition_node import LongCatAvatarCondition
from .stages.avatar.guider_node import LongCatAvatarGuider
from .stages.avatar.long_video_node import LongCatAvatarLongVideo
from .stages.bsa_node import LongCatBlockSparseAttention
from .stages.condition_nodes import LongCatExtendVideo, LongCatImageToVideo, LongCatLatentCondition, \
    LongCatRefineCondition
from .loaders.dit_loader import LongCatDiTLoader
from .stages.guidance_node import LongCatCFGZeroStar
from .stages.long_video_nodes import LongCatLongVideo, LongCatRefineLongVideo
from .stages.segment_prompts import LongCatSegmentPrompts
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
    "LongCatSegmentPrompts": LongCatSegmentPrompts,
    "LongCatAvatarCondition": LongCatAvatarCondition,
    "LongCatAvatarGuider": LongCatAvatarGuider,
    "LongCatAvatarLongVideo": LongCatAvatarLongVideo,
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
    "LongCatSegmentPrompts": "LongCat Segment Prompts (a prompt per segment)",
    "LongCatAvatarCondition": "LongCat Avatar Condition",
    "LongCatAvatarGuider": "LongCat Avatar Guider (text + audio CFG)",
    "LongCatAvatarLongVideo": "LongCat Avatar Long Video (until the speech ends)",
    "LongCatAvatarAudio": "LongCat Avatar Audio",
}
