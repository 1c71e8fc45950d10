"""In headless Chromium against a running server: choosing a LoRA file moves the strength slider to the file's
alpha/rank, the slider's label says what the file holds (in full, on a new node too), a missing or broken file
says so once, and a loaded workflow keeps its saved strength. Screenshots on failure."""
import json

from support.browser import drawn_texts, load_workflow
from longcat_pack.nodes.workflows.files import ui_file
from longcat_pack.nodes.workflows.catalog import SHIPPED


def add_node(page):
    """A new Apply LongCat LoRA node on an empty canvas at zoom 1, where every text of it is drawn."""
    return page.evaluate("""() => {
        app.graph.clear();
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [0, 0];
        const node = LiteGraph.createNode('LongCatLoraLoader');
        node.pos = [200, 200];
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
        return {value: w.value, label: w.label || '', tooltip: w.tooltip || ''};
    }""", node_id)


def wait_strength(page, node_id, value):
    page.wait_for_function("""([id, v]) => Math.abs(app.graph.getNodeById(id).widgets
        .find(w => w.name === 'strength').value - v) < 1e-9""", arg=[node_id, value], timeout=15_000)


def wait_label(page, node_id, text):
    page.wait_for_function("""([id, text]) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'strength')
        .label || '').includes(text)""", arg=[node_id, text], timeout=15_000)


def test_choosing_a_file_sets_its_alpha_over_rank(open_page, comfy_server):
    page = open_page(comfy_server)
    node_id = add_node(page)
    for name, expected in (("lora_distill.safetensors", 0.5), ("kohya_style.safetensors", 1.0),
                           ("split_qkv.safetensors", 0.25), ("lora_refine.safetensors", 0.5),
                           ("peft/adapter_model.safetensors", 1.0)):
        pick_file(page, node_id, name)
        wait_strength(page, node_id, expected)
    pick_file(page, node_id, "split_qkv.safetensors")
    wait_strength(page, node_id, 0.25)
    strength = strength_of(page, node_id)
    assert strength["label"] == "strength (alpha/rank 0.25)"
    assert "alpha/rank 0.25, rank 4" in strength["tooltip"]  # the details live in the slider's tooltip
    assert not page.longcat_errors, page.longcat_errors


def test_label_is_drawn_in_full_on_a_new_node(open_page, comfy_server):
    """The frontend cuts a widget's label to fit the node's width (and draws an ellipsis after it): a new node
    shows the slider's whole label, the number included, for a good file and for a broken one."""
    page = open_page(comfy_server)
    node_id = add_node(page)
    for name, label in (("lora_distill.safetensors", "strength (alpha/rank 0.5)"),
                        ("corrupt.safetensors", "strength (unreadable: truncated)"),
                        ("split_qkv.safetensors", "strength (alpha/rank 0.25)")):
        pick_file(page, node_id, name)
        wait_label(page, node_id, label)
        assert label in drawn_texts(page)


def test_broken_file_says_why_and_logs_once(open_page, comfy_server):
    page = open_page(comfy_server)
    workflow = json.loads(ui_file(SHIPPED["longcat_t2v_distill_refine"]()).read_text())
    for node in workflow["nodes"]:
        if node["type"] == "LongCatLoraLoader":
            node["widgets_values"][0] = "corrupt.safetensors"  # both LoRA nodes on one broken file
    load_workflow(page, workflow)
    labels = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'LongCatLoraLoader')
        .map(n => n.widgets.find(w => w.name === 'strength'))
        .map(w => [w.label, w.tooltip, w.value])""")
    assert [label for label, _, _ in labels] == ["strength (unreadable: truncated)"] * 2
    assert all("corrupt.safetensors: truncated" in tooltip for _, tooltip, _ in labels)
    assert [value for _, _, value in labels] == [0.5, 0.5]  # the saved strength stays
    assert len([line for line in page.longcat_console if "corrupt.safetensors" in line]) == 1


def test_missing_file_says_not_installed_and_logs_once(open_page, empty_server):
    page = open_page(empty_server)
    workflow = json.loads(ui_file(SHIPPED["longcat_t2v_distill_refine"]()).read_text())
    for _ in range(2):  # a second load logs nothing new
        load_workflow(page, workflow)
    labels = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'LongCatLoraLoader')
        .map(n => n.widgets.find(w => w.name === 'strength')).map(w => [w.label, w.tooltip])""")
    assert [label for label, _ in labels] == ["strength (not installed)"] * 2
    assert all("not in models/loras" in tooltip and "Download" in tooltip for _, tooltip in labels)
    for name in ("cfg_step_lora.safetensors", "refinement_lora.safetensors"):
        assert len([line for line in page.longcat_console if name in line]) == 1, page.longcat_console


def file_label(page, node_id):
    return page.evaluate("""(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || ''""",
                         node_id)


def test_the_node_names_the_files_layout_and_what_it_skips(open_page, comfy_server):
    page = open_page(comfy_server)
    node_id = add_node(page)
    pick_file(page, node_id, "layouts/fastvideo/distill.safetensors")
    wait_strength(page, node_id, 0.5)
    page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || '')
        .includes('FastVideo')""", arg=node_id, timeout=15_000)
    pick_file(page, node_id, "layouts/kijai_with_te.safetensors")
    page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label || '')
        .includes('skips')""", arg=node_id, timeout=15_000)
    assert file_label(page, node_id) == "lora_name (WanVideoWrapper / Kijai LoRA; skips 1 text encoder keys)"
    tooltip = page.evaluate("""(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'strength').tooltip""",
                            node_id)
    assert "WanVideoWrapper / Kijai" in tooltip and "alpha/rank 0.5, rank 8" in tooltip
    pick_file(page, node_id, "lora_distill.safetensors")  # the official layout: the file name keeps the room
    page.wait_for_function("""(id) => !app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').label""",
                           arg=node_id, timeout=15_000)


def test_saved_workflow_keeps_its_strength(open_page, comfy_server):
    page = open_page(comfy_server)
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
        .map(n => [n.widgets.find(w => w.name === 'lora_name').value, n.widgets.find(w => w.name === 'strength').value,
                   n.widgets.find(w => w.name === 'strength').label || ''])""")
    assert values == [["lora_distill.safetensors", 0.8, "strength (alpha/rank 0.5)"]]


def test_new_node_starts_at_its_initial_files_default(open_page, comfy_server):
    """A freshly created node fetches the default of the file its combo starts on (here the first in the list,
    a broken file: the label says so and the strength stays at the node's default)."""
    page = open_page(comfy_server)
    node_id = add_node(page)
    initial = page.evaluate("(id) => app.graph.getNodeById(id).widgets.find(w => w.name === 'lora_name').value",
                            node_id)
    assert initial == "corrupt.safetensors"
    wait_label(page, node_id, "unreadable")
    assert strength_of(page, node_id)["value"] == 1.0
