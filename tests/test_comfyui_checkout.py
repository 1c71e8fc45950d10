"""Finding ComfyUI and setting one up inside the pack (what scripts/install.sh runs through `nodes.cli`)."""
import io
import tarfile

import pytest

from longcat_pack.nodes.cli.comfyui_checkout import comfyui_version, requirements_without_torch, setup_comfyui, \
    torch_companions


def test_requirements_keep_everything_but_torch(comfyui_root):
    text = (comfyui_root / "requirements.txt").read_text()
    kept = requirements_without_torch(text)
    names = {line.split("=")[0].split(">")[0].strip().lower() for line in kept.splitlines() if line.strip()}
    assert not names & {"torch", "torchvision", "torchaudio"}
    assert {"torchsde", "aiohttp", "safetensors", "comfyui-frontend-package"} <= names  # torchsde: not a torch line
    original = [line for line in text.splitlines() if line.strip() not in ("torch", "torchvision", "torchaudio")]
    assert kept.splitlines() == original


def test_torch_companions_match_the_installed_builds(comfyui_root):
    """The versions install.sh would add for the installed torch are the ones that import beside it here."""
    import torchvision
    assert torchvision.__version__.split("+")[0] == torch_companions()["torchvision"]


def test_setup_from_an_archive_unpacks_once(comfyui_root, tmp_path):
    archive = tmp_path / "ComfyUI-snapshot.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for part in ("main.py", "comfyui_version.py", "comfy", "requirements.txt"):
            tar.add(comfyui_root / part, arcname=f"ComfyUI/{part}")
    target = tmp_path / ".comfyui" / "ComfyUI"
    assert setup_comfyui(archive, target) == (target, True)
    assert comfyui_version(target) == comfyui_version(comfyui_root)
    assert (target / "comfy" / "model_patcher.py").read_bytes() == (comfyui_root / "comfy" / "model_patcher.py").read_bytes()
    assert setup_comfyui(archive, target) == (target, False)  # same archive: kept as it is


def test_hostile_or_foreign_archives_are_refused(tmp_path):
    escaping = tmp_path / "escaping.tar.gz"
    with tarfile.open(escaping, "w:gz") as tar:
        data = b"print('owned')"
        info = tarfile.TarInfo("../../outside.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "deep" / ".comfyui" / "ComfyUI"
    with pytest.raises(ValueError, match="escaping.tar.gz: not a readable ComfyUI source archive"):
        setup_comfyui(escaping, target)
    assert not (tmp_path / "outside.py").exists() and not (tmp_path / "deep" / "outside.py").exists()
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(__file__, arcname="something/else.py")
    with pytest.raises(ValueError, match="no ComfyUI tree"):
        setup_comfyui(foreign, target)
    with pytest.raises(ValueError, match="no such file"):
        setup_comfyui(tmp_path / "missing.tar.gz", target)


def test_a_missing_torchaudio_build_is_explained_not_dumped(capfd):
    """Where PyPI has no torchaudio of torch's own version, install.sh says so and which one it uses instead, with no
    bare pip error before the recovery. Real pip: a version that does not exist, then the installed one (a no-op)."""
    import torchaudio
    from longcat_pack.nodes.cli.comfyui_checkout import install_companion
    installed = torchaudio.__version__.split("+")[0]
    install_companion("torchaudio", "0.0.1", fallback=installed)
    out, err = capfd.readouterr()
    assert f"PyPI has no torchaudio 0.0.1; torchaudio {installed} imports beside this torch" in out
    assert "ERROR" not in out + err
