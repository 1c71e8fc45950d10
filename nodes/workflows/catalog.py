"""The shipped workflows. Each is one function of a Setup (which files, which size): the real files at the
reference size make the shipped workflow, the demo set at a tiny size makes its demo twin. To add a workflow,
write its function (nodes, groups of columns, note) and list it in SHIPPED; scripts/build_workflows.py does the
rest (layout, both formats, the thumbnail). Nodes and groups are titled by their role, never by a value a widget
holds (a title saying "16 steps" would be wrong as soon as the user changes the steps), and so are the saved files."""
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
NEGATIVE = ("blurry, low quality, static, still picture, overexposed, washed-out colours, jpeg artefacts, "
            "deformed, distorted, subtitles, watermark")
# LoadImage / LoadVideo / LoadAudio: the frontend draws the picture below the widgets (a square image, a 16:9 clip),
# the audio player and its upload button
IMAGE_PREVIEW_HEIGHT, VIDEO_PREVIEW_HEIGHT, AUDIO_PLAYER_HEIGHT = 330, 300, 140
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
    output: str  # folder (and prefix) of the saved videos under ComfyUI's output
    demo: bool = False
    start_image: str = "example.png"  # image-to-video's start image, in ComfyUI's input folder (ComfyUI ships it)
    clip: str = "your_clip_to_continue.mp4"  # the clip the continuation workflow continues (the user uploads it)
    cond_frames: int = 13  # frames a continuation is conditioned on
    segments: int = 3  # continuations of the long-video workflow
    avatar: object = None  # the avatar workflows' files and inputs (workflows/avatar.py's AvatarSetup; None: real)

    def title(self, real, demo, task="T2V"):
        """The template browser shows about 32 characters of a title: the part that tells workflows apart first."""
        return f"LongCat demo (random weights), {task} {demo}".strip() if self.demo else f"LongCat {task}, {real}"

    def output_name(self, task):
        return self.output.replace("t2v", task)

    def stage(self, text):
        return f"{text} (demo set)" if self.demo else text

    def files(self):
        return {f.name: f for f in (self.dit, self.distill_lora, self.refine_lora, self.vae, self.text_encoder,
                                    self.embeddings) if f is not None}


REAL = Setup(DIT, DISTILL_LORA, REFINE_LORA, VAE, TEXT_ENCODER, None, width=832, height=480, frames=93,
             refine_resolution="720p bucket", output="longcat/t2v")


def prompt_nodes(setup, negative=False):
    """The prompt (and with `negative`, the negative prompt CFG-Zero* guides away from)."""
    if setup.text_encoder is None:
        nodes = [Node("prompt", "LongCatTextEmbeddingsLoader", {"embeddings_name": setup.embeddings.name},
                      title="Prompt (demo: random text embeddings)")]
        if negative:
            nodes.append(Node("negative", "LongCatTextEmbeddingsLoader", {"embeddings_name": setup.embeddings.name},
                              title="Negative prompt (demo: random)"))
        return nodes
    nodes = [Node("clip", "CLIPLoader", {"clip_name": setup.text_encoder.name}, title="Load umT5 text encoder"),
             Node("prompt", "CLIPTextEncode", {"text": PROMPT}, {"clip": "clip"}, title="Prompt", height=150)]
    if negative:
        nodes.append(Node("negative", "CLIPTextEncode", {"text": NEGATIVE}, {"clip": "clip"},
                          title="Negative prompt", height=110))
    return nodes


