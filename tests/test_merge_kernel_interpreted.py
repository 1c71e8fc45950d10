"""The fused merge kernel's indexing, run on the CPU by Triton's interpreter (fp32; the interpreter has no
bfloat16). On a GPU, tests/test_gpu_merge.py runs the compiled kernel in every dtype."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import PACK_ROOT

SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, "tests")
    import conftest
    from safetensors.torch import load_file
    from longcat_pack.nodes.core import merge_kernel
    from longcat_pack.nodes.core.lora_files import read_lora
    from longcat_pack.nodes.core.lora_patcher import linear_weights, prepare_stack
    from test_lora_patcher import linear_tree
    from test_gpu_merge import assert_rounded_once, exact_merge
    golden = conftest.GOLDEN
    root = linear_tree(load_file(str(golden / "tiny_dit.safetensors")), torch.float32)
    weights = linear_weights(root)
    stack = [(read_lora(golden / "lora_distill.safetensors"), 0.7), (read_lora(golden / "lora_refine.safetensors"), 0.5)]
    prepared = prepare_stack(stack, weights)
    outs = {n: torch.full_like(weights[n], float("nan")) for n in prepared}
    merge_kernel.grouped_merge([(weights[n].data, t, outs[n]) for n, t in prepared.items()])
    for n, out in outs.items():
        assert_rounded_once(out, weights[n].data, prepared[n])
    name = "blocks.1.attn.qkv"  # in place, as with a host backup
    exact = exact_merge(weights[name].data, prepared[name])
    merge_kernel.grouped_merge([(weights[name].data, prepared[name], weights[name].data)])
    assert (weights[name].double() - exact).abs().max() < 1e-5
    print("kernel ok:", len(outs), "targets")
""")


def test_kernel_indexing_under_the_triton_interpreter(golden_dir):
    pytest.importorskip("triton", reason="Triton is not installed (CPU-only torch build)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PACK_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and "kernel ok: 18 targets" in result.stdout, result.stdout + result.stderr[-3000:]
