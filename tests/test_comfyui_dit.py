"""Against a real ComfyUI server: the pack imports, Load LongCat DiT lists and loads checkpoints, stock
KSampler samples with it, and a broken checkpoint is a node error while the server keeps running."""
import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.cli.headless import PromptRejected


def t2v_prompt(dit_name, steps=2, seed=7, prefix="tiny", loras=()):
    """Load LongCat DiT -> [Apply LongCat LoRA for each (name, strength)] -> KSampler -> SaveLatent."""
    prompt = {
        "1": {"class_type": "LongCatDiTLoader", "inputs": {"dit_name": dit_name, "weight_dtype": "default"}},
        "2": {"class_type": "LongCatTextEmbeddingsLoader", "inputs": {"embeddings_name": "tiny_prompt.safetensors"}},
        "3": {"class_type": "LongCatTextEmbeddingsLoader", "inputs": {"embeddings_name": "tiny_negative.safetensors"}},
        "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 64, "height": 48, "length": 9, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
            "steps": steps, "cfg": 3.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "6": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": f"longcat/{prefix}"}},
    }
    for i, (name, strength) in enumerate(loras):
        node = str(10 + i)
        prompt[node] = {"class_type": "LongCatLoraLoader", "inputs": {
            "model": prompt["5"]["inputs"]["model"], "lora_name": name, "strength": strength, "mode": "auto"}}
        prompt["5"]["inputs"]["model"] = [node, 0]
    return prompt


def saved_latent(server, history):
    files = [f for out in history["outputs"].values() for f in out.get("latents", [])]
    assert len(files) == 1, history["outputs"]
    path = server.base / "output" / files[0]["subfolder"] / files[0]["filename"]
    return load_file(str(path))["latent_tensor"]


def test_pack_imports_without_failure(comfy_server):
    log = comfy_server.log_text().splitlines()
    ours = [line for line in log if "comfyui-longcat-video" in line]
    assert ours, "the pack was not loaded at all"
    assert not [line for line in ours if "IMPORT FAILED" in line or "Cannot import" in line], "\n".join(log)


def test_object_info_lists_checkpoints(comfy_server):
    info = comfy_server.get("/object_info/LongCatDiTLoader")["LongCatDiTLoader"]
    assert info["category"] == "LongCat" and info["display_name"] == "Load LongCat DiT"
    names = info["input"]["required"]["dit_name"][0]
    assert "longcat_tiny.safetensors" in names and "longcat_tiny_sharded/" in names
    assert not any("diffusion_pytorch_model-" in n for n in names), "shards must not be offered one by one"
    for spec in info["input"]["required"].values():
        assert spec[1].get("tooltip"), spec


def test_stock_ksampler_runs_single_and_sharded_identically(comfy_server):
    events, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="single"))
    assert history["status"]["status_str"] == "success", events[-1]
    single = saved_latent(comfy_server, history)
    assert single.shape == (1, 16, 3, 6, 8)
    assert torch.isfinite(single).all() and single.abs().max() > 0
    assert any(e["type"] == "progress" for e in events)
    _, history = comfy_server.run(t2v_prompt("longcat_tiny_sharded/", prefix="sharded"))
    assert torch.equal(saved_latent(comfy_server, history), single)


def test_kijai_checkpoints_sample_like_the_reference_file(comfy_server):
    """Kijai's WanVideoWrapper layout gives the reference file's latent exactly; his scaled fp8 one comes close."""
    _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="ref"))
    reference = saved_latent(comfy_server, history)
    _, history = comfy_server.run(t2v_prompt("LongCat_tiny_comfy_fp32.safetensors", prefix="kijai"))
    assert torch.equal(saved_latent(comfy_server, history), reference)
    events, history = comfy_server.run(t2v_prompt("LongCat_tiny_comfy_fp8_e4m3fn_scaled_KJ.safetensors", prefix="kj8"))
    assert history["status"]["status_str"] == "success", events[-3:]
    scaled = saved_latent(comfy_server, history)
    assert 0 < (scaled - reference).norm() / reference.norm() < 0.1
    assert "WanVideoWrapper / Kijai" in comfy_server.log_text() and "float8_e4m3fn" in comfy_server.log_text()


@pytest.mark.parametrize("name,problem", [
    ("half_kijai.safetensors", "mixes two layouts"),
    ("scaled_without_scales.safetensors", "holds no scale_weight"),
    ("broken_truncated.safetensors", "truncated"),
    ("missing_block.safetensors", "blocks.1.attn.proj.weight"),
    ("kijai_lost_last_block/", "blocks 1 missing: its config.json says the model has 2 blocks"),
    ("released_47_blocks.safetensors", "blocks 47 missing: the released LongCat-Video DiT of hidden size 4096"),
    ("nan_scale_KJ.safetensors", "layer blocks.0.ffn.w1: its scale_weight is nan"),
    ("escaping_shards/", "names '../../escaped_shard.safetensors', which lies outside the folder of the index"),
    ("linked_outside_folder/", "links to a folder outside the diffusion_models folders"),
    ("linked_outside_dit.safetensors", "links to a file outside the diffusion_models folders"),
])
def test_broken_checkpoint_is_a_node_error(comfy_server, name, problem):
    """Broken files, and names, links or shard indexes that lead outside the diffusion_models folders (to files
    that would load): a node error naming the file, and the next prompt runs."""
    events, _ = comfy_server.run(t2v_prompt(name, prefix="broken"))
    error = [e for e in events if e["type"] == "execution_error"]
    assert error, events
    assert error[0]["data"]["node_type"] == "LongCatDiTLoader"
    assert problem in error[0]["data"]["exception_message"]
    assert name.split(".")[0].rstrip("/") in error[0]["data"]["exception_message"]
    assert comfy_server.alive()
    _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="after_error"))
    assert history["status"]["status_str"] == "success"


def test_unknown_checkpoint_name_is_rejected(comfy_server):
    with pytest.raises(PromptRejected) as info:
        comfy_server.run(t2v_prompt("nowhere.safetensors"))
    assert "LongCatDiTLoader" in str(info.value) or "dit_name" in str(info.value)


def test_text_embeddings_linked_from_outside_are_a_node_error(comfy_server):
    prompt = t2v_prompt("longcat_tiny.safetensors", prefix="outside_prompt")
    prompt["2"]["inputs"]["embeddings_name"] = "linked_outside_prompt.safetensors"
    events, _ = comfy_server.run(prompt)
    error = [e for e in events if e["type"] == "execution_error"]
    assert error and error[0]["data"]["node_type"] == "LongCatTextEmbeddingsLoader", events[-3:]
    assert "'linked_outside_prompt.safetensors': links to a file outside the text_embeddings folders" in \
        error[0]["data"]["exception_message"]
