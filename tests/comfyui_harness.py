"""A real ComfyUI server for integration tests: found on disk, started as a subprocess on loopback with this pack
installed through an extra_model_paths file, and driven over HTTP and its websocket."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from conftest import PACK_ROOT

PACK_NAME = "comfyui-longcat-video"


def find_comfyui():
    """COMFYUI_PATH, else the ComfyUI holding this pack (custom_nodes/<pack>), else ~/ComfyUI; None if absent."""
    candidates = [os.environ.get("COMFYUI_PATH")]
    if PACK_ROOT.parent.name == "custom_nodes":
        candidates.append(str(PACK_ROOT.parent.parent))
    candidates.append(str(Path.home() / "ComfyUI"))
    for c in candidates:
        if c and (Path(c) / "main.py").is_file() and (Path(c) / "comfy").is_dir():
            return Path(c)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, comfy_root, base_dir):
        self.root = comfy_root
        self.base = Path(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "comfyui.log"
        self.proc = None

    def start(self, timeout=180):
        nodes_dir = self.base / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        link = nodes_dir / PACK_NAME
        if not link.exists():
            link.symlink_to(PACK_ROOT, target_is_directory=True)
        config = self.base / "extra_model_paths.yaml"
        folders = ["diffusion_models", "loras", "text_embeddings", "vae", "text_encoders"]
        config.write_text("longcat_tests:\n" + f"    base_path: {self.base}\n" +
                          f"    custom_nodes: {nodes_dir}\n" + "".join(f"    {f}: models/{f}\n" for f in folders))
        for f in folders:
            (self.base / "models" / f).mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--output-directory", str(self.base / "output"),
               "--input-directory", str(self.base / "input"), "--temp-directory", str(self.base / "temp"),
               "--extra-model-paths-config", str(config), "--database-url", "sqlite:///:memory:"]
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
        return self.proc.poll() is None

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def models(self, folder):
        return self.base / "models" / folder

    # HTTP
    def request(self, path, data=None, method=None):
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def get(self, path):
        return self.request(path)

    def get_status(self, path):
        """(HTTP status, parsed JSON body) without raising on 4xx."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def post_prompt(self, prompt, client_id):
        """(status, body): 200 with prompt_id, or 400 with node_errors."""
        req = urllib.request.Request(self.url + "/prompt", data=json.dumps({"prompt": prompt, "client_id": client_id}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def run(self, prompt, timeout=300, on_message=None):
        """Queue a prompt and follow it on the websocket. Returns (events, history entry)."""
        import websocket  # websocket-client; imported here so GPU-only runs need not have it
        client_id = uuid.uuid4().hex
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}", timeout=timeout)
        try:
            status, body = self.post_prompt(prompt, client_id)
            if status != 200:
                raise PromptRejected(body)
            prompt_id = body["prompt_id"]
            events = []
            deadline = time.time() + timeout
            while time.time() < deadline:
                raw = ws.recv()
                if not isinstance(raw, str):
                    continue
                msg = json.loads(raw)
                data = msg.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                events.append(msg)
                if on_message is not None:
                    on_message(msg)
                if msg["type"] in ("execution_error", "execution_interrupted"):
                    break
                if msg["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                    break
                if msg["type"] == "execution_success":
                    break
            else:
                raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
        finally:
            ws.close()
        return events, self.history(prompt_id)

    def history(self, prompt_id, timeout=30):
        """The history entry; the server writes it just after its last websocket message."""
        deadline = time.time() + timeout
        while True:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry or time.time() > deadline:
                return entry or {}
            time.sleep(0.1)


class PromptRejected(Exception):
    def __init__(self, body):
        self.body = body
        super().__init__(json.dumps(body)[:2000])
