"""Against a real ComfyUI server: /longcat/lora_info for every format, for bad names, malformed files and files past
its bounds (a clear 4xx, never a 500), without stalling the server; and a prompt with a bad LoRA that fails as a
node error naming the file while the server stays up."""
import os
import re
import statistics
import threading
import time

import pytest
import torch

from longcat_pack.nodes.core.lora_files import MAX_LORA_HEADER_BYTES, MAX_LORA_TENSORS
from lora_writers import MALFORMED_LORAS
from test_comfyui_dit import saved_latent, t2v_prompt


@pytest.mark.parametrize("prefix", ["", "/api"])
@pytest.mark.parametrize("name,expected", [
    ("lora_distill.safetensors", {"format": "longcat", "rank": 8, "default_strength": 0.5, "targets": 14,
                                  "alpha_over_rank": 0.5, "skipped_keys": {}, "dtype": "f32", "layout": "native"}),
    ("lora_refine.safetensors", {"format": "longcat", "rank": 8, "default_strength": 0.5, "targets": 18,
                                 "exceptions": {"blocks.1.ffn.w2": 0.25}}),
    ("kohya_style.safetensors", {"format": "kohya", "rank": 4, "default_strength": 1.0, "targets": 1}),
    ("peft/adapter_model.safetensors", {"format": "peft", "rank": 8, "default_strength": 1.0, "targets": 1}),
    ("split_qkv.safetensors", {"format": "longcat+split", "rank": 4, "default_strength": 0.25, "targets": 3}),
    ("layouts/wanvideo/distill.safetensors", {"layout": "wanvideo", "format": "kohya+split", "rank": 8,
                                              "default_strength": 0.5, "targets": 20, "factors": 20}),
    ("layouts/wanvideo/refine.safetensors", {"layout": "wanvideo", "format": "kohya+split+diff", "rank": 8,
                                             "default_strength": 0.5}),
    ("layouts/fastvideo/distill.safetensors", {"layout": "fastvideo", "format": "fastvideo+split",
                                               "default_strength": 0.5, "targets": 20}),
    ("layouts/peft/distill/adapter_model.safetensors", {"layout": "native", "format": "peft", "rank": [8, 16, 24],
                                                        "default_strength": 0.5, "targets": 14}),
    ("layouts/kijai_with_te.safetensors", {"layout": "wanvideo", "skipped_keys": {"text encoder": 1},
                                           "layout_title": "WanVideoWrapper / Kijai (Kijai/LongCat-Video_comfy)"}),
])
def test_lora_info_for_each_format(comfy_server, prefix, name, expected):
    status, body = comfy_server.get_status(f"{prefix}/longcat/lora_info?name={name}")
    assert status == 200, body
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    assert body["size_bytes"] > 0
    if name == "lora_refine.safetensors":
        assert body["alpha_over_rank"]["blocks.1.ffn.w2"] == 0.25


@pytest.mark.parametrize("name,status,message", [
    ("../../../etc/passwd", 400, "only names inside the loras folders"),
    ("/etc/passwd", 400, "only names inside the loras folders"),
    ("missing.safetensors", 404, "no such file"),
    ("linked_outside.safetensors", 400, "outside the loras folders"),
    ("corrupt.safetensors", 422, "corrupt.safetensors: truncated"),
    ("", 400, "no LoRA name"),
])
def test_lora_info_rejects_bad_names(comfy_server, name, status, message):
    got, body = comfy_server.get_status(f"/longcat/lora_info?name={name}")
    assert got == status and message in body["error"], body
    assert comfy_server.alive()


def test_bad_lora_is_a_node_error_and_next_prompt_runs(comfy_server):
    events, _ = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="bad_lora", loras=[("corrupt.safetensors", 0.5)]))
    errors = [e for e in events if e["type"] == "execution_error"]
    assert errors and errors[0]["data"]["node_type"] == "LongCatLoraLoader", events[-3:]
    assert "corrupt.safetensors" in errors[0]["data"]["exception_message"]
    assert comfy_server.alive()
    _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="good_lora", loras=[("lora_distill.safetensors", 0.5)]))
    assert history["status"]["status_str"] == "success"
    assert torch.isfinite(saved_latent(comfy_server, history)).all()


def test_huge_finite_lora_factors_are_a_node_error_and_nothing_is_patched(comfy_server):
    """alpha_scale 2e38 is finite, but scaled up @ down would overflow the model's outputs to NaN: refused by the
    node naming the file, and the same model then samples exactly as before."""
    _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", seed=3, prefix="before_huge"))
    before = saved_latent(comfy_server, history)
    events, _ = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", seed=3, prefix="huge",
                                            loras=[("huge_alpha.safetensors", 0.5)]))
    errors = [e for e in events if e["type"] == "execution_error"]
    assert errors and errors[0]["data"]["node_type"] == "LongCatLoraLoader", events[-3:]
    assert re.match(r"huge_alpha\.safetensors: module blocks\.1\.ffn\.w3: .* far too large",
                    errors[0]["data"]["exception_message"]), errors[0]["data"]["exception_message"]
    _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", seed=3, prefix="after_huge"))
    assert torch.equal(saved_latent(comfy_server, history), before)


def test_lora_changes_the_result_and_strength_zero_does_not(comfy_server):
    results = {}
    for label, loras in (("base", ()), ("zero", [("lora_refine.safetensors", 0.0)]),
                         ("half", [("lora_refine.safetensors", 0.5)])):
        _, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", seed=11, prefix=label, loras=loras))
        results[label] = saved_latent(comfy_server, history)
    assert torch.equal(results["zero"], results["base"])
    assert (results["half"] - results["base"]).abs().max() > 1e-3


