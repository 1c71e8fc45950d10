"""Runs a shipped workflow headless through ComfyUI: on the installed LongCat files when they are all there, else
on the demo set (tiny random stand-ins, clearly labelled), printing each stage and node as it runs and where the
video was saved. With `serve_demo`, ComfyUI stays up with the demo set for the browser instead."""
import copy
import time

from ..workflows.catalog import MAIN, REAL, SHIPPED
from ..workflows.graph import api_format
from .demo_set import demo_folders, demo_setup, model_paths_config, models_dir, write_demo_inputs, write_demo_set, \
    write_demo_templates, write_demo_workflows
from .headless import ComfyServer, stopping_on_signals


def shipped_workflow(name, setup=REAL):
    if name not in SHIPPED:
        raise KeyError(f"no workflow '{name}' (shipped: {', '.join(sorted(SHIPPED))})")
    return SHIPPED[name](setup)


def missing_models(server, workflow):
    """[(node type, file name)] the workflow names but ComfyUI's model folders do not hold."""
    missing = []
    for node, widget, model in workflow.model_files():
        spec = server.get(f"/object_info/{node.type}")[node.type]
        options = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}[widget][0]
        if model.name not in options:
            missing.append((node.type, model.name))
    return missing


def with_prompt_text(prompt, text, seed):
    """`text` as the (first clip's) prompt: the CLIPTextEncode titled "Prompt" or "Prompt 0: ..."; negative,
    continuation and refinement prompts stay. `seed` is added to every RandomNoise seed."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        title = node.get("_meta", {}).get("title", "")
        if node["class_type"] == "CLIPTextEncode" and text and (title == "Prompt" or title.startswith("Prompt 0")):
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


def progress_printer(workflow, clock=time.monotonic):
    """Prints each node as it starts, under its stage's name, with the seconds the node before it took; the sampler
    steps with their rate; and what long nodes say they are doing (decoding, encoding: ComfyUI's progress text)."""
    ids = {str(i): key for key, i in workflow.ids().items()}
    state = {"stage": None, "node": None, "started": None, "step_at": None, "bar": None}

    def finish_node():
        if state["node"] is not None:
            print(f"    ({clock() - state['started']:.1f} s)", flush=True)

    def show(event):
        data = event.get("data", {})
        kind = event["type"]
        if kind == "executing" and data.get("node"):
            finish_node()
            key = ids.get(str(data["node"]))
            state.update(node=data["node"], started=clock(), step_at=None)
            if key is None:
                print(f"  node {data['node']}", flush=True)
                return
            group, node = workflow.group_of(key), workflow.node(key)
            if group.title != state["stage"]:
                state["stage"] = group.title
                print(group.title, flush=True)
            print(f"  {node.title or node.type}", flush=True)
        elif kind == "executing" or kind == "execution_success":
            finish_node()
            state["node"] = None
        elif kind == "progress":  # a new bar (another max, or counting again) starts its own rate
            now, bar = clock(), (data["max"], data["value"])
            same = state["step_at"] is not None and state["bar"][0] == bar[0] and state["bar"][1] < bar[1]
            rate = f" ({(now - state['step_at']) / (bar[1] - state['bar'][1]):.1f} s/step)" if same else ""
            state.update(step_at=now, bar=bar)
            print(f"    step {data['value']}/{data['max']}{rate}", flush=True)
        elif kind == "progress_text":
            print(f"    {data['text']}", flush=True)
        elif kind == "execution_error":
            key = ids.get(str(data.get("node_id")))
            where = workflow.node(key).title if key else data.get("node_type")
            print(f"  error in {where}: {data.get('exception_message')}", flush=True)
    return show


FIRST_VIEW = "LongCat.FirstView"  # user setting: the workflow js/longcat_first_view.js opens on the next page load


def demo_server(comfy_root, home, port=None, log_name="comfyui_run.log", settings=None):
    """A ComfyServer whose model folders include the demo set's, with the demo set's user folder (its Workflows
    panel lists the demo workflows). `run` and `run --ui` write logs of their own, so one running beside the other
    does not truncate its log."""
    return ComfyServer(comfy_root, home / "run", port=port, user_dir=home / "user", log_name=log_name,
                       settings=settings, pack_templates=write_demo_templates(home, SHIPPED),
                       extra_model_dirs={f: [models_dir(home) / f] for f in demo_folders()})


def run_workflow(comfy_root, name, home, demo=False, text=None, seed=None):
    """Start ComfyUI, run the workflow, stop ComfyUI (also on Ctrl+C, SIGTERM or SIGHUP). Returns (status string,
    saved file paths, server log path)."""
    server = demo_server(comfy_root, home)
    print(f"starting ComfyUI from {comfy_root} (log: {server.log_path})", flush=True)
    with stopping_on_signals():
        try:
            server.start()
            workflow = shipped_workflow(name)
            missing = missing_models(server, workflow)
            if missing and not demo:
                print("LongCat model files not installed: " + ", ".join(f"{n} ({t})" for t, n in missing))
            if missing or demo:
                print(f"running '{name}' on the DEMO SET in {home}: tiny random weights, the video is noise "
                      "(it shows the pipeline runs, not what LongCat-Video makes)", flush=True)
                write_demo_set(home, comfy_root)
                write_demo_inputs(server.base / "input")
                workflow = shipped_workflow(name, demo_setup())
            else:
                print(f"running '{name}' on the installed LongCat files", flush=True)
            prompt = with_prompt_text(api_format(workflow), text, seed)
            _, history = server.run(prompt, timeout=24 * 3600, on_message=progress_printer(workflow))
            status = history.get("status", {}).get("status_str", "no result")
            return status, saved_files(server, history), server.log_path
        finally:
            server.stop()


def serve_demo(comfy_root, home, port):
    """ComfyUI with the demo set, for the browser, until Ctrl+C, SIGTERM or SIGHUP (each stops ComfyUI): the demo
    workflows wait in its Workflows panel."""
    write_demo_set(home, comfy_root)
    config = model_paths_config(home)
    workflows = write_demo_workflows(home, SHIPPED)
    first = f"workflows/{workflows[MAIN].name}"  # the first page load opens it (no stock graph, no missing model)
    server = demo_server(comfy_root, home, port, log_name="comfyui_ui.log", settings={FIRST_VIEW: first})
    write_demo_inputs(server.base / "input")
    print(f"starting ComfyUI from {comfy_root} (log: {server.log_path})", flush=True)
    with stopping_on_signals():
        try:
            server.start()
            print(f"\nComfyUI is running with the LongCat demo set (random weights) at {server.url}\n"
                  f"The first page opens the main demo workflow ({workflows[MAIN].name}): press Run, nothing needs "
                  "changing. The others are in the Workflows panel (W), or drag a file onto the canvas:", flush=True)
            for path in workflows.values():
                print(f"  {path}")
            print(f"Videos land in {server.base / 'output' / 'longcat_demo'}. Ctrl+C stops ComfyUI.\n"
                  f"To use the demo set in your own ComfyUI instead: python main.py --extra-model-paths-config "
                  f"{config}\n", flush=True)
            while server.alive():
                time.sleep(0.5)
            print(f"ComfyUI stopped (exit {server.proc.returncode}); log: {server.log_path}")
            return 1
        except KeyboardInterrupt as stop:
            print(f"stopping ComfyUI ({stop or 'Ctrl+C'})", flush=True)
            return 0
        finally:
            server.stop()
