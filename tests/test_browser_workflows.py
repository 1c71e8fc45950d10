"""The shipped workflows in headless Chromium on real servers, as a user meets them: every node type known, the
first view shows stage 1 readable on a 1600x1000 window, the frontend's missing-model list names every model
loader's file (the DiT included) with a download, the template browser shows them with title and thumbnail, and
each pack node's help page opens in the node info panel. Screenshots of failed tests are saved."""
import json

import pytest

from support.browser import close_dialogs, drawn_texts, load_workflow, wait_missing_models
from longcat_pack.nodes.workflows.catalog import SHIPPED
from longcat_pack.nodes.workflows.files import ui_file

WORKFLOWS = sorted(SHIPPED)
READABLE_SCALE = 0.75  # node text at 10 px or more; the frontend stops drawing text below about 0.57
FOLDERS = {"LongCatDiTLoader": "diffusion_models", "LongCatLoraLoader": "loras", "CLIPLoader": "text_encoders",
           "VAELoader": "vae", "AudioEncoderLoader": "audio_encoders"}

# Points of the first group (its title bar and a grid over its body) that some panel of the frontend covers.
COVERED_POINTS = """() => {
    const canvas = app.canvas.canvas, box = canvas.getBoundingClientRect();
    const [x, y, w, h] = app.graph.groups[0]._bounding ?? app.graph.groups[0].bounding;
    const toScreen = (gx, gy) => { const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([gx, gy]);
                                   return [box.left + cx, box.top + cy]; };
    const covered = [];
    for (let i = 0; i <= 10; i++) {
        for (let j = 0; j <= 8; j++) {
            const [sx, sy] = toScreen(x + 2 + (w - 4) * i / 10, y + 2 + (h - 4) * j / 8);
            const hit = document.elementFromPoint(sx, sy);
            if (!hit || (hit !== canvas && !hit.closest('.dom-widget'))) {
                covered.push([Math.round(sx), Math.round(sy), hit ? hit.tagName + '.' + hit.className : 'outside']);
            }
        }
    }
    return covered;
}"""