def stage_one(setup, base=False, image=False):
    """Models, prompt and stage 1; its group, whose first column holds `note`. Distill: 16 steps with the distill
    LoRA, no CFG. `base`: the base model's 50 steps with CFG-Zero* at guidance 4 and a negative prompt. `image`:
    image-to-video, the start image as the clip's first latent frame."""
    w, h, frames = setup.width, setup.height, setup.frames
    if base:
        model = [Node("cfg_zero", "LongCatCFGZeroStar", links={"model": "dit"}, title="CFG-Zero* (the reference's)")]
        guider = Node("guider", "CFGGuider", {"cfg": 4.0},
                      {"model": "cfg_zero", "positive": "prompt", "negative": "negative"},
                      title="Guider (base model, CFG)")
    else:
        model = [Node("distill_lora", "LongCatLoraLoader", {"lora_name": setup.distill_lora.name, "strength": 0.5},
                      {"model": "dit"}, title="Distill LoRA (no CFG)")]
        guider = Node("guider", "BasicGuider", links={"model": "distill_lora", "conditioning": "prompt"},
                      title="Guider (distill branch)")
    if image:  # the condition travels in the latent: the guider takes the prompt as it is
        latent = [Node("load_image", "LoadImage", {"image": setup.start_image}, title="Start image",
                       height=IMAGE_PREVIEW_HEIGHT),
                  Node("i2v", "LongCatImageToVideo", {"width": w, "height": h, "length": frames},
                       {"positive": "prompt", "negative": "prompt", "vae": "vae", "start_image": "load_image"},
                       title="Start image as the first frame")]
        columns = [["note", "dit", "clip", "vae"], ["distill_lora", "prompt", "load_image"],
                   ["i2v", "sigmas", "noise", "sampler", "guider"], ["stage_1"]]
    else:
        latent = [Node("latent", "EmptyHunyuanLatentVideo", {"width": w, "height": h, "length": frames},
                       title="Video size and length")]
        columns = [["note", "dit", "clip"], ["distill_lora", "cfg_zero", "prompt", "negative"],
                   ["latent", "sigmas", "noise", "sampler", "guider"], ["stage_1", "vae"]]
    nodes = [
        Node("dit", "LongCatDiTLoader", {"dit_name": setup.dit.name}, title="Load LongCat DiT (once)"),
        Node("vae", "VAELoader", {"vae_name": setup.vae.name}, title="Load Wan 2.1 VAE"),
        *prompt_nodes(setup, negative=base), *model, *latent,
        Node("sigmas", "LongCatSigmas", {"stage": "base" if base else "distill"},
             title="Base schedule" if base else "Distill schedule"),
        Node("noise", "RandomNoise", {"noise_seed": 42}, title="Noise (stage 1 seed)"),
        Node("sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler"),
        guider,
        Node("stage_1", "SamplerCustomAdvanced",
             links={"noise": "noise", "guider": "guider", "sampler": "sampler", "sigmas": "sigmas",
                    "latent_image": ("i2v", "latent") if image else "latent"}, title="Stage 1 sampling"),
    ]
    what = "base model, CFG-Zero*" if base else "distill LoRA, no CFG"
    start = "image to video" if image else "text to video"
    group = Group(setup.stage(f"Stage 1 · {start}: {what}"), columns, STAGE_1)
    return nodes, group


def save_nodes(setup, images, fps, task="t2v", stage=None):
    """CreateVideo at `fps` (a number, or a (node, output) link) and SaveVideo, named for what the video is (its
    task and stage: its size, length and rate are the widgets', and ComfyUI numbers the files)."""
    stage = stage or ("refined" if fps == 30 else "distill")
    name = f"{setup.output_name(task)}_{stage}"
    video = (Node("video", "CreateVideo", {"fps": float(fps)}, {"images": images}, title="Video (frame rate)")
             if isinstance(fps, int) else
             Node("video", "CreateVideo", links={"images": images, "fps": fps}, title="Video at the clip's fps"))
    return [video, Node("save", "SaveVideo", {"filename_prefix": name}, {"video": "video"}, title="Save MP4")]


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


def downloads(setup, loras=("distill", "refine")):
    return file_list([setup.dit, *(getattr(setup, f"{lora}_lora") for lora in loras), setup.text_encoder, setup.vae])


def file_list(files):
    return ("**Files**, in `ComfyUI/models/` (Missing Models offers each download):\n" +
            "\n".join(f"- {f.folder}/[{f.name}]({f.url})" for f in files))


STRENGTH = ("**Strength:** a LoRA slider starts at its file's alpha/rank (0.5 for both official files), the "
            "reference's strength; right-click the node, *Reset strength*, to get it back.")


def sizes(setup, refine):
    return ("**Other sizes:** width and height in multiples of 16, length 4k + 1 frames (93 = 4 x 23 + 1)" +
            ("; stage 2 picks its 720p size and doubles the frames itself." if refine else "."))


def condition_rule(setup):
    return (f"**Condition:** each continuation starts from the last {setup.cond_frames} frames of the clip before "
            "it (1 + 4k frames: they encode to whole latent frames) and adds the rest of its "
            f"{setup.frames} frames.")


