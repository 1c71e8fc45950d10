"""The shipped workflows as files: what the frontend will draw (no overlaps, every node in one group, links left
to right, a first view that shows stage 1 readable on a 1600x1000 window), what it can offer for download (every
model file the graph names), and that the committed files are exactly what the builder writes."""
import json
import re
from itertools import combinations

import pytest

from conftest import PACK_ROOT
from longcat_pack.nodes.workflows.catalog import SHIPPED
from longcat_pack.nodes.workflows.files import api_file, dumps, thumbnail_file, ui_file
from longcat_pack.nodes.workflows.graph import api_format, ui_format
from longcat_pack.nodes.workflows.node_types import NODE_TYPES

WORKFLOWS = PACK_ROOT / "workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
TITLE_H = 30  # the frontend draws a node's title bar above its pos, and a group's title inside its top
BADGE_H = 24  # ... and a custom node's pack badge above the title
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".gguf")  # the frontend's model files
FOLDERS = {"LongCatDiTLoader": "diffusion_models", "LongCatLoraLoader": "loras", "CLIPLoader": "text_encoders",
           "VAELoader": "vae", "LongCatTextEmbeddingsLoader": "text_embeddings",
           "AudioEncoderLoader": "audio_encoders"}
# 1600x1000 minus what the frontend draws over the canvas: sidebar (left 60 px), tab bar and floating menus
# (top 95 px), minimap and toasts (right 270 px); readable = node text at 10 px or more.
FREE_AREA = (62, 95, 1335, 995)
READABLE_SCALE = 0.75


def workflow(path):
    return json.loads(path.read_text(encoding="utf-8"))


def name(node):
    return node.get("title") or node["type"]


def node_rect(node):
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_H - BADGE_H, x + w, y + h


def overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(inner, outer):
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_there_are_workflows():
    assert {p.name for p in UI_FILES} == {ui_file(build()).name for build in SHIPPED.values()}


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_no_two_nodes_overlap(path):
    nodes = workflow(path)["nodes"]
    clashes = [(name(a), name(b)) for a, b in combinations(nodes, 2) if overlap(node_rect(a), node_rect(b))]
    assert clashes == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_every_node_lies_inside_exactly_one_group(path):
    data = workflow(path)
    bodies = {g["title"]: (g["bounding"][0], g["bounding"][1] + TITLE_H, g["bounding"][0] + g["bounding"][2],
                           g["bounding"][1] + g["bounding"][3]) for g in data["groups"]}
    homes = {name(n): [t for t, body in bodies.items() if inside(node_rect(n), body)] for n in data["nodes"]}
    assert {n: h for n, h in homes.items() if len(h) != 1} == {}
    assert all(any(h == [t] for h in homes.values()) for t in bodies)  # no empty group


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_groups_are_stages_titled_for_what_they_do(path):
    """Each group says which stage it is and what it does; refined workflows have a 720p refinement stage."""
    titles = [g["title"] for g in workflow(path)["groups"]]
    assert all(re.match(r"(Stage \d|Long video|Refine|Continue|Save) · \S", t) for t in titles), titles
    assert re.match(r"(Stage 1|Continue) · ", titles[0]) and titles[-1].startswith("Save · ")
    refined = "720p" in path.stem
    assert refined == any(re.match(r"(Stage 2|Refine) · ", t) for t in titles)


NUMBER = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?")  # 93, 0.5, 720 in 720p; not the 2 of t2v