def shipped(name):
    return json.loads(ui_file(SHIPPED[name]()).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_loads_with_no_missing_node_types(open_page, installed_server, name):
    page = open_page(installed_server)
    workflow = shipped(name)
    missing = page.evaluate("(types) => types.filter(t => !LiteGraph.registered_node_types[t])",
                            sorted({n["type"] for n in workflow["nodes"]}))
    load_workflow(page, workflow)
    loaded = page.evaluate("() => app.graph._nodes.map(n => n.type)")
    assert missing == [] and sorted(loaded) == sorted(n["type"] for n in workflow["nodes"])
    # the frontend grows nodes to its own minimum size on load: they still keep clear of each other (title bar
    # and badge included)
    rects = page.evaluate("""() => app.graph._nodes.map(n => [n.title, n.pos[0], n.pos[1] - 54,
                                                              n.pos[0] + n.size[0], n.pos[1] + n.size[1]])""")
    clashes = [(a[0], b[0]) for i, a in enumerate(rects) for b in rects[i + 1:]
               if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]
    assert clashes == []
    assert "Missing Node Types" not in page.content()
    assert not page.longcat_errors, page.longcat_errors


@pytest.mark.parametrize("name", WORKFLOWS)
def test_first_view_shows_the_first_group_readable(open_page, installed_server, name):
    """With every file installed: the saved view is applied, the first group (stage 1) lies whole on the free
    part of the canvas, at a zoom where the frontend draws all text, and no text in it is cut off."""
    page = open_page(installed_server)
    workflow = shipped(name)
    load_workflow(page, workflow)
    close_dialogs(page)
    view = page.evaluate("() => ({scale: app.canvas.ds.scale, low: app.canvas.low_quality})")
    assert view["scale"] == workflow["extra"]["ds"]["scale"] >= READABLE_SCALE and not view["low"]
    assert page.evaluate(COVERED_POINTS) == []
    texts = drawn_texts(page)
    first_group = workflow["groups"][0]["title"]
    assert first_group in texts
    stage_1 = SHIPPED[name]().groups[0]
    if any(SHIPPED[name]().node(k).type == "LongCatLoraLoader" for column in stage_1.columns for k in column):
        assert "strength (alpha/rank 0.5)" in texts
    assert [t for t in texts if "…" in t] == []


@pytest.mark.parametrize("name", WORKFLOWS)
def test_missing_models_lists_every_model_loader(open_page, empty_server, name):
    """On a server with no model files, the frontend lists each model loader's file, the DiT included, with its
    folder and a download."""
    page = open_page(empty_server)
    workflow = shipped(name)
    expected = sorted({(FOLDERS[n["type"]], n["widgets_values"][0], True) for n in workflow["nodes"]
                       if n["type"] in FOLDERS})
    load_workflow(page, workflow)
    listed = wait_missing_models(page, len(expected))
    assert listed == expected
    dits = {n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "LongCatDiTLoader"}
    assert dits and {("diffusion_models", dit, True) for dit in dits} <= set(listed)


def test_template_browser_shows_title_and_thumbnail_and_loads(open_page, installed_server):
    page = open_page(installed_server)
    page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.BrowseTemplates'); }")
    page.get_by_text("comfyui-longcat-video").first.click()
    titles = [SHIPPED[name]().title for name in WORKFLOWS]
    for title in titles:  # the card's thumbnail is our 512 px drawing, not the placeholder
        page.get_by_text(title, exact=True).first.scroll_into_view_if_needed()  # thumbnails load when in view
        page.wait_for_function("(t) => [...document.querySelectorAll('img')].some(i => i.alt === t && "
                               "i.naturalWidth === 512)", arg=title, timeout=20_000)
        assert page.get_by_text(title, exact=True).count() >= 1
    main = SHIPPED["longcat_t2v_distill_refine"]()
    page.locator(f'img[alt="{main.title}"]').first.click()
    page.wait_for_function(f"() => app.graph._nodes.length === {len(main.nodes)}", timeout=20_000)
    saved = shipped("longcat_t2v_distill_refine")["extra"]["ds"]
    page.wait_for_timeout(500)
    assert page.evaluate("() => app.canvas.ds.scale") == saved["scale"]


def test_every_pack_node_has_a_help_page_where_the_frontend_looks(open_page, empty_server):
    """The node info panel fetches /extensions/<pack folder>/docs/<NodeClass>.md (the pack folder from the
    node's python_module): each of the pack's nodes answers with a page that starts with the node's name."""
    page = open_page(empty_server)
    pages = page.evaluate("""async () => {
        const found = {};
        const all = await (await fetch('/api/object_info')).json();
        for (const [name, info] of Object.entries(all)) {
            if (!info.python_module.startsWith('custom_nodes.') || !name.startsWith('LongCat')) continue;
            const pack = info.python_module.split('.')[1].split('@')[0];
            const response = await fetch(`/extensions/${pack}/docs/${name}.md`);
            found[name] = [info.display_name, response.status, response.headers.get('content-type'),
                           await response.text()];
        }
        return found;
    }""")
    assert len(pages) >= 8, sorted(pages)  # every node of the pack, new ones included
    for name, (title, status, kind, text) in pages.items():
        assert status == 200 and "html" not in (kind or ""), name
        assert text.startswith(f"# {title}\n") and "## Inputs" in text, name


def test_help_page_shows_in_the_node_info_panel(open_page, comfy_server):
    page = open_page(comfy_server)
    page.evaluate("""() => {
        app.graph.clear();
        const node = LiteGraph.createNode('LongCatLoraLoader');
        node.pos = [300, 300];
        app.graph.add(node);
        app.canvas.selectNode(node);
    }""")
    toggle = page.get_by_label("Toggle properties panel").first
    toggle.click()
    page.get_by_role("tab", name="Info").first.click()
    page.get_by_text("The strength rule").first.wait_for(timeout=20_000)
    assert page.get_by_text("Reset strength to the file's alpha/rank").count() >= 1
    toggle.click()  # the panel's state is a server-side setting: leave it closed for the next pages
