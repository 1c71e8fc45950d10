"""In headless Chromium against the running server: choosing a LoRA file moves the strength slider to the file's
alpha/rank, the node shows it, and a loaded workflow keeps its saved strength. Screenshot on failure."""
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def page(comfy_server, tmp_path_factory):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (drives Debian's chromium)")
    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        # only errors thrown from this pack's script count (some frontend versions log their own at start-up)
        page.on("pageerror", lambda e: errors.append(str(e)) if "longcat" in (e.stack or "") else None)
        page.goto(comfy_server.url, wait_until="domcontentloaded")
        page.wait_for_function("() => !!(window.app && window.app.graph && window.LiteGraph && "
                               "window.LiteGraph.registered_node_types['LongCatLoraLoader'])", timeout=90_000)
        page.longcat_errors = errors
        yield page
        browser.close()


@pytest.fixture
def screenshot_on_failure(page, request, tmp_path_factory):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        path = tmp_path_factory.mktemp("screens") / f"{request.node.name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")


def add_node(page):
    return page.evaluate("""() => {
        const node = LiteGraph.createNode('LongCatLoraLoader');
        app.graph.add(node);
        return node.id;
    }""")


def pick_file(page, node_id, name):
    page.evaluate("""([id, name]) => {
        const node = app.graph.getNodeById(id);
        const w = node.widgets.find(w => w.name === 'lora_name');
        if (w.setValue) {
            w.setValue(name, { node, canvas: app.canvas });  // what a user's pick does: fires the callback
        } else {
            w.value = name;
            w.callback?.(name, app.canvas, node);
        }
    }""", [node_id, name])


def strength_of(page, node_id):
    return page.evaluate("""(id) => {
        const w = app.graph.getNodeById(id).widgets.find(w => w.name === 'strength');
        return [w.value, w.label || ''];
    }""", node_id)


def wait_strength(page, node_id, value):
    page.wait_for_function("""([id, v]) => Math.abs(app.graph.getNodeById(id).widgets
        .find(w => w.name === 'strength').value - v) < 1e-9""", arg=[node_id, value], timeout=15_000)


@pytest.mark.usefixtures("screenshot_on_failure")
def test_choosing_a_file_sets_its_alpha_over_rank(page):
    node_id = add_node(page)
    for name, expected in (("lora_distill.safetensors", 0.5), ("kohya_style.safetensors", 1.0),
                           ("split_qkv.safetensors", 0.25), ("lora_refine.safetensors", 0.5),
                           ("peft/adapter_model.safetensors", 1.0)):
        pick_file(page, node_id, name)
        wait_strength(page, node_id, expected)
    pick_file(page, node_id, "split_qkv.safetensors")
    wait_strength(page, node_id, 0.25)
    assert "alpha/rank 0.25, rank 4" in strength_of(page, node_id)[1]
    assert not page.longcat_errors, page.longcat_errors


def file_label(page, node_id):
    return page.evaluate("""(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || ''""",
                         node_id)


@pytest.mark.usefixtures("screenshot_on_failure")
def test_the_node_names_the_files_layout_and_what_it_skips(page):
    node_id = add_node(page)
    pick_file(page, node_id, "layouts/fastvideo/distill.safetensors")
    wait_strength(page, node_id, 0.5)
    page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || '')
        .includes('FastVideo')""", arg=node_id, timeout=15_000)
    pick_file(page, node_id, "layouts/kijai_with_te.safetensors")
    page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || '')
        .includes('skips')""", arg=node_id, timeout=15_000)
    assert file_label(page, node_id) == "lora_name (WanVideoWrapper / Kijai LoRA; skips 1 text encoder keys)"
    assert "alpha/rank 0.5, rank 8" in strength_of(page, node_id)[1]


@pytest.mark.usefixtures("screenshot_on_failure")
def test_saved_workflow_keeps_its_strength(page):
    node_id = add_node(page)
    pick_file(page, node_id, "lora_distill.safetensors")
    wait_strength(page, node_id, 0.5)
    saved = page.evaluate("""(id) => {
        app.graph.getNodeById(id).widgets.find(w => w.name === 'strength').value = 0.8;
        return app.graph.serialize();
    }""", node_id)
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", saved)
    page.wait_for_timeout(1500)  # any default-setting fetch would have landed by now
    values = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'LongCatLoraLoader')
        .map(n => [n.widgets.find(w => w.name === 'lora_name').value, n.widgets.find(w => w.name === 'strength').value])""")
    assert ["lora_distill.safetensors", 0.8] in values, values
    label = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'LongCatLoraLoader')
        .map(n => n.widgets.find(w => w.name === 'strength').label || '')""")
    assert any("alpha/rank 0.5, rank 8" in x for x in label), label


@pytest.mark.usefixtures("screenshot_on_failure")
def test_new_node_starts_at_its_initial_files_default(page):
    """A freshly created node fetches the default of the file its combo starts on."""
    node_id = add_node(page)
    initial = page.evaluate("""(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').value""",
                            node_id)
    expected = {"corrupt.safetensors": None, "kohya_style.safetensors": 1.0}.get(initial, None)
    if expected is None:
        page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'strength')
            .label || '').includes('unreadable')""", arg=node_id, timeout=15_000)
    else:
        wait_strength(page, node_id, expected)


@pytest.mark.usefixtures("screenshot_on_failure")
@pytest.mark.parametrize("name", ["longcat_t2v_distill", "longcat_t2v_distill_refine"])
def test_shipped_workflow_loads_with_no_missing_nodes(page, name):
    import json
    from longcat_pack.nodes.cli.workflow_runner import WORKFLOWS
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())
    result = page.evaluate("""async (wf) => {
        const missing = wf.nodes.map(n => n.type).filter(t => !LiteGraph.registered_node_types[t]);
        await app.loadGraphData(wf);
        const loaded = app.graph._nodes.map(n => n.type);
        const lora = app.graph._nodes.filter(n => n.type === 'LongCatLoraLoader')
            .map(n => n.widgets.find(w => w.name === 'strength').value);
        return {missing, loaded: loaded.length, lora};
    }""", workflow)
    assert result["missing"] == [] and result["loaded"] == len(workflow["nodes"]), result
    assert all(v == 0.5 for v in result["lora"]), result  # saved strengths are kept
