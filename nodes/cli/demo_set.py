"""The demo set: tiny random stand-ins for every model file of the shipped workflows, in their real key layouts,
so the workflows run end to end where the real LongCat files are not installed. All of it is random noise (and
says so in each file's metadata): it shows that the pipeline runs, not what LongCat-Video makes.

It lives in one folder outside the pack (LONGCAT_DEMO_DIR, `--demo-dir`, else ~/.cache/comfyui-longcat-video):
  models/<folder>/...            the files, written once
  extra_model_paths.yaml         points any ComfyUI at them (`python main.py --extra-model-paths-config ...`)
  user/default/workflows/*.json  the shipped workflows on the demo set, ready to queue (what the UI lists)
  templates/                     the same as the demo server's template browser lists them, with thumbnails
  run/                           headless runs: output/, ComfyUI's log
"""
import os
import subprocess
import sys
from pathlib import Path

from ..core.avatar.audio_demo import synthetic_speech, write_demo_audio_encoder, write_wav
from ..core.demo_files import NOISE_LABEL, TINY_AVATAR_DIT, TINY_DIT, lora_target_shapes, write_demo_dit, \
    write_demo_text_embeddings, write_official_lora
from ..workflows.catalog import Setup  # first: the catalog imports the avatar workflows at its end
from ..workflows.avatar import AvatarSetup  # noqa: I001
from ..workflows.files import thumbnail_file, write_ui
from ..workflows.graph import ModelFile

DEMO_FILES = {
    "dit": ("diffusion_models", "longcat_demo_dit_RANDOM.safetensors"),
    "distill_lora": ("loras", "longcat_demo_distill_lora_RANDOM.safetensors"),
    "refine_lora": ("loras", "longcat_demo_refinement_lora_RANDOM.safetensors"),
    "prompt": ("text_embeddings", "longcat_demo_prompt_RANDOM.safetensors"),
    "vae": ("vae", "longcat_demo_wan21_vae_16wide_RANDOM.safetensors"),  # a new name: older demo sets hold a 96-wide one
    "avatar_dit": ("diffusion_models", "longcat_demo_avatar_v10_dit_RANDOM.safetensors"),
    "audio_encoder": ("audio_encoders", "longcat_demo_wav2vec2_base_RANDOM.safetensors"),
}
LORA_ROLES = ("distill_lora", "refine_lora")
# What the image-to-video, continuation and avatar workflows read from ComfyUI's input folder (random noise too;
# the speech is a synthetic voice-like signal).
DEMO_INPUTS = {"start_image": "longcat_demo_start_image_RANDOM.png", "clip": "longcat_demo_clip_RANDOM.mp4",
               "speech": "longcat_demo_speech_SYNTHETIC.wav"}
DEMO_SPEECH_SECONDS = 3.2  # a synthetic voice-like signal (formant-weighted harmonics), not words
DEMO_CLIP = dict(frames=17, fps=15, width=112, height=64)  # 16:9-ish, as clips are: scaled to 64x64 centre-cropped
NOISE_TEXT = NOISE_LABEL["longcat_demo"]

# Written by ComfyUI's own Wan 2.1 VAE class in a ComfyUI process, so the layout is exactly what VAELoader
# detects. Random weights, bf16. Its width: the real VAE is 96 wide (250 MB, and on a CPU its decode and encode took
# most of a demo run: bench/bench_demo_vae.py); both tested ComfyUI versions read the width off the file
# (decoder.head.0.gamma), so the demo's is 16 wide: 36 times less work per pixel, 7 MB.
DEMO_VAE_DIM = 16
_VAE_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
out, dim, sys.argv = sys.argv[1], int(sys.argv[2]), [sys.argv[0], "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
from comfy.ldm.wan.vae import WanVAE
torch.manual_seed(0)
vae = WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
             temperal_downsample=[False, True, True], dropout=0.0)
with torch.no_grad():  # ComfyUI's layers skip their own init: without this the weights are whatever memory held
    for name, p in vae.named_parameters():
        if name.endswith("gamma"):
            p.fill_(1.0)
        elif p.dim() > 1:
            p.normal_(0, p[0].numel() ** -0.5)
        else:
            p.zero_()
save_file({k: v.to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}, out,
          metadata={"longcat_demo": "random noise for demos and tests, not a trained model"})
"""


def write_demo_vae(path, comfy_root, dim=DEMO_VAE_DIM):
    """A random Wan 2.1 VAE `dim` wide in ComfyUI's own layout (written by a process running ComfyUI's VAE class)."""
    subprocess.run([sys.executable, "-c", _VAE_SCRIPT, str(Path(path).resolve()), str(dim)], cwd=comfy_root,
                   check=True)
    return path


def demo_home(given=None):
    """The demo set's folder: `given`, else LONGCAT_DEMO_DIR, else the user's cache folder."""
    if given:
        return Path(given).expanduser().resolve()
    if os.environ.get("LONGCAT_DEMO_DIR"):
        return Path(os.environ["LONGCAT_DEMO_DIR"]).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser().resolve() / "comfyui-longcat-video"


def models_dir(home):
    return Path(home) / "models"


def demo_setup():
    """The shipped workflows' Setup on the demo set: its files, 64x64, 9 frames, refinement at the same size."""
    file = {role: ModelFile(name, folder, None) for role, (folder, name) in DEMO_FILES.items()}
    avatar = AvatarSetup(file["avatar_dit"], file["audio_encoder"], None, DEMO_INPUTS["speech"],
                         DEMO_INPUTS["speech"], fps=16, encoder="demo: random wav2vec2-base")
    return Setup(file["dit"], file["distill_lora"], file["refine_lora"], file["vae"], None, file["prompt"],
                 width=64, height=64, frames=9, refine_resolution="same as input",
                 output="longcat_demo/RANDOM_WEIGHTS_t2v", demo=True,
                 start_image=DEMO_INPUTS["start_image"], clip=DEMO_INPUTS["clip"], cond_frames=5, segments=2,
                 avatar=avatar)