def numbers(text):
    return {float(n) for n in NUMBER.findall(text)}


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_no_title_or_file_name_repeats_a_widget_value(path):
    """Titles and save prefixes name a role, never a number a widget holds ("Continue 2 times", "9 frames",
    `_186f_`): such a label is wrong as soon as the user edits the widget. A node's title against its own widgets;
    group titles (past their stage number) and the save prefix against every widget of the workflow."""
    nodes = workflow(path)["nodes"]
    held = {n["id"]: {float(v) for v in n["widgets_values"] if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for n in nodes if n["type"] != "MarkdownNote"}
    everywhere = set().union(*held.values())
    assert {name(n): numbers(n.get("title", "")) & held[n["id"]] for n in nodes
            if n["id"] in held and numbers(n.get("title", "")) & held[n["id"]]} == {}
    groups = [g["title"] for g in workflow(path)["groups"]]
    assert [t for t in groups if numbers(re.sub(r"^Stage \d", "", t)) & everywhere] == []
    (save,) = [n for n in nodes if n["type"] == "SaveVideo"]
    assert not numbers(save["widgets_values"][0].replace("_", " ")) & everywhere, save["widgets_values"][0]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_links_run_left_to_right(path):
    data = workflow(path)
    nodes = {n["id"]: n for n in data["nodes"]}
    backwards = [(name(nodes[src]), name(nodes[dst])) for _, src, _, dst, _, _ in data["links"]
                 if nodes[dst]["pos"][0] < nodes[src]["pos"][0] + nodes[src]["size"][0]]
    assert backwards == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_every_model_file_has_a_download(path):
    """What the frontend's missing-model check looks at: combo values that are model files, matched by name
    to the workflow's `models` (and the node's own `properties.models`)."""
    data = workflow(path)
    entries = {m["name"]: m for m in data["models"]}
    named = [(n["type"], v) for n in data["nodes"] for v in n["widgets_values"]
             if isinstance(v, str) and v.lower().endswith(MODEL_SUFFIXES)]
    assert {"LongCatDiTLoader", "CLIPLoader", "VAELoader"} <= {t for t, _ in named} <= set(FOLDERS)
    for node_type, file in named:
        assert file in entries, f"{file} ({node_type}) has no download entry"
        assert entries[file]["directory"] == FOLDERS[node_type]
        assert entries[file]["url"].startswith("https://huggingface.co/") and entries[file]["url"].endswith(file)
    base_dit = "LongCat_TI2V_comfy_bf16.safetensors"  # every workflow but the unrefined avatar ones loads it
    assert (base_dit in entries) == (not path.stem.startswith("LongCat Avatar") or "refine" in path.stem)
    if base_dit in entries:
        assert entries[base_dit]["url"] == f"https://huggingface.co/Kijai/LongCat-Video_comfy/resolve/main/{base_dit}"
    for node in data["nodes"]:
        if node["type"] in FOLDERS:
            assert node["properties"]["models"] == [entries[v] for v in node["widgets_values"] if v in entries]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_first_view_shows_stage_one_readable(path):
    data = workflow(path)
    scale, (ox, oy) = data["extra"]["ds"]["scale"], data["extra"]["ds"]["offset"]
    x, y, w, h = data["groups"][0]["bounding"]
    on_screen = ((x + ox) * scale, (y + oy) * scale, (x + w + ox) * scale, (y + h + oy) * scale)
    assert scale >= READABLE_SCALE
    assert inside(on_screen, FREE_AREA), on_screen


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_the_note_says_what_to_download_and_how_to_change_it(path):
    data = workflow(path)
    (note,) = [n for n in data["nodes"] if n["type"] == "MarkdownNote"]
    text = note["widgets_values"][0]
    assert all(m["name"] in text and m["directory"] in text for m in data["models"])
    assert "multiples of 16" in text and "4k + 1" in text
    assert ("alpha/rank" in text) == any(n["type"] == "LongCatLoraLoader" for n in data["nodes"])


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_committed_files_are_what_the_builder_writes(name):
    built = SHIPPED[name]()
    assert ui_file(built).read_text(encoding="utf-8") == dumps(ui_format(built))
    assert api_file(name).read_text(encoding="utf-8") == dumps(api_format(built))
    image = pytest.importorskip("PIL.Image", reason="Pillow (one of ComfyUI's requirements) reads the thumbnail")
    with image.open(thumbnail_file(built)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (512, 512))


def test_nothing_else_in_the_template_folder():
    """ComfyUI lists every workflows/*.json as a template and shows <name>.jpg beside it."""
    expected = {ui_file(build()).name for build in SHIPPED.values()}
    expected |= {thumbnail_file(build()).name for build in SHIPPED.values()}
    assert {p.name for p in WORKFLOWS.iterdir() if p.is_file()} == expected
    assert {p.name for p in (WORKFLOWS / "api").iterdir()} == {f"{name}.json" for name in SHIPPED}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_api_twin_matches_ui_workflow(name):
    ui = workflow(ui_file(SHIPPED[name]()))
    api = json.loads(api_file(name).read_text())
    assert ui["version"] == 0.4
    real_nodes = [n for n in ui["nodes"] if n["type"] != "MarkdownNote"]
    assert {str(n["id"]): n["type"] for n in real_nodes} == {k: v["class_type"] for k, v in api.items()}
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        target = next(n for n in ui["nodes"] if n["id"] == dst)
        source = next(n for n in ui["nodes"] if n["id"] == src)
        assert link_id in source["outputs"][src_slot]["links"]
        assert target["inputs"][dst_slot]["link"] == link_id
        assert api[str(dst)]["inputs"][target["inputs"][dst_slot]["name"]] == [str(src), src_slot]


def test_node_types_match_the_server(comfy_server):
    """The builder's slot table against ComfyUI's own definitions: link inputs and their types, widgets in the
    frontend's order, outputs (newer versions may add widgets and outputs after ours: 0.33's SaveVideo passes
    its video on)."""
    for node_type, spec in NODE_TYPES.items():
        if spec.virtual:
            continue
        info = comfy_server.get(f"/object_info/{node_type}")[node_type]
        inputs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        assert all(inputs[n][0] == kind for n, kind in spec.inputs), node_type
        order = [n for n in info["input_order"].get("required", []) + info["input_order"].get("optional", [])
                 if n in spec.widget_names()]
        assert order == spec.widget_names(), node_type
        outputs = [list(o) for o in zip(info["output_name"], info["output"])]
        assert outputs[:len(spec.outputs)] == [list(o) for o in spec.outputs], node_type
