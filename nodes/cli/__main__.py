"""Command line of the pack.

`python -m nodes.cli run`: the main job. Runs the shipped two-stage workflow (480p distill -> 720p refinement)
headless through ComfyUI, on the installed LongCat files, or on a tiny random demo set when they are missing;
with `--ui`, ComfyUI stays up with the demo set for the browser.
`python -m nodes.cli inspect FILE...`: what the LoRA loader sees in each file (layout, format, rank, alpha/rank =
the default strength, targets, keys of other components it skips), or for a DiT checkpoint (a file or a sharded
folder) what Load LongCat DiT sees (layout, size, stored dtype, quantized layers).
`python -m nodes.cli setup-comfyui`: find ComfyUI, or set one up inside the pack (what scripts/install.sh runs).
"""
import argparse
import os
import sys
from collections import Counter

from ..core.checkpoint import CheckpointError, open_dit_checkpoint
from ..core.layouts.lora_layouts import layout_title
from ..core.lora_files import inspect_lora
from ..core.safetensors_file import ModelFileError
from ..workflows.catalog import MAIN, SHIPPED
from .comfyui_checkout import ComfyUIPathError, checked_comfyui, ensure_comfyui, find_comfyui
from .demo_set import DEMO_FILES, LORA_ROLES, demo_home, models_dir, write_demo_set


def describe(info):
    lines = [f"{info.name}",
             f"  layout:            {layout_title(info.layout)}",
             f"  format:            {info.format}",
             f"  dtype:             {info.dtype}",
             f"  size:              {info.size_bytes:,} bytes",
             f"  rank:              {', '.join(map(str, info.ranks))}",
             f"  alpha/rank:        {info.default_strength:g}  (the slider's default strength)",
             f"  target modules:    {len(info.module_ratios)} ({info.factor_count} low-rank factors)"]
    for module, ratio in sorted(info.exceptions.items()):
        lines.append(f"    exception: {module} alpha/rank {ratio:g} (applied as strength * {ratio / info.default_strength:g})")
    for component, keys in sorted(info.skipped_keys.items()):
        lines.append(f"  skipped:           {len(keys)} keys of the {component} (not applied), e.g. {keys[0]}")
    return "\n".join(lines)


def describe_dit(ckpt):
    formats = Counter(conf["format"] for conf in ckpt.plan.quantized.values())
    config = ckpt.config
    lines = [f"{os.path.basename(ckpt.path.rstrip(os.sep))}",
             f"  layout:            {ckpt.plan.layout.title}",
             f"  model:             LongCat-Video DiT, {config['depth']} blocks, hidden {config['hidden_size']}",
             f"  stored dtype:      {str(ckpt.stored_dtype).replace('torch.', '')}",
             f"  shards:            {len(ckpt.shards)}",
             "  quantized layers:  " + (", ".join(f"{n} {fmt}" for fmt, n in sorted(formats.items())) or "none")]
    if config.get("split_fused"):
        lines.append(f"  split linears:     {len(config['split_fused'])} fused q/k/v kept as quantized pieces")
    return "\n".join(lines)


def inspect_file(path):
    """The LoRA description of a file, or the DiT one when it holds no LoRA keys (or is a folder)."""
    if not os.path.isdir(path):
        try:
            return describe(inspect_lora(path))
        except ModelFileError as e:
            if "no LongCat-Video LoRA keys" not in e.problem:
                raise
    return describe_dit(open_dit_checkpoint(path))


def demo_loras(home):
    """The demo set's two tiny official-format LoRAs (random noise), so the command shows something on a bare
    machine; written once into the demo set's folder."""
    write_demo_set(home, roles=LORA_ROLES)
    return [str(models_dir(home) / DEMO_FILES[role][0] / DEMO_FILES[role][1]) for role in LORA_ROLES]


def inspect_command(args):
    paths = list(args.files)
    if args.demo or not paths:
        home = demo_home(args.demo_dir)
        print(f"(demo: the demo set's two tiny random LoRAs in the official LongCat format, in {home})")
        paths += demo_loras(home)
    status = 0
    for path in paths:
        try:
            print(inspect_file(path))
        except (ModelFileError, CheckpointError) as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


