"""The shipped workflows end to end in a real ComfyUI server, on the demo set (tiny random checkpoints of every
component in their real key layouts: DiT, both LoRA kinds, a Wan 2.1 VAE, text embeddings from a file)."""
import json
import threading

import av
import pytest

from longcat_pack.nodes.demo_set import write_demo_set
from longcat_pack.nodes.workflow_runner import WORKFLOWS, demo_prompt, load_api_workflow, saved_files


@pytest.fixture(scope="module")
def demo_names(comfy_server, comfyui_root):
    return write_demo_set(comfy_server.base / "models", comfyui_root)


def with_seed_offset(prompt, offset):
    """Other seeds: ComfyUI's cache would otherwise reuse stage 1 from an earlier test."""
    for node in prompt.values():
        if node["class_type"] == "RandomNoise":
            node["inputs"]["noise_seed"] += offset
    return prompt


def video_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        return len(frames), float(stream.average_rate), frames[0].width, frames[0].height


@pytest.mark.parametrize("name,frames,fps", [("longcat_t2v_distill", 9, 15.0),
                                             ("longcat_t2v_distill_refine", 18, 30.0)])
def test_workflow_runs_and_saves_the_video(comfy_server, demo_names, name, frames, fps):
    events, history = comfy_server.run(with_seed_offset(demo_prompt(load_api_workflow(name), demo_names), frames))
    assert history["status"]["status_str"] == "success", [e for e in events if e["type"] == "execution_error"]
    files = saved_files(comfy_server, history)
    assert len(files) == 1 and files[0].suffix == ".mp4"
    assert video_facts(files[0]) == (frames, fps, 64, 64)
    steps = [e["data"]["max"] for e in events if e["type"] == "progress"]
    assert 16 in steps and (5 in steps) == ("refine" in name)  # 16 distill steps, 5 refinement calls


def test_workflow_can_be_interrupted(comfy_server, demo_names):
    interrupted = threading.Event()

    def interrupt_on_first_step(event):
        if event["type"] == "progress" and not interrupted.is_set():
            interrupted.set()
            comfy_server.post("/interrupt", {})

    prompt = with_seed_offset(demo_prompt(load_api_workflow("longcat_t2v_distill_refine"), demo_names), 1000)
    events, _ = comfy_server.run(prompt, on_message=interrupt_on_first_step)
    assert events[-1]["type"] == "execution_interrupted", events[-1]
    assert comfy_server.alive()


@pytest.mark.parametrize("name", ["longcat_t2v_distill", "longcat_t2v_distill_refine"])
def test_api_twin_matches_ui_workflow(name):
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = load_api_workflow(name)
    assert ui["version"] == 0.4
    assert {str(n["id"]): n["type"] for n in ui["nodes"]} == {k: v["class_type"] for k, v in api.items()}
    assert {m["name"] for m in ui["models"]} >= {"wan_2.1_vae.safetensors", "cfg_step_lora.safetensors"}
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        target = next(n for n in ui["nodes"] if n["id"] == dst)
        source = next(n for n in ui["nodes"] if n["id"] == src)
        assert link_id in source["outputs"][src_slot]["links"]
        assert target["inputs"][dst_slot]["link"] == link_id
        assert api[str(dst)]["inputs"][target["inputs"][dst_slot]["name"]] == [str(src), src_slot]
