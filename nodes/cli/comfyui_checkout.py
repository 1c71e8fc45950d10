"""Where ComfyUI is, and setting one up inside the pack when there is none.

ComfyUI is not on any package index: it is a source tree. The pack looks for it in COMFYUI_PATH, then in the
ComfyUI that holds the pack (custom_nodes/<pack>), then in ~/ComfyUI, then in the pack's own `.comfyui/` (what
`setup_comfyui` makes: from a source archive given as COMFYUI_ARCHIVE, else a shallow clone of the pinned release).
Its requirements are installed into the running Python without touching an installed torch.
Imports no ComfyUI code.
"""
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
LOCAL_COMFYUI = PACK_ROOT / ".comfyui" / "ComfyUI"  # git-ignored
PINNED_RELEASE = "v0.33.0"
RELEASE_REPOSITORY = "https://github.com/comfyanonymous/ComfyUI"
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
# torch has no torchaudio of its own version from 2.12 on; this one imports beside it with --no-deps, which is all
# ComfyUI needs (it imports torchaudio at start-up and uses it only for audio models).
TORCHAUDIO_FALLBACK = "2.11.1"
# What ComfyUI's server imports at start (both tested versions): when these import, its requirements are in place.
SERVER_IMPORTS = ("aiohttp", "yaml", "av", "scipy", "transformers", "torchvision", "torchaudio",
                  "comfyui_frontend_package")


class ComfyUIPathError(ValueError):
    """COMFYUI_PATH (or --comfyui) names something that is not a ComfyUI checkout."""


def is_comfyui(path):
    return path is not None and (Path(path) / "main.py").is_file() and (Path(path) / "comfy").is_dir()


def find_comfyui():
    """COMFYUI_PATH, else the ComfyUI holding this pack, else ~/ComfyUI, else the pack's own; None if absent.
    A COMFYUI_PATH that is set but holds no ComfyUI is an error, not a reason to look elsewhere."""
    given = os.environ.get("COMFYUI_PATH")
    if given:
        return checked_comfyui(given, "COMFYUI_PATH")
    candidates = holding_comfyui() + [Path.home() / "ComfyUI", LOCAL_COMFYUI]
    return next((Path(c) for c in candidates if is_comfyui(c)), None)


def holding_comfyui():
    """[the ComfyUI whose custom_nodes holds the pack], found from the pack's own path or, where the pack is a
    link in custom_nodes (its real path lies elsewhere), from the path the shell reached it by ($PWD)."""
    ways_in = [PACK_ROOT]
    shell_path = os.environ.get("PWD")
    if shell_path and Path(shell_path).resolve() == PACK_ROOT:
        ways_in.append(Path(shell_path))
    return [p.parent.parent for p in ways_in if p.parent.name == "custom_nodes"][:1]


def checked_comfyui(path, source):
    if not is_comfyui(path):
        raise ComfyUIPathError(f"{source}={path} is not a ComfyUI checkout (it needs main.py and comfy/ there)")
    return Path(path)


def comfyui_version(root):
    """The version ComfyUI declares in comfyui_version.py, or 'unknown'."""
    try:
        text = (Path(root) / "comfyui_version.py").read_text()
    except OSError:
        return "unknown"
    match = re.search(r'__version__\s*=\s*"([^"]+)"', text)
    return match.group(1) if match else "unknown"


def setup_comfyui(archive=None, target=LOCAL_COMFYUI):
    """Make a ComfyUI at `target`: from `archive` (a .tar.gz of a ComfyUI tree; a checkout made from another
    archive is replaced), else by cloning the pinned release (an existing checkout is kept). Returns (its path,
    whether it was made just now), or (None, False) with the reason printed when neither works (no archive, no
    network)."""
    target = Path(target)
    source = target.with_name(target.name + ".source")  # which archive the checkout was unpacked from
    if archive:
        stamp = archive_stamp(archive)
        if not (is_comfyui(target) and source.is_file() and source.read_text() == stamp):
            extract_archive(archive, target)
            source.write_text(stamp)
            return target, True
        return target, False
    if is_comfyui(target):
        return target, False
    print(f"cloning ComfyUI {PINNED_RELEASE} into {target}", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", PINNED_RELEASE,
                               RELEASE_REPOSITORY, str(target)], timeout=600).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        done = False
    if done and is_comfyui(target):
        return target, True
    print("no ComfyUI set up: set COMFYUI_ARCHIVE to a ComfyUI source .tar.gz, COMFYUI_PATH to a checkout, or "
          f"allow `git clone {RELEASE_REPOSITORY}`", file=sys.stderr)
    return None, False