def run_command(args):
    try:
        comfy_root = find_comfyui() if args.comfyui is None else checked_comfyui(args.comfyui, "--comfyui")
    except ComfyUIPathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if comfy_root is None:
        print("ComfyUI not found: run `bash scripts/install.sh` with COMFYUI_ARCHIVE set to a ComfyUI source .tar.gz "
              "(or with network) to set one up, or set COMFYUI_PATH, pass --comfyui, install this pack into "
              "ComfyUI/custom_nodes, or put ComfyUI at ~/ComfyUI (with its requirements installed).", file=sys.stderr)
        if args.fallback_inspect:
            print("Showing what the pack reads from LoRA files instead:\n")
            return inspect_command(argparse.Namespace(files=[], demo=True, demo_dir=args.demo_dir))
        return 2
    from .workflow_runner import run_workflow, serve_demo
    home = demo_home(args.demo_dir)
    try:
        if args.ui:
            return serve_demo(comfy_root, home, args.port)
        status, files, log = run_workflow(comfy_root, args.workflow, home, demo=args.demo, text=args.prompt,
                                          seed=args.seed)
    except RuntimeError as e:  # ComfyUI did not start (a busy port, a broken install): its log says why
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # Ctrl+C, SIGTERM, SIGHUP: ComfyUI is stopped by then
        print(f"stopped ({stop or 'Ctrl+C'}); ComfyUI stopped too", file=sys.stderr)
        return 130
    print(f"workflow finished: {status}")
    for f in files:
        print(f"saved: {f}")
    if status != "success":
        print(f"ComfyUI log: {log}", file=sys.stderr)
        return 1
    return 0


def setup_command(args):
    try:
        root = ensure_comfyui(os.environ.get("COMFYUI_ARCHIVE") or None)
    except (ComfyUIPathError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if root is None:
        print("the main job will show what the pack reads from LoRA files instead of rendering", file=sys.stderr)
    return 0


DEMO_DIR_HELP = ("where the demo set and the runs' output live (default: LONGCAT_DEMO_DIR, else "
                 "~/.cache/comfyui-longcat-video)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nodes.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print format, rank, alpha/rank and targets of LoRA files")
    p.add_argument("files", nargs="*", help="LoRA files (.safetensors; .pt/.ckpt are read weights-only)")
    p.add_argument("--demo", action="store_true", help="also inspect the demo set's two tiny random LoRAs")
    p.add_argument("--demo-dir", help=DEMO_DIR_HELP)
    p.set_defaults(run=inspect_command)
    r = sub.add_parser("run", help="run a shipped workflow headless through ComfyUI (demo set when files are missing)")
    r.add_argument("--workflow", default=MAIN, choices=sorted(SHIPPED),
                   help=f"which shipped workflow (default: {MAIN})")
    r.add_argument("--demo", action="store_true", help="use the tiny random demo set even if real files exist")
    r.add_argument("--prompt", help="the text prompt (real files only)")
    r.add_argument("--seed", type=int, default=None, help="added to the workflow's seeds")
    r.add_argument("--comfyui", type=str, default=None, help="ComfyUI checkout (default: COMFYUI_PATH or ~/ComfyUI)")
    r.add_argument("--fallback-inspect", action="store_true",
                   help="without ComfyUI, inspect demo LoRAs instead of failing")
    r.add_argument("--demo-dir", help=DEMO_DIR_HELP)
    r.add_argument("--ui", action="store_true",
                   help="keep ComfyUI running with the demo set and its workflows, for the browser (Ctrl+C stops)")
    r.add_argument("--port", type=int, default=8188, help="the --ui server's port (default 8188)")
    r.set_defaults(run=run_command)
    s = sub.add_parser("setup-comfyui", help="find ComfyUI, or set one up in .comfyui/ (from COMFYUI_ARCHIVE, else a "
                                             "clone of the pinned release), and install its requirements")
    s.set_defaults(run=setup_command)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
