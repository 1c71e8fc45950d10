"""Where the shipped workflows live and how they are written. ComfyUI lists a pack's `workflows/*.json` in
its template browser under the file's name (it reads `example_workflows/` first and `workflows/` too, logging a
rename hint at debug level only), and shows `<name>.jpg` next to it as the thumbnail; `api/` below it is not listed."""
import json
from pathlib import Path

from .graph import api_format, ui_format

PACK_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = PACK_ROOT / "workflows"


def ui_file(workflow, folder=WORKFLOWS):
    return Path(folder) / f"{workflow.title}.json"


def thumbnail_file(workflow, folder=WORKFLOWS):
    return Path(folder) / f"{workflow.title}.jpg"


def api_file(name, folder=WORKFLOWS):
    return Path(folder) / "api" / f"{name}.json"


def dumps(data):
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_ui(workflow, folder=WORKFLOWS):
    path = ui_file(workflow, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(ui_format(workflow)), encoding="utf-8")
    return path


def write_api(workflow, folder=WORKFLOWS):
    path = api_file(workflow.name, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(api_format(workflow)), encoding="utf-8")
    return path
