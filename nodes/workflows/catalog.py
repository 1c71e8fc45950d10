"""The shipped workflows. Each is one function of a Setup (which files, which size): the real files at the
reference size make the shipped workflow, the demo set at a tiny size makes its demo twin. To add a workflow,
write its function (nodes, groups of columns, note) and list it in SHIPPED; scripts/build_workflows.py does the
rest (layout, both formats, the thumbnail)."""
from dataclasses import dataclass

from .graph import Group, ModelFile, Node, Workflow

HF = "https://huggingface.co"
DIT = ModelFile("LongCat_TI2V_comfy_bf16.safetensors", "diffusion_models",
                f"{HF}/Kijai/LongCat-Video_comfy/resolve/main/LongCat_TI2V_comfy_bf16.safetensors")
DISTILL_LORA = ModelFile("cfg_step_lora.safetensors", "loras",
                         f"{HF}/meituan-longcat/LongCat-Video/resolve/main/lora/cfg_step_lora.safetensors")
REFINE_LORA = ModelFile("refinement_lora.safetensors", "loras",
                        f"{HF}/meituan-longcat/LongCat-Video/resolve/main/lora/refinement_lora.safetensors")
TEXT_ENCODER = ModelFile("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
                         f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/text_encoders/"
                         "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
VAE = ModelFile("wan_2.1_vae.safetensors", "vae",
                f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors")
PROMPT = ("A golden retriever runs across a sunlit meadow toward the camera, ears flapping, "
          "grass swaying in the wind, shallow depth of field, cinematic.")
STAGE_1, STAGE_2, OUTPUT = "#3f789e", "#8A8", "#b58b2a"  # LiteGraph's pale blue, green and yellow group colours


@dataclass(frozen=True)
class Setup:
    """What a workflow runs on."""
    dit: ModelFile
    distill_lora: ModelFile
    refine_lora: ModelFile
    vae: ModelFile
    text_encoder: ModelFile  # umT5 for CLIPTextEncode, or None: the prompt comes from `embeddings`
    embeddings: ModelFile
    width: int
    height: int
    frames: int
    refine_resolution: str  # LongCat Refine Upscale's resolution
    size_name: str  # what titles and file names call the stage-1 size
    refined_name: str  # ... and the refined size
    output: str  # folder (and prefix) of the saved videos under ComfyUI's output
    demo: bool = False

    def title(self, real, demo):
        """The template browser shows about 32 characters of a title: the part that tells workflows apart first."""
        return f"LongCat demo (random weights), T2V {demo}" if self.demo else f"LongCat T2V, {real}"

    def stage(self, text):
        return f"{text} (demo set)" if self.demo else text

    def files(self):
        return {f.name: f for f in (self.dit, self.distill_lora, self.refine_lora, self.vae, self.text_encoder,
                                    self.embeddings) if f is not None}


REAL = Setup(DIT, DISTILL_LORA, REFINE_LORA, VAE, TEXT_ENCODER, None, width=832, height=480, frames=93,
             refine_resolution="720p bucket", size_name="480p", refined_name="720p", output="longcat/t2v")


def prompt_nodes(setup):
    if setup.text_encoder is None:
        return [Node("prompt", "LongCatTextEmbeddingsLoader", {"embeddings_name": setup.embeddings.name},
                     title="Prompt (demo: random text embeddings)")]
    return [Node("clip", "CLIPLoader", {"clip_name": setup.text_encoder.name}, title="Load umT5 text encoder"),
            Node("prompt", "CLIPTextEncode", {"text": PROMPT}, {"clip": "clip"}, title="Prompt", height=150)]


def stage_one(setup):
    """Models, prompt and the 16-step distill stage; its group, whose first column holds `note`."""
    w, h, frames = setup.width, setup.height, setup.frames
    nodes = [
        Node("dit", "LongCatDiTLoader", {"dit_name": setup.dit.name}, title="Load LongCat DiT (once)"),
        Node("vae", "VAELoader", {"vae_name": setup.vae.name}, title="Load Wan 2.1 VAE"),
        *prompt_nodes(setup),
        Node("distill_lora", "LongCatLoraLoader", {"lora_name": setup.distill_lora.name, "strength": 0.5},
             {"model": "dit"}, title="Distill LoRA (16 steps, no CFG)"),
        Node("latent", "EmptyHunyuanLatentVideo", {"width": w, "height": h, "length": frames},
             title=f"Video size: {w} x {h}, {frames} frames"),
        Node("sigmas", "LongCatSigmas", {"stage": "distill"}, title="Distill schedule (16 steps)"),
        Node("noise", "RandomNoise", {"noise_seed": 42}, title="Noise (stage 1 seed)"),
        Node("sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler: euler"),
        Node("guider", "BasicGuider", links={"model": "distill_lora", "conditioning": "prompt"},
             title="Guider (distill branch)"),
        Node("stage_1", "SamplerCustomAdvanced", links={"noise": "noise", "guider": "guider", "sampler": "sampler",
                                                        "sigmas": "sigmas", "latent_image": "latent"},
             title="Stage 1 sampling"),
    ]
    title = setup.stage(f"Stage 1 · {setup.size_name} distill: 16 steps, distill LoRA, no CFG")
    group = Group(title, [["note", "dit", "clip"], ["distill_lora", "prompt"],
                          ["latent", "sigmas", "noise", "sampler", "guider"], ["stage_1", "vae"]], STAGE_1)
    return nodes, group


def save_nodes(setup, images, frames, fps):
    refined = fps == 30
    name = (f"{setup.output}_{'refined' if refined else 'distill'}_"
            f"{setup.refined_name if refined else setup.size_name}_{frames}f_{fps}fps")
    return [Node("video", "CreateVideo", {"fps": float(fps)}, {"images": images}, title=f"Video at {fps} fps"),
            Node("save", "SaveVideo", {"filename_prefix": name}, {"video": "video"}, title="Save MP4")]


def note(setup, lines):
    """The workflow's MarkdownNote: `lines()` for the real files, a warning for the demo set."""
    if not setup.demo:
        lines = lines()
    else:
        lines = ["## Demo set: random weights",
                 "Every model file of this workflow is **random noise** from the pack's demo set "
                 "(`python -m nodes.cli`): the video shows that the pipeline runs, not what LongCat-Video makes. "
                 "Queue it as it is.",
                 "For real videos open the pack's template of the same name and download the files it lists."]
    return Node("note", "MarkdownNote", {"text": "\n\n".join(lines)}, title="Read me")


def downloads(setup):
    files = [setup.dit, setup.distill_lora, setup.refine_lora, setup.text_encoder, setup.vae]
    return ("**Files**, in `ComfyUI/models/` (Missing Models offers each download):\n" +
            "\n".join(f"- {f.folder}/[{f.name}]({f.url})" for f in files))


STRENGTH = ("**Strength:** a LoRA slider starts at its file's alpha/rank (0.5 for both official files), the "
            "reference's strength; right-click the node, *Reset strength*, to get it back.")


def sizes(setup, refine):
    return ("**Other sizes:** width and height in multiples of 16, length 4k + 1 frames (93 = 4 x 23 + 1)" +
            ("; stage 2 picks its 720p size and doubles the frames itself." if refine else "."))


def t2v_distill_refine(setup=REAL):
    stage_nodes, stage_group = stage_one(setup)
    refined = 2 * setup.frames
    nodes = [
        note(setup, lambda: ["## 480p distill, then 720p refine",
                             downloads(setup), STRENGTH, sizes(setup, refine=True)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode stage-1 frames"),
        Node("upscale", "LongCatRefineUpscale", {"resolution": setup.refine_resolution}, {"images": "decode_1"},
             title=("Upscale to 720p, 2x frames" if setup.refine_resolution == "720p bucket"
                    else "Refine at the same size, 2x frames")),
        Node("encode", "VAEEncode", links={"pixels": "upscale", "vae": "vae"}, title="Encode for refinement"),
        Node("refine_lora", "LongCatLoraLoader", {"lora_name": setup.refine_lora.name, "strength": 0.5},
             {"model": "dit"}, title="Refinement LoRA (same DiT)"),
        Node("bsa", "LongCatBlockSparseAttention", links={"model": "refine_lora"}, title="Block-sparse attention"),
        Node("refine_sigmas", "LongCatSigmas", {"stage": "refine"}, title="Refine schedule (from t = 0.5)"),
        Node("refine_noise", "RandomNoise", {"noise_seed": 43}, title="Noise (stage 2 seed)"),
        Node("refine_sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler: euler"),
        Node("refine_guider", "BasicGuider", links={"model": "bsa", "conditioning": "prompt"},
             title="Guider (refinement branch)"),
        Node("stage_2", "SamplerCustomAdvanced",
             links={"noise": "refine_noise", "guider": "refine_guider", "sampler": "refine_sampler",
                    "sigmas": "refine_sigmas", "latent_image": "encode"}, title="Stage 2 sampling"),
        Node("decode_2", "VAEDecode", links={"samples": "stage_2", "vae": "vae"}, title="Decode refined frames"),
        Node("trim", "LongCatTrimFrames", {"keep_frames": refined},
             {"images": "decode_2", "keep_frames": ("upscale", "keep_frames")}, title="Trim padding frames"),
        *save_nodes(setup, "trim", refined, 30),
    ]
    groups = [stage_group,
              Group(setup.stage(f"Stage 2 · {setup.refined_name} refinement: 2x frames, refinement LoRA, "
                                "from t = 0.5"),
                    [["decode_1", "refine_lora"], ["upscale", "bsa"],
                     ["encode", "refine_sigmas", "refine_noise", "refine_sampler", "refine_guider"], ["stage_2"],
                     ["decode_2"],
                     ["trim"]], STAGE_2),
              Group(f"Save · {refined} frames at 30 fps", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_t2v_distill_refine", setup.title("480p + 720p refine", "distill + refine"),
                    nodes, groups, setup.files(), headline="Text to video: 480p distill, then 720p refine")


def t2v_distill(setup=REAL):
    stage_nodes, stage_group = stage_one(setup)
    nodes = [
        note(setup, lambda: ["## 480p distill (for 720p: the distill + refine template)",
                             downloads(setup), STRENGTH, sizes(setup, refine=False)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode frames"),
        *save_nodes(setup, "decode_1", setup.frames, 15),
    ]
    groups = [stage_group,
              Group(f"Save · {setup.frames} frames at 15 fps", [["decode_1"], ["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_t2v_distill", setup.title("480p distill", "distill"), nodes, groups, setup.files(),
                    headline="Text to video: the 480p distill stage")


SHIPPED = {"longcat_t2v_distill_refine": t2v_distill_refine, "longcat_t2v_distill": t2v_distill}
