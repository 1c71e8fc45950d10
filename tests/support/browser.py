"""Driving ComfyUI's frontend in headless Chromium (Debian's chromium, through Playwright's Python package), for
the browser tests and the README screenshot: open the app, load a workflow as a drag-and-drop would, close the
dialogs a load may open, record the text the canvas draws. Also the stand-in model files that let a server show
a workflow as a user with every file installed sees it."""
import shutil
from pathlib import Path

from .pack import register_pack

register_pack()
from longcat_pack.nodes.core.demo_files import TINY_DIT, lora_target_shapes, write_official_lora  # noqa: E402
from longcat_pack.nodes.cli.demo_set import write_demo_speech, write_noise_clip, write_noise_image  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
WINDOW = {"width": 1600, "height": 1000}  # the window the shipped workflows' saved view is made for


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def open_app(browser, url, viewport=WINDOW):
    """A page with ComfyUI loaded and the pack's extension registered; errors from the pack's script are kept
    in page.longcat_errors, its console lines in page.longcat_console."""
    page = browser.new_page(viewport=viewport)
    page.longcat_errors, page.longcat_console = [], []
    page.on("pageerror", lambda e: page.longcat_errors.append(str(e)) if "longcat" in (e.stack or "") else None)
    page.on("console", lambda m: page.longcat_console.append(m.text) if "LongCat" in m.text else None)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => !!(window.app && window.app.graph && window.app.canvas && window.LiteGraph && "
                           "window.LiteGraph.registered_node_types['LongCatLoraLoader'])", timeout=90_000)
    page.wait_for_timeout(1000)  # the frontend finishes its own start-up (restoring the last workflow) first
    return page


def load_workflow(page, workflow):
    """What dropping the file on the canvas does: loadGraphData with the saved view restored."""
    page.evaluate("async (wf) => { await app.loadGraphData(wf, true, true); }", workflow)
    page.wait_for_timeout(1500)  # missing-model checks, label fetches and the first frames


def close_dialogs(page):
    """Closes the missing-model dialog (0.8.0's frontend) and error toasts, as a user would."""
    for _ in range(3):
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)


def drawn_texts(page):
    """Every string the canvas draws in one full redraw (the frontend cuts text that does not fit and draws
    an ellipsis after it)."""
    return page.evaluate("""() => {
        const drawn = [];
        const fillText = CanvasRenderingContext2D.prototype.fillText;
        CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
            drawn.push(String(text));
            return fillText.call(this, text, ...rest);
        };
        try { app.canvas.draw(true, true); } finally { CanvasRenderingContext2D.prototype.fillText = fillText; }
        return drawn;
    }""")


# 0.33's frontend keeps its list of missing models in a store (shown in its errors panel); 0.8.0's shows them in
# the Missing Models dialog as "folder / file" rows with a Download button.
_MISSING_MODELS = """() => {
    const pinia = document.querySelector('#vue-app')?.__vue_app__?.config.globalProperties.$pinia;
    const store = pinia?._s.get('missingModel');
    if (store) {
        return (store.missingModelCandidates || []).map(c => [c.directory, c.name, !!c.url]);
    }
    return Array.from(document.querySelectorAll('.comfy-missing-models li')).map(li => {
        const [folder, name] = li.innerText.split('\\n')[0].split(' / ').map(s => s.trim());
        return [folder, name, li.innerText.includes('Download')];
    });
}"""


def missing_models(page):
    """The frontend's missing-model list: [(folder, file name, whether it offers a download)]."""
    return sorted({tuple(m) for m in page.evaluate(_MISSING_MODELS)})


def wait_missing_models(page, count, timeout=20_000):
    page.wait_for_function(f"() => ({_MISSING_MODELS})().length >= {count}", timeout=timeout)
    return missing_models(page)


def write_stand_ins(models_root, workflow, input_root):
    """Files named like every model file `workflow` names, under models_root/<folder>/: tiny official-format
    LoRAs (alpha/rank 0.5, like the real ones, so the slider labels read as they will), empty files for the rest;
    and a noise image or clip (or the synthetic speech) for each input it loads, in input_root. For showing a workflow in the UI only."""
    for _, _, model in workflow.model_files():
        path = Path(models_root) / model.folder / model.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if model.folder == "loras":
            write_official_lora(path, lora_target_shapes(TINY_DIT), alpha_scale=0.5)
        else:
            path.write_bytes(b"")
    for node in workflow.nodes:
        if node.type == "LoadImage":
            write_noise_image(Path(input_root) / node.widget_values()["image"])
        elif node.type == "LoadVideo":
            write_noise_clip(Path(input_root) / node.widget_values()["file"])
        elif node.type == "LoadAudio":
            write_demo_speech(Path(input_root) / node.widget_values()["audio"])
