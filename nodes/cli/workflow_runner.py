"""Runs a shipped workflow headless through ComfyUI: on the installed LongCat files when they are all there, else
on the demo set (tiny random stand-ins, clearly labelled), printing progress and where the video was saved."""
import copy
import json
from pathlib import Path

from .demo_set import write_demo_set
from .headless import PACK_ROOT, ComfyServer

WORKFLOWS = PACK_ROOT / "workflows"
DEMO_DIR = PACK_ROOT / "demo"
DEMO_SIZE = dict(width=64, height=64, length=9)  # 9 frames -> 18 after doubling -> 32 padded -> 8 latents
MODEL_INPUTS = {  # node type -> the input that names a model file (its options list the installed files)
    "LongCatDiTLoader": "dit_name", "LongCatLoraLoader": "lora_name", "VAELoader": "vae_name",
    "CLIPLoader": "clip_name",
}


def load_api_workflow(name):
    path = WORKFLOWS / "api" / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json")))
        raise FileNotFoundError(f"no workflow '{name}' (shipped: {known})")
    return json.loads(path.read_text())


def missing_models(server, prompt):
    """[(node type, file name)] the workflow names but ComfyUI's model folders do not hold."""
    missing = []
    for node in prompt.values():
        field = MODEL_INPUTS.get(node["class_type"])
        if field:
            spec = server.get(f"/object_info/{node['class_type']}")[node["class_type"]]
            options = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}[field][0]
            if node["inputs"][field] not in options:
                missing.append((node["class_type"], node["inputs"][field]))
    return missing


def demo_prompt(prompt, names):
    """The same graph on the demo set: demo files, precomputed random text embeddings instead of the umT5 encoder,
    a tiny latent, refinement at the input size."""
    prompt = copy.deepcopy(prompt)
    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "LongCatDiTLoader":
            inputs["dit_name"] = names["dit"]
        elif kind == "LongCatLoraLoader":
            inputs["lora_name"] = names["refine_lora" if "refine" in inputs["lora_name"] else "distill_lora"]
        elif kind == "VAELoader":
            inputs["vae_name"] = names["vae"]
        elif kind == "CLIPTextEncode":
            prompt[node_id] = {"class_type": "LongCatTextEmbeddingsLoader",
                               "inputs": {"embeddings_name": names["prompt"]}, "_meta": {"title": "demo prompt"}}
        elif kind == "CLIPLoader":
            del prompt[node_id]
        elif kind == "EmptyHunyuanLatentVideo":
            inputs.update(DEMO_SIZE)
        elif kind == "LongCatRefineUpscale":
            inputs["resolution"] = "same as input"
        elif kind == "SaveVideo":
            inputs["filename_prefix"] = inputs["filename_prefix"].replace("longcat/", "longcat/DEMO_RANDOM_")
    return prompt


def with_prompt_text(prompt, text, seed):
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        if node["class_type"] == "CLIPTextEncode" and text:
            node["inputs"]["text"] = text
        if node["class_type"] == "RandomNoise" and seed is not None:
            node["inputs"]["noise_seed"] += seed
    return prompt


def saved_files(server, history):
    files = []
    for output in history.get("outputs", {}).values():
        for item in output.get("images", []) + output.get("videos", []) + output.get("gifs", []):
            files.append(server.base / "output" / item.get("subfolder", "") / item["filename"])
    return files


def print_progress(event):
    data = event.get("data", {})
    if event["type"] == "executing" and data.get("node"):
        print(f"  running node {data['node']}", flush=True)
    elif event["type"] == "progress":
        print(f"    step {data['value']}/{data['max']}", flush=True)
    elif event["type"] == "execution_error":
        print(f"  error in {data.get('node_type')}: {data.get('exception_message')}", flush=True)


def run_workflow(comfy_root, name, demo=False, text=None, seed=None, base_dir=None):
    """Start ComfyUI, run the workflow, stop ComfyUI. Returns (status string, saved file paths, server log path)."""
    base = Path(base_dir or DEMO_DIR / "run")
    server = ComfyServer(comfy_root, base, extra_model_dirs={})
    print(f"starting ComfyUI from {comfy_root} (log: {server.log_path})", flush=True)
    server.start()
    try:
        prompt = with_prompt_text(load_api_workflow(name), text, seed)
        missing = missing_models(server, prompt)
        if missing and not demo:
            print("LongCat model files not installed: " + ", ".join(f"{n} ({t})" for t, n in missing))
        if missing or demo:
            print(f"running '{name}' on the DEMO SET: tiny random weights, the video is noise "
                  "(it shows the pipeline runs, not what LongCat-Video makes)", flush=True)
            names = write_demo_set(server.base / "models", comfy_root)
            prompt = demo_prompt(prompt, names)
        else:
            print(f"running '{name}' on the installed LongCat files", flush=True)
        _, history = server.run(prompt, timeout=24 * 3600, on_message=print_progress)
        status = history.get("status", {}).get("status_str", "no result")
        return status, saved_files(server, history), server.log_path
    finally:
        server.stop()