def refine_stage(setup, stage_1, prompt, condition=None):
    """Stage 2: decode stage 1, upscale to 720p with 2x frames, encode, refine from t = 0.5 with the refinement LoRA
    on the same DiT and block-sparse attention, decode, trim. `condition`: the (node, output) of an image that
    conditions the refinement (image-to-video). Returns (nodes, group)."""
    refined = 2 * setup.frames
    condition_frames = 1 if condition else 0
    latent = "refine_condition" if condition else "encode"
    nodes = [
        Node("decode_1", "VAEDecode", links={"samples": stage_1, "vae": "vae"}, title="Decode stage-1 frames"),
        Node("upscale", "LongCatRefineUpscale", {"resolution": setup.refine_resolution,
                                                 "condition_frames": condition_frames}, {"images": "decode_1"},
             title=("Upscale for refinement" if setup.refine_resolution == "720p bucket"
                    else "Upscale for refinement (same size)")),
        Node("encode", "VAEEncode", links={"pixels": "upscale", "vae": "vae"}, title="Encode for refinement"),
        Node("refine_lora", "LongCatLoraLoader", {"lora_name": setup.refine_lora.name, "strength": 0.5},
             {"model": "dit"}, title="Refinement LoRA (same DiT)"),
        Node("bsa", "LongCatBlockSparseAttention", links={"model": "refine_lora"}, title="Block-sparse attention"),
        Node("refine_sigmas", "LongCatSigmas", {"stage": "refine"}, title="Refine schedule"),
        Node("refine_noise", "RandomNoise", {"noise_seed": 43}, title="Noise (stage 2 seed)"),
        Node("refine_sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler (stage 2)"),
        Node("refine_guider", "BasicGuider", links={"model": "bsa", "conditioning": prompt},
             title="Guider (refinement branch)"),
        Node("stage_2", "SamplerCustomAdvanced",
             links={"noise": "refine_noise", "guider": "refine_guider", "sampler": "refine_sampler",
                    "sigmas": "refine_sigmas", "latent_image": (latent, "latent") if condition else latent},
             title="Stage 2 sampling"),
        Node("decode_2", "VAEDecode", links={"samples": "stage_2", "vae": "vae"}, title="Decode refined frames"),
        Node("trim", "LongCatTrimFrames", {"keep_frames": refined},
             {"images": "decode_2", "keep_frames": ("upscale", "keep_frames"),
              "skip_frames": ("upscale", "skip_frames")}, title="Trim padding frames"),
    ]
    if condition:
        nodes.insert(3, Node("refine_condition", "LongCatRefineCondition", {"condition_frames": 1},
                             {"positive": prompt, "negative": prompt, "vae": "vae", "latent": "encode",
                              "condition": condition}, title="Start image conditions the refinement"))
    what = "conditioned on the start image, " if condition else ""
    group = Group(setup.stage(f"Stage 2 · refinement: {what}refinement LoRA, block-sparse attention"),
                  [["decode_1", "refine_lora"], ["upscale", "bsa"],
                   ["encode", "refine_sigmas", "refine_noise", "refine_sampler", "refine_guider"],
                   ["refine_condition"], ["stage_2"], ["decode_2"], ["trim"]], STAGE_2)
    return nodes, group


