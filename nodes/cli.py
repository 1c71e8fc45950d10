"""Command line of the pack: `python -m nodes.cli inspect FILE...` prints what the LoRA loader will see in each
file (format, rank, alpha/rank = the default strength, targets, keys it does not understand)."""
import argparse
import os
import sys
import tempfile

from .core.demo_files import lora_target_shapes, write_official_lora
from .core.lora_files import inspect_lora
from .core.safetensors_file import ModelFileError


def describe(info):
    lines = [f"{info.name}",
             f"  format:            {info.format}",
             f"  dtype:             {info.dtype}",
             f"  size:              {info.size_bytes:,} bytes",
             f"  rank:              {', '.join(map(str, info.ranks))}",
             f"  alpha/rank:        {info.default_strength:g}  (the slider's default strength)",
             f"  target modules:    {len(info.module_ratios)} ({info.factor_count} low-rank factors)"]
    for module, ratio in sorted(info.exceptions.items()):
        lines.append(f"    exception: {module} alpha/rank {ratio:g} (applied as strength * {ratio / info.default_strength:g})")
    lines.append(f"  unmatched keys:    {len(info.unmatched_keys)}")
    lines.extend(f"    {k}" for k in info.unmatched_keys[:10])
    return "\n".join(lines)


def demo_files(folder):
    """Two tiny official-format LoRAs (random noise) so the command shows something on a bare machine."""
    distill = write_official_lora(os.path.join(folder, "demo_distill_lora.safetensors"),
                                  lora_target_shapes(2, 256, 768, 64), rank=8, seed=1)
    refine = write_official_lora(os.path.join(folder, "demo_refinement_lora.safetensors"),
                                 lora_target_shapes(2, 256, 768, 64, refinement=True), rank=8, seed=2)
    return [distill, refine]


def inspect_command(args):
    paths = list(args.files)
    if args.demo or not paths:
        folder = tempfile.mkdtemp(prefix="longcat_demo_")
        print(f"(demo: writing two tiny random LoRAs in the official LongCat format to {folder})")
        paths += demo_files(folder)
    status = 0
    for path in paths:
        try:
            print(describe(inspect_lora(path)))
        except ModelFileError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nodes.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print format, rank, alpha/rank and targets of LoRA files")
    p.add_argument("files", nargs="*", help="LoRA files (.safetensors; .pt/.ckpt are read weights-only)")
    p.add_argument("--demo", action="store_true", help="also inspect two tiny random demo LoRAs")
    p.set_defaults(run=inspect_command)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
