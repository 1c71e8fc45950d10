"""Running ComfyUI headless: start a ComfyUI checkout on loopback with this pack installed, queue an
API-format prompt and follow it over the websocket. Used by `python -m nodes.cli run` and by the tests.
Imports no ComfyUI code: ComfyUI runs as its own process."""
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .comfyui_checkout import PACK_ROOT

PACK_NAME = "comfyui-longcat-video"
MODEL_FOLDERS = ("diffusion_models", "loras", "text_embeddings", "vae", "text_encoders", "audio_encoders")
PROGRESS_TEXT = 3  # ComfyUI's BinaryEventTypes.TEXT: a node's progress text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_and_json(request):
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def progress_text(data):
    """A node's progress text (ComfyUI's binary websocket message 3: node id length, node id, UTF-8 text) as an
    event {"type": "progress_text", "data": {"node": id, "text": text}}; None for other binary messages (previews)."""
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != PROGRESS_TEXT:
        return None
    (length,) = struct.unpack(">I", data[4:8])
    return {"type": "progress_text", "data": {"node": data[8:8 + length].decode("utf-8", "replace"),
                                              "text": data[8 + length:].decode("utf-8", "replace")}}


class PromptRejected(Exception):
    """POST /prompt answered 400: the body holds ComfyUI's node_errors."""

    def __init__(self, body):
        self.body = body
        super().__init__(json.dumps(body)[:2000])


def installed_pack(comfy_root):
    """The entry of comfy_root/custom_nodes that is this pack (a copy there, or a link to it), or None."""
    nodes_dir = Path(comfy_root) / "custom_nodes"
    if not nodes_dir.is_dir():
        return None
    return next((entry for entry in nodes_dir.iterdir() if entry.resolve() == PACK_ROOT), None)


@contextlib.contextmanager
def stopping_on_signals(signals=(signal.SIGTERM, signal.SIGHUP)):
    """SIGTERM and SIGHUP (a `kill`, a closed terminal) raise KeyboardInterrupt in the main thread, as Ctrl+C does,
    so the `finally` that stops the ComfyUI child runs for them too; the previous handlers come back after. Ctrl+C
    (SIGINT) is honoured even where a shell started us as a background job, with SIGINT ignored."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    previous = {s: signal.signal(s, interrupt) for s in signals}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def install_pack(target, templates=None):
    """The pack in a custom_nodes folder of our own: a link to it, or with `templates` a folder of links to its
    parts whose `workflows/` is `templates` (so a demo server's template browser lists the demo workflows, which
    find the demo files, instead of the real ones)."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and templates is None):
        target.unlink() if target.is_symlink() else shutil.rmtree(target)
    if templates is None:
        target.symlink_to(PACK_ROOT, target_is_directory=True)
        return target
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in PACK_ROOT.iterdir() if not p.name.startswith(".") and p.name != "workflows"}
    wanted["workflows"] = Path(templates)
    for entry in target.iterdir():
        if entry.name not in wanted or not entry.is_symlink() or entry.resolve() != wanted[entry.name].resolve():
            entry.unlink() if entry.is_symlink() or entry.is_file() else shutil.rmtree(entry)
    for name, source in wanted.items():
        if not (target / name).is_symlink():
            (target / name).symlink_to(source.resolve(), target_is_directory=source.is_dir())
    return target


