"""The slots of every node type the shipped workflows use, as ComfyUI defines them (a test compares this table
with a running server's /object_info). Widgets are listed in the order the frontend stores them in
`widgets_values`, each with the value a new node starts with."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeType:
    inputs: tuple = ()  # (name, type) of the link inputs, in slot order
    widgets: tuple = ()  # (name, default value), in widgets_values order
    outputs: tuple = ()  # (name, type), in slot order
    model_folder: dict = field(default_factory=dict)  # widget naming a model file -> its models/ folder
    seeded: bool = False  # the frontend stores "control_after_generate" right after the seed widget
    virtual: bool = False  # frontend-only (notes): not part of the API format
    newer_widgets: int = 0  # widgets that newer ComfyUI versions add (left at their defaults): room for them

    def widget_names(self):
        return [name for name, _ in self.widgets]

    def output_slot(self, name_or_slot):
        if isinstance(name_or_slot, int):
            return name_or_slot
        return [name for name, _ in self.outputs].index(name_or_slot)


NODE_TYPES = {
    # the pack's nodes
    "LongCatDiTLoader": NodeType(widgets=(("dit_name", ""), ("weight_dtype", "default")),
                                 outputs=(("MODEL", "MODEL"),), model_folder={"dit_name": "diffusion_models"}),
    "LongCatLoraLoader": NodeType(inputs=(("model", "MODEL"),),
                                  widgets=(("lora_name", ""), ("strength", 1.0), ("mode", "auto")),
                                  outputs=(("MODEL", "MODEL"),), model_folder={"lora_name": "loras"}),
    "LongCatTextEmbeddingsLoader": NodeType(widgets=(("embeddings_name", ""),),
                                            outputs=(("CONDITIONING", "CONDITIONING"),),
                                            model_folder={"embeddings_name": "text_embeddings"}),
    "LongCatSigmas": NodeType(widgets=(("stage", "distill"), ("steps", 0), ("t_thresh", 0.5)),
                              outputs=(("SIGMAS", "SIGMAS"),)),
    "LongCatRefineUpscale": NodeType(inputs=(("images", "IMAGE"),),
                                     widgets=(("resolution", "720p bucket"), ("spatial_only", False)),
                                     outputs=(("images", "IMAGE"), ("keep_frames", "INT"), ("fps_factor", "FLOAT"))),
    "LongCatBlockSparseAttention": NodeType(inputs=(("model", "MODEL"),), widgets=(("sparsity", 0.9375),),
                                            outputs=(("MODEL", "MODEL"),)),
    "LongCatTrimFrames": NodeType(inputs=(("images", "IMAGE"),), widgets=(("keep_frames", 186),),
                                  outputs=(("IMAGE", "IMAGE"),)),
    # ComfyUI's stock nodes
    "CLIPLoader": NodeType(widgets=(("clip_name", ""), ("type", "wan"), ("device", "default")),
                           outputs=(("CLIP", "CLIP"),), model_folder={"clip_name": "text_encoders"}),
    "CLIPTextEncode": NodeType(inputs=(("clip", "CLIP"),), widgets=(("text", ""),),
                               outputs=(("CONDITIONING", "CONDITIONING"),)),
    "VAELoader": NodeType(widgets=(("vae_name", ""),), outputs=(("VAE", "VAE"),), model_folder={"vae_name": "vae"}),
    "EmptyHunyuanLatentVideo": NodeType(widgets=(("width", 848), ("height", 480), ("length", 25), ("batch_size", 1)),
                                        outputs=(("LATENT", "LATENT"),)),
    "BasicGuider": NodeType(inputs=(("model", "MODEL"), ("conditioning", "CONDITIONING")),
                            outputs=(("GUIDER", "GUIDER"),)),
    "KSamplerSelect": NodeType(widgets=(("sampler_name", "euler"),), outputs=(("SAMPLER", "SAMPLER"),)),
    "RandomNoise": NodeType(widgets=(("noise_seed", 0),), outputs=(("NOISE", "NOISE"),), seeded=True),
    "SamplerCustomAdvanced": NodeType(inputs=(("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"),
                                              ("sigmas", "SIGMAS"), ("latent_image", "LATENT")),
                                      outputs=(("output", "LATENT"), ("denoised_output", "LATENT"))),
    "VAEDecode": NodeType(inputs=(("samples", "LATENT"), ("vae", "VAE")), outputs=(("IMAGE", "IMAGE"),)),
    "VAEEncode": NodeType(inputs=(("pixels", "IMAGE"), ("vae", "VAE")), outputs=(("LATENT", "LATENT"),)),
    "CreateVideo": NodeType(inputs=(("images", "IMAGE"), ("audio", "AUDIO")), widgets=(("fps", 30.0),),
                            outputs=(("VIDEO", "VIDEO"),), newer_widgets=1),  # 0.33 adds bit_depth
    "SaveVideo": NodeType(inputs=(("video", "VIDEO"),),
                          widgets=(("filename_prefix", "video/ComfyUI"), ("format", "auto"), ("codec", "auto"))),
    # the frontend's own note node
    "MarkdownNote": NodeType(widgets=(("text", ""),), virtual=True),
}