def stock_lora_prompt(lora_name, strength, prefix):
    prompt = t2v_prompt("longcat_tiny.safetensors", seed=11, prefix=prefix)
    prompt["20"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": lora_name,
                                                                    "strength_model": strength}}
    prompt["5"]["inputs"]["model"] = ["20", 0]
    return prompt


def test_stock_lora_loader_on_a_longcat_model(comfy_server):
    """What the README says: core's LoraLoaderModelOnly reads kohya files on a LongCat MODEL (same result as ours),
    and silently skips the official LongCat format (the output does not change)."""
    latents = {}
    for label, prompt in (
            ("base", t2v_prompt("longcat_tiny.safetensors", seed=11, prefix="s_base")),
            ("ours_kohya", t2v_prompt("longcat_tiny.safetensors", seed=11, prefix="s_ours",
                                      loras=[("kohya_style.safetensors", 3.0)])),
            ("stock_kohya", stock_lora_prompt("kohya_style.safetensors", 3.0, "s_stock")),
            ("stock_official", stock_lora_prompt("lora_refine.safetensors", 1.0, "s_official"))):
        _, history = comfy_server.run(prompt)
        latents[label] = saved_latent(comfy_server, history)
    assert (latents["ours_kohya"] - latents["base"]).abs().max() > 1e-3
    torch.testing.assert_close(latents["stock_kohya"], latents["ours_kohya"], atol=1e-4, rtol=1e-4)
    assert torch.equal(latents["stock_official"], latents["base"])


def test_layout_loras_run_through_the_node_and_report_what_they_skip(comfy_server):
    """A Kijai (WanVideoWrapper) LoRA gives the same latent as the official file at their defaults; the node's UI
    text names the layout and the text-encoder keys it skipped."""
    latents = {}
    for label, name in (("official", "lora_distill.safetensors"), ("kijai", "layouts/wanvideo/distill.safetensors"),
                        ("kijai_te", "layouts/kijai_with_te.safetensors")):
        events, history = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", seed=11, prefix=f"l_{label}",
                                                      loras=[(name, 0.5)]))
        assert history["status"]["status_str"] == "success", events[-3:]
        latents[label] = saved_latent(comfy_server, history)
        if label == "kijai_te":
            texts = [t for e in events if e["type"] == "executed" for t in (e["data"]["output"] or {}).get("text", [])]
            assert any("WanVideoWrapper / Kijai" in t and "skipped 1 keys of the text encoder" in t for t in texts), texts
    torch.testing.assert_close(latents["kijai"], latents["official"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(latents["kijai_te"], latents["official"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(MALFORMED_LORAS))
def test_malformed_files_are_a_clear_4xx(comfy_server, name):
    status, body = comfy_server.get_status(f"/longcat/lora_info?name=malformed/{name}")
    assert status == 422 and re.match(f"{re.escape(name)}: .*{MALFORMED_LORAS[name][1]}", body["error"]), (status, body)
    assert comfy_server.alive()


@pytest.mark.parametrize("name", sorted(MALFORMED_LORAS))
def test_malformed_files_are_a_node_error(comfy_server, name):
    events, _ = comfy_server.run(t2v_prompt("longcat_tiny.safetensors", prefix="malformed",
                                            loras=[(f"malformed/{name}", 0.5)]))
    errors = [e for e in events if e["type"] == "execution_error"]
    assert errors and errors[0]["data"]["node_type"] == "LongCatLoraLoader", events[-3:]
    assert errors[0]["data"]["exception_type"].endswith("ModelFileError"), errors[0]["data"]
    assert re.match(f"{re.escape(name)}: .*{MALFORMED_LORAS[name][1]}", errors[0]["data"]["exception_message"])


@pytest.mark.parametrize("name,problem", [
    ("too_many_tensors.safetensors",
     f"lists {MAX_LORA_TENSORS // 3 * 3 + 3} tensors, more than the {MAX_LORA_TENSORS} allowed"),
    ("header_too_large.safetensors",
     f"header is {MAX_LORA_HEADER_BYTES + 1} bytes, more than the {MAX_LORA_HEADER_BYTES}"),
])
def test_files_past_the_bounds_are_a_clear_4xx(comfy_server, name, problem):
    status, body = comfy_server.get_status(f"/longcat/lora_info?name=huge/{name}")
    assert status == 422 and body["error"].startswith(f"{name}: ") and problem in body["error"], (status, body)


def test_a_large_header_never_stalls_the_server(comfy_server):
    """While the route reads a header near its bounds, /system_stats keeps answering: several small requests complete
    before the large one does, in a fraction of its time. (Parsed on the event loop, at most the one or two sent
    before the parse began could: the others wait for the whole parse.)"""
    name = "huge/near_the_bound.safetensors"
    os.utime(comfy_server.models("loras") / name)  # a new mtime: not answered from the cache
    big = {}

    def query_big():
        big["status"], big["body"] = comfy_server.get_status(f"/longcat/lora_info?name={name}")
        big["done"] = time.perf_counter()

    started = time.perf_counter()
    thread = threading.Thread(target=query_big)
    thread.start()
    small = []
    while thread.is_alive():
        sent = time.perf_counter()
        status, _ = comfy_server.get_status("/system_stats")
        small.append((sent, time.perf_counter(), status))
    thread.join()
    assert big["status"] == 200 and big["body"]["targets"] == (MAX_LORA_TENSORS - 1) // 3, big
    big_time = big["done"] - started
    answered_first = [(sent, done) for sent, done, status in small if status == 200 and done < big["done"]]
    assert len(answered_first) >= 5, (big_time, small[:10])
    assert statistics.median(done - sent for sent, done in answered_first) < big_time / 4, (big_time, answered_first)
