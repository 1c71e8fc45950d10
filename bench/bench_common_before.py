"""The pack's core modules as they were at an earlier commit (default: main before the chunked DiT), imported
next to today's, so a benchmark compares both in one run."""
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import PACK_ROOT

BEFORE = "d8717e2"  # main before the DiT ran its per-token work over chunks of frames (issue 12)


def core_module_before(name, ref=BEFORE):
    """nodes/core/<name>.py at `ref` as a module of its own (the core modules import no sibling at module level
    that the benchmarks use)."""
    key = f"longcat_before_{ref}_{name}"
    if key not in sys.modules:
        source = subprocess.run(["git", "-C", PACK_ROOT, "show", f"{ref}:nodes/core/{name}.py"], check=True,
                                capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp(prefix="longcat_before_")) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
