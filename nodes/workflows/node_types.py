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
    seeded: bool = False  # the frontend stores "control_after_generate" right after the seed widget (`*seed`)
    virtual: bool = False  # frontend-only (notes): not part of the API format
    newer_widgets: int = 0  # widgets that newer ComfyUI versions add (left at their defaults): room for them

    def widget_names(self):
        return [name for name, _ in self.widgets]

    def seed_slot(self):
        return next(i for i, name in enumerate(self.widget_names()) if name.endswith("seed"))

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
                                     widgets=(("resolution", "720p bucket"), ("spatial_only", False),
                                              ("condition_frames", 0)),
                                     outputs=(("images", "IMAGE"), ("keep_frames", "INT"), ("fps_factor", "FLOAT"),
                                              ("skip_frames", "INT"))),
    "LongCatBlockSparseAttention": NodeType(inputs=(("model", "MODEL"),), widgets=(("sparsity", 0.9375),),
                                            outputs=(("MODEL", "MODEL"),)),
    "LongCatTrimFrames": NodeType(inputs=(("images", "IMAGE"),), widgets=(("keep_frames", 186), ("skip_frames", 0)),
                                  outputs=(("IMAGE", "IMAGE"),)),
    "LongCatCFGZeroStar": NodeType(inputs=(("model", "MODEL"),), outputs=(("MODEL", "MODEL"),)),
    "LongCatImageToVideo": NodeType(inputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                            ("vae", "VAE"), ("start_image", "IMAGE")),
                                    widgets=(("width", 832), ("height", 480), ("length", 93)),
                                    outputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                             ("latent", "LATENT"), ("start_image", "IMAGE"))),
    "LongCatRefineCondition": NodeType(inputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                               ("vae", "VAE"), ("latent", "LATENT"), ("condition", "IMAGE")),
                                       widgets=(("condition_frames", 1),),
                                       outputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                                ("latent", "LATENT"))),
    "LongCatLongVideo": NodeType(inputs=(("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                                         ("vae", "VAE"), ("video", "IMAGE"), ("prompts", "LONGCAT_PROMPTS")),
                                 widgets=(("noise_seed", 0), ("segments", 3), ("num_cond_frames", 13),
                                          ("length", 93), ("condition_cache", "auto")),
                                 outputs=(("video", "IMAGE"),), seeded=True),
    "LongCatRefineLongVideo": NodeType(inputs=(("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                                               ("vae", "VAE"), ("video", "IMAGE")),
                                       widgets=(("noise_seed", 0), ("segment_length", 93), ("num_cond_frames", 13),
                                                ("resolution", "720p bucket"), ("spatial_only", False),
                                                ("condition_cache", "auto")),
                                       outputs=(("video", "IMAGE"),), seeded=True),
    "LongCatSegmentPrompts": NodeType(inputs=tuple((f"prompt_{i}", "CONDITIONING") for i in range(8)),
                                      outputs=(("prompts", "LONGCAT_PROMPTS"),)),
    "LongCatAvatarAudio": NodeType(inputs=(("audio_encoder", "AUDIO_ENCODER"), ("audio", "AUDIO")),
                                   outputs=(("avatar_audio", "LONGCAT_AUDIO"),)),
    "LongCatAvatarCondition": NodeType(inputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                               ("avatar_audio", "LONGCAT_AUDIO"), ("cond_latent", "LATENT"),
                                               ("ref_latent", "LATENT"), ("avatar_audio_2", "LONGCAT_AUDIO"),
                                               ("speaker_masks", "MASK")),
                                       widgets=(("width", 832), ("height", 480), ("length", 93),
                                                ("audio_start_frame", 0), ("ref_img_index", 10),
                                                ("mask_frame_range", 3), ("audio_mix", "para")),
                                       outputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                                ("latent", "LATENT"))),
    "LongCatAvatarGuider": NodeType(inputs=(("model", "MODEL"), ("positive", "CONDITIONING"),
                                            ("negative", "CONDITIONING")),
                                    widgets=(("text_cfg", 4.0), ("audio_cfg", 4.0)), outputs=(("GUIDER", "GUIDER"),)),
    "LongCatAvatarLongVideo": NodeType(inputs=(("model", "MODEL"), ("positive", "CONDITIONING"),
                                               ("negative", "CONDITIONING"), ("avatar_audio", "LONGCAT_AUDIO"),
                                               ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"), ("vae", "VAE"),
                                               ("video", "IMAGE")),
                                       widgets=(("text_cfg", 1.0), ("audio_cfg", 1.0), ("noise_seed", 0),
                                                ("segments", 0), ("num_cond_frames", 13), ("length", 93),
                                                ("ref_img_index", 10), ("mask_frame_range", 3)),
                                       outputs=(("video", "IMAGE"),), seeded=True),
    # ComfyUI's stock nodes
    "LoadAudio": NodeType(widgets=(("audio", ""),), outputs=(("AUDIO", "AUDIO"),)),
    "AudioMerge": NodeType(inputs=(("audio1", "AUDIO"), ("audio2", "AUDIO")), widgets=(("merge_method", "add"),),
                           outputs=(("AUDIO", "AUDIO"),)),
    "AudioEncoderLoader": NodeType(widgets=(("audio_encoder_name", ""),),
                                   outputs=(("AUDIO_ENCODER", "AUDIO_ENCODER"),),
                                   model_folder={"audio_encoder_name": "audio_encoders"}),
    "SolidMask": NodeType(widgets=(("value", 1.0), ("width", 512), ("height", 512)), outputs=(("MASK", "MASK"),)),
    "MaskComposite": NodeType(inputs=(("destination", "MASK"), ("source", "MASK")),
                              widgets=(("x", 0), ("y", 0), ("operation", "multiply")), outputs=(("MASK", "MASK"),)),
    "MaskToImage": NodeType(inputs=(("mask", "MASK"),), outputs=(("IMAGE", "IMAGE"),)),
    "ImageToMask": NodeType(inputs=(("image", "IMAGE"),), widgets=(("channel", "red"),), outputs=(("MASK", "MASK"),)),
    "ImageBatch": NodeType(inputs=(("image1", "IMAGE"), ("image2", "IMAGE")), outputs=(("IMAGE", "IMAGE"),)),
    "CLIPLoader": NodeType(widgets=(("clip_name", ""), ("type", "wan"), ("device", "default")),
                           outputs=(("CLIP", "CLIP"),), model_folder={"clip_name": "text_encoders"}),
    "CLIPTextEncode": NodeType(inputs=(("clip", "CLIP"),), widgets=(("text", ""),),
                               outputs=(("CONDITIONING", "CONDITIONING"),)),
    "VAELoader": NodeType(widgets=(("vae_name", ""),), outputs=(("VAE", "VAE"),), model_folder={"vae_name": "vae"}),
    "EmptyHunyuanLatentVideo": NodeType(widgets=(("width", 848), ("height", 480), ("length", 25), ("batch_size", 1)),
                                        outputs=(("LATENT", "LATENT"),)),
    "BasicGuider": NodeType(inputs=(("model", "MODEL"), ("conditioning", "CONDITIONING")),
                            outputs=(("GUIDER", "GUIDER"),)),
    "CFGGuider": NodeType(inputs=(("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING")),
                          widgets=(("cfg", 8.0),), outputs=(("GUIDER", "GUIDER"),)),
    "LoadImage": NodeType(widgets=(("image", "example.png"),), outputs=(("IMAGE", "IMAGE"), ("MASK", "MASK"))),
    "LoadVideo": NodeType(widgets=(("file", ""),), outputs=(("VIDEO", "VIDEO"),)),
    "GetVideoComponents": NodeType(inputs=(("video", "VIDEO"),),
                                   outputs=(("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT"))),
    "ImageScale": NodeType(inputs=(("image", "IMAGE"),),
                           widgets=(("upscale_method", "nearest-exact"), ("width", 512), ("height", 512),
                                    ("crop", "disabled")),
                           outputs=(("IMAGE", "IMAGE"),)),
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