def t2v_distill_refine(setup=REAL):
    stage_nodes, stage_group = stage_one(setup)
    refine_nodes, refine_group = refine_stage(setup, "stage_1", "prompt")
    nodes = [
        note(setup, lambda: ["## 480p distill, then 720p refine",
                             downloads(setup), STRENGTH, sizes(setup, refine=True)]),
        *stage_nodes, *refine_nodes, *save_nodes(setup, "trim", 30),
    ]
    groups = [stage_group, refine_group, Group("Save · the refined video", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_t2v_distill_refine", setup.title("480p + 720p refine", "distill + refine"),
                    nodes, groups, setup.files(), headline="Text to video: 480p distill, then 720p refine")


def t2v_distill(setup=REAL):
    stage_nodes, stage_group = stage_one(setup)
    nodes = [
        note(setup, lambda: ["## 480p distill (for 720p: the distill + refine template)",
                             downloads(setup), STRENGTH, sizes(setup, refine=False)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode frames"),
        *save_nodes(setup, "decode_1", 15),
    ]
    groups = [stage_group,
              Group("Save · the video", [["decode_1"], ["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_t2v_distill", setup.title("480p distill", "distill"), nodes, groups, setup.files(),
                    headline="Text to video: the 480p distill stage")


def t2v_base_refine(setup=REAL):
    stage_nodes, stage_group = stage_one(setup, base=True)
    refine_nodes, refine_group = refine_stage(setup, "stage_1", "prompt")
    nodes = [
        note(setup, lambda: ["## 480p base (50 steps, CFG-Zero*), then 720p refine",
                             "The base model without the distill LoRA: slower (50 steps, two model calls each), "
                             "the reference's best quality.", downloads(setup, loras=("refine",)), STRENGTH,
                             sizes(setup, refine=True)]),
        *stage_nodes, *refine_nodes, *save_nodes(setup, "trim", 30, stage="base_refined"),
    ]
    groups = [stage_group, refine_group, Group("Save · the refined video", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_t2v_base_refine", setup.title("base + 720p refine", "base + refine"), nodes, groups,
                    setup.files(), headline="Text to video: 480p base with CFG-Zero*, then 720p refine")


def i2v_distill_refine(setup=REAL):
    stage_nodes, stage_group = stage_one(setup, image=True)
    refine_nodes, refine_group = refine_stage(setup, "stage_1", "prompt", condition=("i2v", "start_image"))
    nodes = [
        note(setup, lambda: ["## Image to video: 480p distill, then 720p refine",
                             "**Start image:** pick it in *Start image* (it is scaled to the video size, the centre "
                             "cropped). Both stages keep it as the first frame.",
                             downloads(setup), STRENGTH, sizes(setup, refine=True)]),
        *stage_nodes, *refine_nodes, *save_nodes(setup, "trim", 30, task="i2v"),
    ]
    groups = [stage_group, refine_group, Group("Save · the refined video", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_i2v_distill_refine", setup.title("480p + 720p refine", "distill + refine", "I2V"),
                    nodes, groups, setup.files(), headline="Image to video: 480p distill, then 720p refine")


def continuation_nodes(setup, guider, sampler, video, segments):
    """Continue `video` `segments` times with the base model's continuation schedule (enhance_hf, CFG-Zero*)."""
    return [
        Node("continue_sigmas", "LongCatSigmas", {"stage": "enhance_hf"}, title="Continuation schedule"),
        Node("long_video", "LongCatLongVideo", {"noise_seed": 44, "segments": segments,
                                                "num_cond_frames": setup.cond_frames, "length": setup.frames},
             {"guider": guider, "sampler": sampler, "sigmas": "continue_sigmas", "vae": "vae", "video": video},
             title="Continue the clip, segment after segment"),
    ]


def video_continue(setup=REAL):
    w, h = setup.width, setup.height
    nodes = [
        note(setup, lambda: ["## Continue your clip (480p, base model)",
                             "**Your clip:** upload it in *Your clip* (any size: it is scaled to "
                             f"{w} x {h}, the centre cropped). The continuation is conditioned on its last "
                             f"{setup.cond_frames} frames and adds {setup.frames - setup.cond_frames}; raise "
                             "*segments* for more.", downloads(setup, loras=()), condition_rule(setup),
                             sizes(setup, refine=False)]),
        Node("dit", "LongCatDiTLoader", {"dit_name": setup.dit.name}, title="Load LongCat DiT (once)"),
        Node("vae", "VAELoader", {"vae_name": setup.vae.name}, title="Load Wan 2.1 VAE"),
        *prompt_nodes(setup, negative=True),
        Node("cfg_zero", "LongCatCFGZeroStar", links={"model": "dit"}, title="CFG-Zero* (the reference's)"),
        Node("load_video", "LoadVideo", {"file": setup.clip}, title="Your clip", height=VIDEO_PREVIEW_HEIGHT),
        Node("components", "GetVideoComponents", links={"video": "load_video"}, title="Clip frames"),
        Node("scale", "ImageScale", {"upscale_method": "bilinear", "width": w, "height": h, "crop": "center"},
             {"image": ("components", "images")}, title="Scale to the video size"),
        Node("sampler", "KSamplerSelect", {"sampler_name": "euler"}, title="Sampler"),
        Node("guider", "CFGGuider", {"cfg": 4.0}, {"model": "cfg_zero", "positive": "prompt", "negative": "negative"},
             title="Guider (base model, CFG)"),
        *continuation_nodes(setup, "guider", "sampler", "scale", 1),
        *save_nodes(setup, "long_video", ("components", "fps"), task="continued", stage="base"),
    ]
    groups = [Group(setup.stage("Continue · base model: enhance_hf schedule, CFG-Zero*"),
                    [["note", "dit", "clip", "load_video"], ["cfg_zero", "prompt", "negative", "vae", "components"],
                     ["scale", "continue_sigmas", "sampler", "guider"], ["long_video"]], STAGE_1),
              Group("Save · your clip, then the new frames", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_video_continue", setup.title("480p", "", "video continuation"),
                    nodes, groups, setup.files(), headline="Video continuation: continue your clip")


def refine_long_nodes(setup, prompt):
    """Refine the long video segment by segment (2x frames) with the refinement LoRA on the same DiT and
    block-sparse attention, its guider prompted by `prompt`. Returns (nodes, group)."""
    nodes = [
        Node("refine_lora", "LongCatLoraLoader", {"lora_name": setup.refine_lora.name, "strength": 0.5},
             {"model": "dit"}, title="Refinement LoRA (same DiT)"),
        Node("bsa", "LongCatBlockSparseAttention", links={"model": "refine_lora"}, title="Block-sparse attention"),
        Node("refine_sigmas", "LongCatSigmas", {"stage": "refine"}, title="Refine schedule"),
        Node("refine_guider", "BasicGuider", links={"model": "bsa", "conditioning": prompt},
             title="Guider (refinement branch)"),
        Node("refine_long", "LongCatRefineLongVideo",
             {"noise_seed": 45, "segment_length": setup.frames, "num_cond_frames": setup.cond_frames,
              "resolution": setup.refine_resolution},
             {"guider": "refine_guider", "sampler": "sampler", "sigmas": "refine_sigmas", "vae": "vae",
              "video": "long_video"}, title="Refine segment by segment (2x frames)"),
    ]
    group = Group(setup.stage("Refine · segment by segment: refinement LoRA, block-sparse attention"),
                  [["refine_lora", "refine_sigmas"], ["bsa", "refine_prompt"], ["refine_guider"], ["refine_long"]],
                  STAGE_2)
    return nodes, group


def long_video(setup=REAL):
    stage_nodes, stage_group = stage_one(setup, base=True)
    refine_nodes, refine_group = refine_long_nodes(setup, "prompt")
    segments, new = setup.segments, setup.frames - setup.cond_frames
    stage_1_frames = setup.frames + segments * new
    refined = 2 * stage_1_frames
    nodes = [
        note(setup, lambda: ["## Long video: text to video, continued, refined to 720p",
                             f"{setup.frames} frames, then *segments* continuations of {new} new frames each "
                             f"({stage_1_frames} frames = {stage_1_frames / 15:.0f} s with {segments}); then "
                             f"refined segment by segment to 720p at 30 fps ({refined} frames). Each continuation "
                             f"adds {new / 15:.1f} s.", downloads(setup, loras=("refine",)), STRENGTH,
                             condition_rule(setup), sizes(setup, refine=True)]),
        *stage_nodes,
        Node("decode_1", "VAEDecode", links={"samples": "stage_1", "vae": "vae"}, title="Decode the first segment"),
        *continuation_nodes(setup, "guider", "sampler", "decode_1", segments),
        *refine_nodes,
        *save_nodes(setup, "refine_long", 30, task="long_video", stage="refined"),
    ]
    groups = [stage_group,
              Group(setup.stage("Long video · continuations: enhance_hf schedule, CFG-Zero*"),
                    [["decode_1", "continue_sigmas"], ["long_video"]], STAGE_1),
              refine_group,
              Group("Save · the refined video", [["video"], ["save"]], OUTPUT)]
    return Workflow("longcat_long_video", setup.title("continued + 720p refine", "continued + refine", "long video"),
                    nodes, groups, setup.files(), headline="Long video: text to video, continued, refined")


from .avatar import AVATAR_WORKFLOWS  # noqa: E402  (so do the avatar workflows)
from .story import story  # noqa: E402  (a story builds on the pieces above)

SHIPPED = {"longcat_t2v_distill_refine": t2v_distill_refine, "longcat_t2v_distill": t2v_distill,
           "longcat_t2v_base_refine": t2v_base_refine, "longcat_i2v_distill_refine": i2v_distill_refine,
           "longcat_video_continue": video_continue, "longcat_long_video": long_video, "longcat_story": story,
           **AVATAR_WORKFLOWS}
MAIN = "longcat_t2v_distill_refine"  # the main job: what `run` runs and `run --ui` opens first
