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
    from longcat_pack.nodes.core import merge_kernel
    from test_gpu_merge import assert_grouped_merge_rounds_once, exact_merge
    weights, prepared = assert_grouped_merge_rounds_once(conftest.GOLDEN, torch.float32, "cpu")
    name = "blocks.1.attn.qkv"  # in place, as with a host backup
    exact = exact_merge(weights[name].data, prepared[name])
    merge_kernel.grouped_merge([(weights[name].data, prepared[name], weights[name].data)])
    assert (weights[name].double() - exact).abs().max() < 1e-5
    print("kernel ok:", len(prepared), "targets")
""")


def test_kernel_indexing_under_the_triton_interpreter(golden_dir):
    pytest.importorskip("triton", reason="Triton is not installed (CPU-only torch build)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PACK_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and "kernel ok: 18 targets" in result.stdout, result.stdout + result.stderr[-3000:]
