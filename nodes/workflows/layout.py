"""Where every node goes: groups side by side, left to right; in each group, columns left to right; in each column,
nodes top to bottom with room for the title bar and the pack badge the frontend draws above a node. Sizes follow
the frontend's own rules (LiteGraph's computeSize: 20 px per slot row, 24 px per widget). The saved view shows the
first group whole and readable on a 1600x1000 window."""
import math
import re
from dataclasses import dataclass

TITLE_H = 30  # LiteGraph.NODE_TITLE_HEIGHT, drawn above a node's pos (and a group's title bar)
BADGE_H = 24  # the pack badge ("comfyui-longcat-video") sits above a custom node's title
SLOT_H = 20  # LiteGraph.NODE_SLOT_HEIGHT
WIDGET_H = 24  # one widget row with its margin
MIN_WIDTH = 270  # what the frontend gives a new node with widgets
TITLE_CHAR = 7.5  # average glyph width of the 14 px title font (Inter)
WIDGET_CHAR = 6.5  # glyph width of the 12 px widget font, on the wide side (file names: m, w, _)
ROW_GAP = 20  # air between a node and the next one's badge
COLUMN_GAP = 80  # room for links between columns
GROUP_PAD = 24
GROUP_GAP = 60

# The window the saved view is made for, and the part of it the frontend's panels leave free: the sidebar takes
# the left 60 px, the tab bar and the floating menus the top 95 px; the minimap and the error toasts sit at the
# right (measured on ComfyUI 0.33's frontend 1.49 and 0.8.0's 1.35 at 1600x1000).
WINDOW = (1600, 1000)
CLEAR = (80, 100, 1330, 980)  # left, top, right, bottom
READABLE_SCALE = 0.75  # node text stays >= 10 px; the frontend stops drawing text below about 0.57


@dataclass
class Layout:
    nodes: dict  # key -> [x, y, width, height] (y is the body's top; the title bar lies above it)
    groups: list  # [x, y, width, height] per group, in the workflow's order
    view: dict  # the saved canvas view: {"scale", "offset"}


def node_height(node, width):
    if node.height:
        return node.height
    if node.type == "MarkdownNote":
        return markdown_height(node.widget_values()["text"], width)
    spec = node.spec
    rows = max(len(spec.inputs), len(spec.outputs))  # a linked widget keeps its widget row
    widgets = len(spec.widgets) + spec.seeded + spec.newer_widgets
    return rows * SLOT_H + (widgets * WIDGET_H + 14 if widgets else 6)


def markdown_height(text, width):
    """About how tall the frontend renders `text` (11 px text on 14 px lines, headings 30 px) in a note `width`
    wide, with a little room to spare."""
    per_line = (width - 40) / 5.2
    height = 40
    for block in text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("#"):
                height += 30
                continue
            shown = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", line)  # a link shows its text only
            height += math.ceil(len(shown) / per_line) * 15
        height += 12
    return math.ceil(height / 10) * 10


def node_width(node):
    spec = node.spec
    title = node.title or node.type
    texts = [len(title) * TITLE_CHAR + 60]
    for name, value in node.widget_values().items():
        text = str(value)
        if len(text) <= 60:  # longer texts are multi-line boxes that wrap
            texts.append((len(name) + len(text)) * WIDGET_CHAR + 95)
    for row in range(max(len(spec.inputs), len(spec.outputs))):
        left = spec.inputs[row][0] if row < len(spec.inputs) else ""
        right = spec.outputs[row][0] if row < len(spec.outputs) else ""
        texts.append((len(left) + len(right)) * WIDGET_CHAR + 80)
    return max(MIN_WIDTH if spec.widgets else 0, math.ceil(max(texts) / 10) * 10)


def node_top_space(node):
    """Height above a node's pos that belongs to it: the title bar and room for a node badge (notes have none)."""
    return TITLE_H + (0 if node.spec.virtual else BADGE_H)


def place(workflow):
    nodes, groups = {}, []
    x = 0
    columns_of = [[[workflow.node(k) for k in col] for col in g.columns] for g in workflow.groups]
    content_top = TITLE_H + GROUP_PAD  # below the group's title bar
    heights = []
    for columns in columns_of:
        group_x, col_x = x, x + GROUP_PAD
        bottom = content_top
        for column in columns:
            width = max(node_width(n) for n in column)
            y = content_top
            for node in column:
                y += node_top_space(node)
                height = node_height(node, width)
                nodes[node.key] = [col_x, y, width, height]
                y += height + ROW_GAP
            bottom = max(bottom, y - ROW_GAP)
            col_x += width + COLUMN_GAP
        right = col_x - COLUMN_GAP + GROUP_PAD
        groups.append([group_x, 0, right - group_x, 0])
        heights.append(bottom + GROUP_PAD)
        x = right + GROUP_GAP
    for rect in groups:  # one row of groups of one height reads as one pipeline
        rect[3] = max(heights)
    layout = Layout(nodes, groups, first_group_view(groups[0]))
    check_left_to_right(workflow, layout)
    return layout


def first_group_view(rect):
    """Scale and offset that put the group, whole, at the top left of the window's free part."""
    left, top, right, bottom = CLEAR
    x, y, width, height = rect
    scale = math.floor(min(1.0, (right - left) / width, (bottom - top) / height) * 100) / 100
    return {"scale": scale, "offset": [round(left / scale - x, 1), round(top / scale - y, 1)]}


def check_readable(workflow, layout):
    """The shipped workflows' promise: the first view shows the first group at a zoom where text reads."""
    if layout.view["scale"] < READABLE_SCALE:
        x, y, width, height = layout.groups[0]
        raise ValueError(f"{workflow.name}: the first group ({width:.0f} x {height:.0f}) does not fit the first "
                         f"view at a readable zoom ({layout.view['scale']} < {READABLE_SCALE}): split it or move "
                         "nodes to the next group")


def check_left_to_right(workflow, layout):
    """Every link leaves a node on the right and enters one further right."""
    for node in workflow.nodes:
        for name, (source, _) in node.sources().items():
            sx, _, sw, _ = layout.nodes[source]
            if layout.nodes[node.key][0] < sx + sw:
                raise ValueError(f"{workflow.name}: the link {source} -> {node.key}.{name} runs right to left: "
                                 f"put {node.key} in a column after {source}'s")
