"""Writes every shipped workflow from its description (nodes/workflows/catalog.py): the UI format into
workflows/<title>.json (the canvas and the template browser) with its thumbnail <title>.jpg, and the
API-format twin into workflows/api/<name>.json (POST /prompt, the command line, the tests).
Run after changing a workflow: python scripts/build_workflows.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the pack's `nodes` package

from nodes.workflows.catalog import SHIPPED  # noqa: E402
from nodes.workflows.files import WORKFLOWS, thumbnail_file, write_api, write_ui  # noqa: E402
from nodes.workflows.layout import check_readable, place  # noqa: E402
from nodes.workflows.thumbnail import draw_thumbnail  # noqa: E402


def main():
    written = set()
    for build in SHIPPED.values():
        workflow = build()
        check_readable(workflow, place(workflow))
        written |= {write_ui(workflow), write_api(workflow), thumbnail_file(workflow)}
        draw_thumbnail(workflow, thumbnail_file(workflow))
    for stale in sorted(set(WORKFLOWS.glob("*.json")) | set(WORKFLOWS.glob("*.jpg")) |
                        set(WORKFLOWS.glob("api/*.json"))):
        if stale not in written:  # a renamed or removed workflow
            stale.unlink()
    for path in sorted(written):
        print(path.relative_to(WORKFLOWS.parent))


if __name__ == "__main__":
    main()
