"""A workflow description (nodes by name, links by name, groups of columns) and the two formats ComfyUI reads:
the UI format (schema 0.4: what the canvas loads and saves, with groups, a note, download links and a saved view)
and the API format (what POST /prompt takes)."""
from dataclasses import dataclass, field

from .layout import place
from .node_types import NODE_TYPES


@dataclass
class Node:
    key: str  # the name links and groups use
    type: str
    widgets: dict = field(default_factory=dict)  # widget name -> value; the others keep the type's default
    links: dict = field(default_factory=dict)  # input name -> source key, or (source key, output name or slot)
    title: str = None  # what the canvas and the command line show (the type's display name when None)
    height: int = None  # only where the content decides: text boxes, notes

    @property
    def spec(self):
        return NODE_TYPES[self.type]

    def widget_values(self):
        values = dict(self.spec.widgets)
        values.update(self.widgets)
        return values

    def sources(self):
        """{input name: (source key, output name or slot)}"""
        return {name: source if isinstance(source, tuple) else (source, 0) for name, source in self.links.items()}


@dataclass
class Group:
    title: str
    columns: list  # [[node key, ...], ...]: left to right, each top to bottom; absent keys are skipped
    color: str = "#3f789e"


@dataclass(frozen=True)
class ModelFile:
    name: str
    folder: str  # under ComfyUI/models
    url: str

    def entry(self):
        return {"name": self.name, "url": self.url, "directory": self.folder}


@dataclass
class Workflow:
    name: str  # short id: `--workflow` of the command line, the API twin's file name
    title: str  # the template browser's title, so the UI file's name
    nodes: list
    groups: list
    files: dict  # file name -> ModelFile, for every model file a node may name
    headline: str = None  # what the thumbnail says the workflow does (the title when None)

    def __post_init__(self):
        present = {n.key for n in self.nodes}
        self.groups = [Group(g.title, [[k for k in col if k in present] for col in g.columns if
                                       any(k in present for k in col)], g.color) for g in self.groups]
        self.check()

    def node(self, key):
        return next(n for n in self.nodes if n.key == key)

    def ids(self):
        return {n.key: i + 1 for i, n in enumerate(self.nodes)}

    def group_of(self, key):
        return next(g for g in self.groups if any(key in col for col in g.columns))

    def model_files(self):
        """[(node, widget name, ModelFile)] for every widget that names a model file."""
        found = []
        for node in self.nodes:
            for widget, folder in node.spec.model_folder.items():
                name = node.widget_values()[widget]
                if name not in self.files or self.files[name].folder != folder:
                    raise ValueError(f"{self.name}: {node.key}.{widget} names '{name}', which has no download "
                                     f"entry for models/{folder}")
                found.append((node, widget, self.files[name]))
        return found

    def check(self):
        keys = [n.key for n in self.nodes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: node keys repeat")
        placed = [k for g in self.groups for col in g.columns for k in col]
        if sorted(placed) != sorted(keys):
            raise ValueError(f"{self.name}: every node must sit in exactly one group column "
                             f"(unplaced: {sorted(set(keys) - set(placed))}, repeated or unknown: "
                             f"{sorted(k for k in set(placed) if placed.count(k) > 1 or k not in keys)})")
        for node in self.nodes:
            spec = node.spec
            unknown = set(node.widgets) - set(spec.widget_names())
            if unknown:
                raise ValueError(f"{self.name}: {node.key} ({node.type}) has no widget {sorted(unknown)}")
            for name, (source, output) in node.sources().items():
                if name not in dict(spec.inputs) and name not in spec.widget_names():
                    raise ValueError(f"{self.name}: {node.key} ({node.type}) has no input '{name}'")
                if source not in keys:
                    raise ValueError(f"{self.name}: {node.key}.{name} links from unknown node '{source}'")
                self.node(source).spec.output_slot(output)
        self.model_files()


def link_list(workflow):
    """[(link id, source key, output slot, target key, input name, type)] in node order."""
    links = []
    for node in workflow.nodes:
        for name, (source, output) in node.sources().items():
            source_node = workflow.node(source)
            slot = source_node.spec.output_slot(output)
            links.append((len(links) + 1, source, slot, node.key, name, source_node.spec.outputs[slot][1]))
    return links


def api_format(workflow):
    ids = workflow.ids()
    links = link_list(workflow)
    prompt = {}
    for node in workflow.nodes:
        if node.spec.virtual:
            continue
        inputs = node.widget_values()
        inputs.update({name: [str(ids[source]), slot] for _, source, slot, target, name, _ in links
                       if target == node.key})
        prompt[str(ids[node.key])] = {"class_type": node.type, "inputs": inputs,
                                      "_meta": {"title": node.title or node.type}}
    return prompt


def ui_format(workflow):
    ids = workflow.ids()
    layout = place(workflow)
    links = link_list(workflow)
    ui_nodes = []
    for order, node in enumerate(workflow.nodes):
        spec = node.spec
        incoming = {link[4]: link for link in links if link[3] == node.key}
        inputs = [{"name": name, "type": kind, "link": incoming[name][0] if name in incoming else None}
                  for name, kind in spec.inputs]
        inputs += [{"name": name, "type": incoming[name][5], "widget": {"name": name}, "link": incoming[name][0]}
                   for name in spec.widget_names() if name in incoming]  # a widget fed by a link
        outputs = [{"name": name, "type": kind, "slot_index": slot,
                    "links": [link[0] for link in links if link[1] == node.key and link[2] == slot]}
                   for slot, (name, kind) in enumerate(spec.outputs)]
        values = list(node.widget_values().values())
        if spec.seeded:
            values.insert(spec.seed_slot() + 1, "fixed")
        x, y, w, h = layout.nodes[node.key]
        ui = {"id": ids[node.key], "type": node.type, "pos": [x, y], "size": [w, h], "flags": {}, "order": order,
              "mode": 0, "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": node.type},
              "widgets_values": values}
        models = [f.entry() for n, _, f in workflow.model_files() if n is node and f.url]
        if models:  # what the frontend's missing-model check reads per node
            ui["properties"]["models"] = models
        if node.title:
            ui["title"] = node.title
        if node.type == "MarkdownNote":
            ui.update(color="#432", bgcolor="#653")
        ui_nodes.append(ui)
    ui_links = []
    for link_id, source, slot, target, name, kind in links:
        target_inputs = next(n["inputs"] for n in ui_nodes if n["id"] == ids[target])
        ui_links.append([link_id, ids[source], slot, ids[target],
                         next(i for i, inp in enumerate(target_inputs) if inp["name"] == name), kind])
    groups = [{"id": i + 1, "title": g.title, "bounding": list(rect), "color": g.color, "font_size": 24,
               "flags": {}} for i, (g, rect) in enumerate(zip(workflow.groups, layout.groups))]
    models = list({f.name: f.entry() for _, _, f in workflow.model_files() if f.url}.values())
    return {"last_node_id": len(ui_nodes), "last_link_id": len(ui_links), "nodes": ui_nodes, "links": ui_links,
            "groups": groups, "config": {}, "extra": {"ds": layout.view, "longcat_first_view": layout.view},
            "version": 0.4, "models": models}
