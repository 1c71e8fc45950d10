"""LongCat sizes and random LoRAs held in memory, for the tests and benchmarks that need a model's shapes without
its files."""
import torch

from .pack import register_pack

register_pack()
from longcat_pack.nodes.core.avatar.audio_features import WHISPER, WHISPER_GROUPS  # noqa: E402
from longcat_pack.nodes.core.avatar.audio_tokens import VAE_SCALE, WINDOW  # noqa: E402
from longcat_pack.nodes.core.lora_description import LoraDescription, LoraFactor  # noqa: E402

FULL_CONFIG = dict(hidden_size=4096, depth=48, num_heads=32, caption_channels=4096, adaln_tembed_dim=512,
                   ffn_hidden=11008)
# LongCat-Video-Avatar v1.5 (its published config): the base DiT, an audio cross-attention per block, and the audio
# projection of whisper-large-v3 features (audio_features: its layer groups x channels per window slot) to 32
# tokens of 768 per latent frame; audio_prenorm false (no pre_audio_crs_attn_norm weights)
WHISPER_FEATURE = (len(WHISPER_GROUPS), WHISPER.channels)  # one audio frame's features: [5, 1280]
FULL_AVATAR_CONFIG = dict(FULL_CONFIG, audio_window_dim=WINDOW * WHISPER_FEATURE[0] * WHISPER_FEATURE[1],
                          audio_window_vf_dim=(WINDOW + VAE_SCALE - 1) * WHISPER_FEATURE[0] * WHISPER_FEATURE[1],
                          audio_intermediate_dim=512, audio_dim=768, audio_context_tokens=32)
SMALL_CONFIG = dict(hidden_size=256, depth=2, num_heads=2, caption_channels=256, adaln_tembed_dim=64, ffn_hidden=768)  # the golden size
LATENT_480P = (24, 60, 104)  # 480x832, 93 frames -> 24 x 60 x 104 Wan latents
LATENT_720P = (48, 88, 160)  # the refinement: 704x1280, 192 frames -> 48 x 88 x 160
LATENT_480P_SMALL = (4, 16, 16)  # the CPU stand-in


def random_description(shapes, rank, seed, name):
    """An official-layout LoRA held in memory (fp32 factors, alpha/rank 0.5), as the reader would return it;
    `shapes` as demo_files.lora_target_shapes gives them ({module: (out, in, pieces)})."""
    gen = torch.Generator().manual_seed(seed)
    targets = {}
    for module, (out, inp, pieces) in shapes.items():
        down = torch.randn(pieces * rank, inp, generator=gen) * 0.02
        rows = out // pieces
        targets[module] = [LoraFactor(None if pieces == 1 else (j * rows, (j + 1) * rows),
                                      down[j * rank:(j + 1) * rank], torch.randn(rows, rank, generator=gen) * 0.02,
                                      0.5, pieces) for j in range(pieces)]
    ratios = {m: 0.5 for m in shapes}
    return LoraDescription(name, "longcat", targets, ratios, [rank], 0.5, {}, [])
