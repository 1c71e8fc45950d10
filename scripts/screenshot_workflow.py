"""Makes the README's screenshot: the main workflow as a user with every file installed first sees it, in ComfyUI's
frontend in headless Chromium at 1600x1000 (stand-in model files, so no missing-model dialog covers it).
Needs a ComfyUI (COMFYUI_PATH, or as the tests find one) and Playwright + Debian's chromium.
Run: python scripts/screenshot_workflow.py [output.png]   (default docs/images/longcat_t2v_distill_refine.png)
"""
import json
import sys
import tempfile
from pathlib import Path

PACK = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PACK / "tests"))  # the browser driver of the tests, which imports the pack as longcat_pack

from support.browser import close_dialogs, launch, load_workflow, open_app, write_stand_ins  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402
from longcat_pack.nodes.cli.headless import ComfyServer  # noqa: E402
from longcat_pack.nodes.workflows.catalog import MAIN, SHIPPED  # noqa: E402
from longcat_pack.nodes.workflows.files import ui_file  # noqa: E402



def main(out=PACK / "docs" / "images" / f"{MAIN}.png"):
    from playwright.sync_api import sync_playwright
    from PIL import Image
    comfy_root = find_comfyui()
    if comfy_root is None:
        sys.exit("no ComfyUI found: set COMFYUI_PATH")
    workflow = SHIPPED[MAIN]()
    with tempfile.TemporaryDirectory(prefix="longcat_screenshot_") as base:
        server = ComfyServer(comfy_root, base)
        write_stand_ins(server.base / "models", workflow, server.base / "input")
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = open_app(browser, server.url)
                load_workflow(page, json.loads(ui_file(workflow).read_text(encoding="utf-8")))
                close_dialogs(page)
                page.mouse.move(800, 990)  # no hover highlight on the graph
                page.wait_for_timeout(500)
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            server.stop()
    with Image.open(out) as image:  # a 256-colour PNG is a third of the size and looks the same
        image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