def gpu_available():
    """Whether this Python's torch sees a CUDA GPU (ComfyUI, started with the same Python, will use it)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class ComfyServer:
    """A ComfyUI process on 127.0.0.1 whose extra model folders live under `base/models/<folder>`; its user
    folder (settings, saved workflows), input, output and temp folders lie under `base` too, so a run leaves
    nothing in the ComfyUI checkout."""

    def __init__(self, comfy_root, base_dir, extra_model_dirs=None, port=None, user_dir=None, cpu=None,
                 log_name="comfyui.log", settings=None, pack_templates=None):
        self.root = Path(comfy_root)
        self.cpu = not gpu_available() if cpu is None else cpu  # a real run on real files needs the GPU
        self.base = Path(base_dir)
        self.extra_model_dirs = extra_model_dirs or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / log_name
        self.user_dir = Path(user_dir) if user_dir else self.base / "user"
        self.settings = settings or {}  # user settings to set (the frontend reads them at each page load)
        self.pack_templates = pack_templates  # a folder the template browser lists as the pack's (None: workflows/)
        self.proc = None

    def models(self, folder):
        return self.base / "models" / folder

    def start(self, timeout=180):
        for folder in ("input", "output", "temp"):  # 0.8.0's LoadAudio lists the input folder as it imports
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        lines = ["longcat:", f"    base_path: {self.base}"]
        if installed_pack(self.root) is None:  # install the pack through a custom_nodes folder of our own
            nodes_dir = self.base / "custom_nodes"
            nodes_dir.mkdir(exist_ok=True)
            install_pack(nodes_dir / PACK_NAME, self.pack_templates)
            lines.append(f"    custom_nodes: {nodes_dir}")
        for folder in MODEL_FOLDERS:
            self.models(folder).mkdir(parents=True, exist_ok=True)
            paths = [f"models/{folder}"] + [str(p) for p in self.extra_model_dirs.get(folder, [])]
            lines.append(f"    {folder}: |\n" + "".join(f"        {p}\n" for p in paths).rstrip("\n"))
        config = self.base / "extra_model_paths.yaml"
        config.write_text("\n".join(lines) + "\n")
        self.write_settings()
        cmd = [sys.executable, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1",
               "--port", str(self.port),
               "--disable-auto-launch", "--output-directory", str(self.base / "output"),
               "--input-directory", str(self.base / "input"), "--temp-directory", str(self.base / "temp"),
               "--user-directory", str(self.user_dir), "--extra-model-paths-config", str(config)]
        if "--database-url" in (self.root / "comfy" / "cli_args.py").read_text():
            cmd += ["--database-url", "sqlite:///:memory:"]
        cmd += os.environ.get("COMFYUI_EXTRA_ARGS", "").split()  # e.g. the device check's --front-end-root
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/object_info/LongCatDiTLoader")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not come up in {timeout} s:\n{self.log_tail()}")

    def write_settings(self):
        """The user's comfy.settings.json with `settings` set; a known user, so the frontend opens on the canvas,
        not on its first-run tour."""
        path = self.user_dir / "default" / "comfy.settings.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.setdefault("Comfy.TutorialCompleted", True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**current, **self.settings}, indent=4) + "\n")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc:
            self.log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    # HTTP
    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def get_status(self, path):
        """(HTTP status, parsed JSON body) without raising on 4xx."""
        return _status_and_json(self.url + path)

    def post(self, path, data):
        return _status_and_json(urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                                       headers={"Content-Type": "application/json"}))

    def history(self, prompt_id, timeout=30):
        """The history entry; the server writes it just after its last websocket message."""
        deadline = time.time() + timeout
        while True:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry or time.time() > deadline:
                return entry or {}
            time.sleep(0.1)

    def run(self, prompt, timeout=600, on_message=None):
        """Queue `prompt` and follow it on the websocket until it ends. Returns (events, history entry)."""
        return asyncio.run(self._run(prompt, timeout, on_message))

    async def _run(self, prompt, timeout, on_message):
        import aiohttp  # ComfyUI's own dependency
        client_id = uuid.uuid4().hex
        events = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{self.url}/ws?clientId={client_id}", heartbeat=30) as ws:
                status, body = self.post("/prompt", {"prompt": prompt, "client_id": client_id})
                if status != 200:
                    raise PromptRejected(body)
                prompt_id = body["prompt_id"]
                deadline = time.time() + timeout
                while True:
                    remaining = deadline - time.time()
                    if remaining <= 0:
                        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
                    msg = await ws.receive(timeout=remaining)
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        text = progress_text(msg.data)
                        if text is not None and on_message is not None:
                            on_message(text)
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            raise ConnectionError("ComfyUI closed the websocket")
                        continue
                    event = json.loads(msg.data)
                    data = event.get("data", {})
                    if data.get("prompt_id") not in (None, prompt_id):
                        continue
                    events.append(event)
                    if on_message is not None:
                        on_message(event)
                    kind = event["type"]
                    if kind in ("execution_error", "execution_interrupted", "execution_success"):
                        break
                    if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                        break
        return events, self.history(prompt_id)
