"""Writes the shipped workflows from one description: the UI format (schema 0.4, for dragging onto the canvas and
the template browser) into workflows/, and its API-format twin (what POST /prompt takes, used by the tests and by
`python -m nodes.cli run`) into workflows/api/. Run after changing a workflow: python scripts/build_workflows.py
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "workflows"

# Slot layout of every node type used: (inputs [(name, type)], widget names in UI order, outputs [(name, type)]).
# A widget that a link feeds keeps its place in widgets_values.
TYPES = {
    "LongCatDiTLoader": ([], ["dit_name", "weight_dtype"], [("MODEL", "MODEL")]),
    "CLIPLoader": ([], ["clip_name", "type", "device"], [("CLIP", "CLIP")]),
    "CLIPTextEncode": ([("clip", "CLIP")], ["text"], [("CONDITIONING", "CONDITIONING")]),
    "VAELoader": ([], ["vae_name"], [("VAE", "VAE")]),
    "LongCatLoraLoader": ([("model", "MODEL")], ["lora_name", "strength", "mode"], [("MODEL", "MODEL")]),
    "EmptyHunyuanLatentVideo": ([], ["width", "height", "length", "batch_size"], [("LATENT", "LATENT")]),
    "LongCatSigmas": ([], ["stage", "steps", "t_thresh"], [("SIGMAS", "SIGMAS")]),
    "BasicGuider": ([("model", "MODEL"), ("conditioning", "CONDITIONING")], [], [("GUIDER", "GUIDER")]),
    "KSamplerSelect": ([], ["sampler_name"], [("SAMPLER", "SAMPLER")]),
    "RandomNoise": ([], ["noise_seed"], [("NOISE", "NOISE")]),
    "SamplerCustomAdvanced": ([("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"),
                               ("sigmas", "SIGMAS"), ("latent_image", "LATENT")], [],
                              [("output", "LATENT"), ("denoised_output", "LATENT")]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [], [("IMAGE", "IMAGE")]),
    "VAEEncode": ([("pixels", "IMAGE"), ("vae", "VAE")], [], [("LATENT", "LATENT")]),
    "LongCatRefineUpscale": ([("images", "IMAGE")], ["resolution", "spatial_only"],
                             [("images", "IMAGE"), ("keep_frames", "INT"), ("fps_factor", "FLOAT")]),
    "LongCatBlockSparseAttention": ([("model", "MODEL")], ["sparsity"], [("MODEL", "MODEL")]),
    "LongCatTrimFrames": ([("images", "IMAGE")], ["keep_frames"], [("IMAGE", "IMAGE")]),
    "CreateVideo": ([("images", "IMAGE")], ["fps"], [("VIDEO", "VIDEO")]),
    "SaveVideo": ([("video", "VIDEO")], ["filename_prefix", "format", "codec"], []),
}
SEEDED = {"RandomNoise"}  # the UI stores "control_after_generate" right after the seed

DIT = "LongCat-Video/dit/"
DISTILL_LORA = "cfg_step_lora.safetensors"
REFINE_LORA = "refinement_lora.safetensors"
TEXT_ENCODER = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
VAE = "wan_2.1_vae.safetensors"
PROMPT = ("A golden retriever runs across a sunlit meadow toward the camera, ears flapping, "
          "grass swaying in the wind, shallow depth of field, cinematic.")
MODELS = [
    {"name": DISTILL_LORA, "directory": "loras",
     "url": "https://huggingface.co/meituan-longcat/LongCat-Video/resolve/main/lora/cfg_step_lora.safetensors"},
    {"name": REFINE_LORA, "directory": "loras",
     "url": "https://huggingface.co/meituan-longcat/LongCat-Video/resolve/main/lora/refinement_lora.safetensors"},
    {"name": TEXT_ENCODER, "directory": "text_encoders",
     "url": "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/text_encoders/"
            "umt5_xxl_fp8_e4m3fn_scaled.safetensors"},
    {"name": VAE, "directory": "vae",
     "url": "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors"},
]


def stage_one(nodes):
    """Load LongCat DiT once -> distill LoRA -> 16 steps at 480x832, 93 frames -> decode."""
    nodes += [
        (1, "LongCatDiTLoader", [DIT, "default"], {}, (0, 0), "Load LongCat DiT (once)"),
        (2, "CLIPLoader", [TEXT_ENCODER, "wan", "default"], {}, (0, 180), None),
        (3, "CLIPTextEncode", [PROMPT], {"clip": (2, 0)}, (380, 180), "Prompt"),
        (4, "VAELoader", [VAE], {}, (0, 420), None),
        (5, "LongCatLoraLoader", [DISTILL_LORA, 0.5, "auto"], {"model": (1, 0)}, (380, 0), "Distill LoRA (16 steps)"),
        (6, "EmptyHunyuanLatentVideo", [832, 480, 93, 1], {}, (380, 420), "480p, 93 frames"),
        (7, "LongCatSigmas", ["distill", 0, 0.5], {}, (760, 420), None),
        (8, "BasicGuider", [], {"model": (5, 0), "conditioning": (3, 0)}, (760, 0), None),
        (9, "KSamplerSelect", ["euler"], {}, (760, 140), None),
        (10, "RandomNoise", [42], {}, (760, 260), None),
        (11, "SamplerCustomAdvanced", [], {"noise": (10, 0), "guider": (8, 0), "sampler": (9, 0),
                                            "sigmas": (7, 0), "latent_image": (6, 0)}, (1140, 0), "Stage 1: distill"),
        (12, "VAEDecode", [], {"samples": (11, 0), "vae": (4, 0)}, (1520, 0), None),
    ]


def distill_only():
    nodes = []
    stage_one(nodes)
    nodes += [
        (13, "CreateVideo", [15.0], {"images": (12, 0)}, (1520, 140), "15 fps"),
        (14, "SaveVideo", ["longcat/t2v_480p", "auto", "auto"], {"video": (13, 0)}, (1900, 0), None),
    ]
    return nodes


def distill_refine():
    nodes = []
    stage_one(nodes)
    nodes += [
        (13, "LongCatRefineUpscale", ["720p bucket", False], {"images": (12, 0)}, (1520, 140), None),
        (14, "VAEEncode", [], {"pixels": (13, 0), "vae": (4, 0)}, (1900, 140), None),
        (15, "LongCatLoraLoader", [REFINE_LORA, 0.5, "auto"], {"model": (1, 0)}, (1140, 420),
         "Refinement LoRA (same DiT)"),
        (16, "LongCatBlockSparseAttention", [0.9375], {"model": (15, 0)}, (1520, 420), None),
        (17, "LongCatSigmas", ["refine", 0, 0.5], {}, (1900, 420), "Refine from t = 0.5"),
        (18, "BasicGuider", [], {"model": (16, 0), "conditioning": (3, 0)}, (1900, 560), None),
        (19, "RandomNoise", [43], {}, (1900, 700), None),
        (20, "SamplerCustomAdvanced", [], {"noise": (19, 0), "guider": (18, 0), "sampler": (9, 0),
                                            "sigmas": (17, 0), "latent_image": (14, 0)}, (2280, 140),
         "Stage 2: 720p refinement"),
        (21, "VAEDecode", [], {"samples": (20, 0), "vae": (4, 0)}, (2660, 140), None),
        (22, "LongCatTrimFrames", [186], {"images": (21, 0), "keep_frames": (13, 1)}, (2660, 280), None),
        (23, "CreateVideo", [30.0], {"images": (22, 0)}, (3040, 140), "30 fps"),
        (24, "SaveVideo", ["longcat/t2v_720p", "auto", "auto"], {"video": (23, 0)}, (3040, 280), None),
    ]
    return nodes


def api_format(nodes):
    prompt = {}
    for node_id, node_type, widgets, links, _, title in nodes:
        _, widget_names, _ = TYPES[node_type]
        inputs = dict(zip(widget_names, widgets))
        inputs.update({name: [str(src), slot] for name, (src, slot) in links.items()})
        prompt[str(node_id)] = {"class_type": node_type, "inputs": inputs, "_meta": {"title": title or node_type}}
    return prompt


def ui_format(nodes):
    node_types = {n[0]: n[1] for n in nodes}
    links, out_links = [], {}
    for node_id, node_type, _, node_links, _, _ in nodes:
        for name, (src, slot) in node_links.items():
            kind = TYPES[node_types[src]][2][slot][1]  # a link carries its source slot's type
            link_id = len(links) + 1
            links.append([link_id, src, slot, node_id, name, kind])
            out_links.setdefault((src, slot), []).append(link_id)
    ui_nodes = []
    for order, (node_id, node_type, widgets, node_links, pos, title) in enumerate(nodes):
        inputs_spec, widget_names, outputs_spec = TYPES[node_type]
        inputs = []
        for name, kind in inputs_spec:
            inputs.append({"name": name, "type": kind, "link": _link_to(links, node_id, name)})
        for name in widget_names:
            if name in node_links:  # a widget fed by a link
                kind = next(link[5] for link in links if link[3] == node_id and link[4] == name)
                inputs.append({"name": name, "type": kind, "widget": {"name": name},
                               "link": _link_to(links, node_id, name)})
        outputs = [{"name": name, "type": kind, "links": out_links.get((node_id, slot), []), "slot_index": slot}
                   for slot, (name, kind) in enumerate(outputs_spec)]
        values = list(widgets)
        if node_type in SEEDED:
            values.insert(1, "fixed")
        node = {"id": node_id, "type": node_type, "pos": list(pos), "size": [340, 110], "flags": {}, "order": order,
                "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": node_type}, "widgets_values": values}
        if title:
            node["title"] = title
        ui_nodes.append(node)
    for link in links:  # UI links name target slots by index
        link[4] = next(i for i, inp in enumerate(ui_nodes[[n["id"] for n in ui_nodes].index(link[3])]["inputs"])
                       if inp["name"] == link[4])
    return {"last_node_id": max(n["id"] for n in ui_nodes), "last_link_id": len(links), "nodes": ui_nodes,
            "links": links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.6, "offset": [0, 0]}},
            "version": 0.4, "models": MODELS}


def _link_to(links, node_id, name):
    return next((link[0] for link in links if link[3] == node_id and link[4] == name), None)


def write(name, nodes):
    (ROOT / "api").mkdir(parents=True, exist_ok=True)
    (ROOT / f"{name}.json").write_text(json.dumps(ui_format(nodes), indent=1) + "\n")
    (ROOT / "api" / f"{name}.json").write_text(json.dumps(api_format(nodes), indent=1) + "\n")


if __name__ == "__main__":
    write("longcat_t2v_distill_refine", distill_refine())
    write("longcat_t2v_distill", distill_only())