def write_demo_set(home, comfy_root=None, roles=tuple(DEMO_FILES)):
    """Write the demo files of `roles` under home/models/<folder>/ (skipping those already there); the VAE is
    written by ComfyUI's own class, so it needs `comfy_root`. Returns {role: file name}."""
    root = models_dir(home).resolve()  # the VAE is written by a process that runs in the ComfyUI folder
    writers = {
        "dit": write_demo_dit,
        "distill_lora": lambda p: write_official_lora(p, lora_target_shapes(TINY_DIT), seed=1),
        "refine_lora": lambda p: write_official_lora(p, lora_target_shapes(TINY_DIT, refinement=True), seed=2),
        "prompt": write_demo_text_embeddings,
        "vae": lambda p: write_demo_vae(p, comfy_root),
        "avatar_dit": lambda p: write_demo_dit(p, TINY_AVATAR_DIT),
        "audio_encoder": write_demo_audio_encoder,
    }
    for role in roles:
        folder, name = DEMO_FILES[role]
        path = root / folder / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")  # an interrupted write never looks finished
            writers[role](partial)
            partial.replace(path)
    return {role: DEMO_FILES[role][1] for role in roles}


def write_demo_inputs(input_dir):
    """The start image, the clip to continue (random noise) and the speech in ComfyUI's input folder
    `input_dir`, where LoadImage, LoadVideo and LoadAudio find them."""
    write_noise_image(Path(input_dir) / DEMO_INPUTS["start_image"])
    write_noise_clip(Path(input_dir) / DEMO_INPUTS["clip"])
    write_demo_speech(Path(input_dir) / DEMO_INPUTS["speech"])
    return DEMO_INPUTS


def write_noise_image(path, size=DEMO_CLIP["height"]):
    """A PNG of random pixels, labelled as noise (Pillow comes with ComfyUI's requirements)."""
    import numpy as np
    from PIL import Image, PngImagePlugin
    if Path(path).exists():
        return path
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("longcat_demo", NOISE_TEXT)
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, pnginfo=info)
    return path


def write_noise_clip(path, frames=DEMO_CLIP["frames"], fps=DEMO_CLIP["fps"], width=DEMO_CLIP["width"],
                     height=DEMO_CLIP["height"]):
    """An H.264 MP4 of random frames, labelled as noise (PyAV comes with ComfyUI's requirements)."""
    import av
    import numpy as np
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("partial_" + path.name)  # an interrupted write never looks finished
    noise = np.random.default_rng(1)
    with av.open(str(partial), "w") as container:
        container.metadata["comment"] = NOISE_TEXT
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            frame = noise.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    partial.replace(path)
    return path


def write_demo_speech(path, seconds=DEMO_SPEECH_SECONDS):
    """The avatar workflows' speech: a synthetic voice-like WAV (16 kHz mono) that LoadAudio reads."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("partial_" + path.name)
        write_wav(partial, synthetic_speech(seconds))
        partial.replace(path)
    return path


def demo_folders():
    """The model folders the demo set fills (a ComfyUI serving the demo set must search each of them)."""
    return sorted({folder for folder, _ in DEMO_FILES.values()})


def model_paths_config(home):
    """An extra_model_paths.yaml that adds the demo folders to any ComfyUI."""
    path = Path(home) / "extra_model_paths.yaml"
    folders = demo_folders()
    path.write_text("# the LongCat-Video demo set (random weights): python main.py --extra-model-paths-config "
                    f"{path}\nlongcat_demo:\n    base_path: {models_dir(home)}\n" +
                    "".join(f"    {folder}: {folder}\n" for folder in folders))
    return path


def workflows_dir(home):
    return Path(home) / "user" / "default" / "workflows"


def write_demo_workflows(home, shipped):
    """The UI format of each shipped workflow on the demo set, where ComfyUI's Workflows panel lists them when
    its user folder is home/user; returns {name: path}."""
    return {name: write_ui(build(demo_setup()), workflows_dir(home)) for name, build in shipped.items()}


def write_demo_templates(home, shipped):
    """The demo workflows as a template folder (UI files and thumbnails named by their titles), which a demo server
    lists as the pack's templates; stale files of renamed workflows go. Returns the folder."""
    folder = Path(home) / "templates"
    written = set()
    for build in shipped.values():
        workflow = build(demo_setup())
        written.add(write_ui(workflow, folder))
        try:
            from ..workflows.thumbnail import draw_thumbnail  # Pillow: one of ComfyUI's requirements
        except ImportError:
            continue
        draw_thumbnail(workflow, thumbnail_file(workflow, folder))
        written.add(thumbnail_file(workflow, folder))
    for stale in set(folder.glob("*.json")) | set(folder.glob("*.jpg")):
        if stale not in written:
            stale.unlink()
    return folder