def archive_stamp(archive):
    if not os.path.isfile(archive):
        raise ValueError(f"COMFYUI_ARCHIVE={archive}: no such file")
    stat = os.stat(archive)
    return f"{os.path.realpath(archive)} {stat.st_size} {stat.st_mtime_ns}\n"


def extract_archive(archive, target):
    """Unpack a .tar.gz holding one ComfyUI tree (at its top or in one top folder) to `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="data")  # no links or paths out of the scratch folder
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ValueError(f"{archive}: not a readable ComfyUI source archive ({e})") from None
        found = [Path(scratch)] + sorted(p for p in Path(scratch).iterdir() if p.is_dir())
        tree = next((p for p in found if is_comfyui(p)), None)
        if tree is None:
            raise ValueError(f"{archive}: no ComfyUI tree (main.py and comfy/) at its top or in one top folder")
        tree.rename(target)
    print(f"unpacked ComfyUI {comfyui_version(target)} from {archive} into {target}", flush=True)


def requirements_without_torch(text):
    """ComfyUI's requirements.txt minus torch, torchvision and torchaudio (an installed torch is kept)."""
    kept = []
    for line in text.splitlines():
        name = re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower()
        if name not in TORCH_PACKAGES:
            kept.append(line)
    return "\n".join(kept) + "\n"


def torch_companions():
    """{package: version} of the torchvision and torchaudio that go with the installed torch."""
    import torch
    major, minor, patch = (re.match(r"(\d+)\.(\d+)\.(\d+)", torch.__version__).groups())
    return {"torchvision": f"0.{int(minor) + 15}.{patch}", "torchaudio": f"{major}.{minor}.{patch}"}


def importable(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def pip_install(*args, quiet=False):
    """pip install; with `quiet` its messages are kept back (a first try that may fail) and returned on failure."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], text=True,
                            capture_output=quiet)
    return result.returncode == 0, (result.stdout or "") + (result.stderr or "")


def install_companion(module, version, fallback=None):
    """torchvision or torchaudio for the installed torch, without dependencies (torch itself is never replaced).
    Torch has no torchaudio of its own version from 2.12 on: then the fallback, saying so (no bare pip error)."""
    print(f"      {module} {version}, for torch {torch_version()} (without dependencies: torch stays)", flush=True)
    ok, output = pip_install("--no-deps", f"{module}=={version}", quiet=fallback is not None)
    if (ok and importable(module)) or fallback is None:
        return
    print(f"      PyPI has no {module} {version}; {module} {fallback} imports beside this torch, which is all ComfyUI "
          "needs (it uses it only for audio models)", flush=True)
    if not pip_install("--no-deps", f"{module}=={fallback}")[0]:
        print(output, file=sys.stderr)


def install_requirements(root):
    """ComfyUI's requirements into this Python, keeping the installed torch; torchvision and torchaudio are added
    for that torch when missing (without dependencies, so torch itself is never replaced)."""
    companions = torch_companions()
    print(f"installing the requirements of the ComfyUI at {root} (a few minutes the first time)", flush=True)
    if not importable("torchvision"):
        install_companion("torchvision", companions["torchvision"])
    if not importable("torchaudio"):
        install_companion("torchaudio", companions["torchaudio"], TORCHAUDIO_FALLBACK)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(requirements_without_torch((Path(root) / "requirements.txt").read_text()))
    try:
        print("      ComfyUI's requirements.txt, without torch, torchvision and torchaudio", flush=True)
        if not pip_install("-r", f.name)[0]:
            raise RuntimeError(f"installing the requirements of the ComfyUI at {root} failed (see pip's output)")
    finally:
        os.unlink(f.name)
    missing = [m for m in ("torchvision", "torchaudio") if not importable(m)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} does not import beside torch {torch_version()}: install a "
                           "matching build, then run this again")


def torch_version():
    import torch
    return torch.__version__


def ensure_comfyui(archive=None):
    """What `scripts/install.sh` runs: use the ComfyUI `find_comfyui` finds outside the pack, else set up the
    pack's own (from `archive` when given), and make sure its requirements import. Returns its path or None."""
    root, made_now = find_comfyui(), False
    if root is None or root == LOCAL_COMFYUI:
        root, made_now = setup_comfyui(archive)
        if root is None:
            return None
    if made_now or not all(importable(m) for m in SERVER_IMPORTS):
        install_requirements(root)
    print(f"ComfyUI {comfyui_version(root)} at {root}", flush=True)
    return root
