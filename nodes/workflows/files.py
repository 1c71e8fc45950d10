"""Where the shipped workflows live and how they are written. ComfyUI lists a pack's `example_workflows/*.json` in
its template browser under the file's name (0.33 still reads `workflows/`, but logs a request to rename it), and
shows `<name>.jpg` next to it as the thumbnail; `api/` below it is not listed."""
import json
from pathlib import Path

from .graph import api_format, ui_format

PACK_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PACK_ROOT / "example_workflows"


def ui_file(workflow, folder=EXAMPLES):
    return Path(folder) / f"{workflow.title}.json"


def thumbnail_file(workflow, folder=EXAMPLES):
    return Path(folder) / f"{workflow.title}.jpg"


def api_file(name, folder=EXAMPLES):
    return Path(folder) / "api" / f"{name}.json"


def dumps(data):
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_ui(workflow, folder=EXAMPLES):
    path = ui_file(workflow, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(ui_format(workflow)), encoding="utf-8")
    return path


def write_api(workflow, folder=EXAMPLES):
    path = api_file(workflow.name, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(api_format(workflow)), encoding="utf-8")
    return path
