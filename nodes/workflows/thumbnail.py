"""The template browser's thumbnail of a workflow, drawn from its layout: the title, a miniature of the graph
(groups in their colours, nodes, links) and the stage list. Pillow comes with ComfyUI; only the workflow builder
draws thumbnails."""
import textwrap

from PIL import Image, ImageDraw, ImageFont

from .graph import link_list
from .layout import place

SIZE = 512  # the browser shows a square card
MARGIN = 28
BACKGROUND = (32, 32, 34)
NODE = (78, 78, 84)
TEXT = (235, 235, 235)
MUTED = (160, 160, 168)


def colour(hex_colour):
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def font(size):
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font: the same on every machine


def draw_thumbnail(workflow, path):
    image = Image.new("RGB", (SIZE, 2 * SIZE), BACKGROUND)  # drawn top-down, then centred on the card
    draw = ImageDraw.Draw(image)
    y = MARGIN
    draw.text((MARGIN, y), "LongCat-Video", font=font(20), fill=colour("#3f789e"))
    y += 32
    for line in textwrap.wrap(workflow.headline or workflow.title, 26):
        draw.text((MARGIN, y), line, font=font(32), fill=TEXT)
        y += 40
    y += 16
    y = draw_graph(draw, workflow, y)
    y += 22
    for group in workflow.groups:
        draw.rounded_rectangle((MARGIN, y + 4, MARGIN + 14, y + 18), 3, fill=colour(group.color))
        for i, line in enumerate(textwrap.wrap(group.title, 46)[:2]):
            draw.text((MARGIN + 24, y), line, font=font(17), fill=TEXT if i == 0 else MUTED)
            y += 21
        y += 9
    card = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    content = min(round(y), SIZE)
    card.paste(image.crop((0, 0, SIZE, content)), (0, (SIZE - content) // 2))
    card.save(path, "JPEG", quality=90, optimize=True)


def draw_graph(draw, workflow, top):
    """The groups, nodes and links scaled to the card's width; returns the bottom edge."""
    layout = place(workflow)
    left_edge = min(g[0] for g in layout.groups)
    right_edge = max(g[0] + g[2] for g in layout.groups)
    height = max(g[3] for g in layout.groups)
    scale = (SIZE - 2 * MARGIN) / (right_edge - left_edge)

    def at(x, y):
        return MARGIN + (x - left_edge) * scale, top + y * scale

    for group, (x, y, w, h) in zip(workflow.groups, layout.groups):
        fill = mix(BACKGROUND, colour(group.color), 0.35)
        draw.rounded_rectangle((*at(x, y), *at(x + w, y + h)), 4, fill=fill, outline=colour(group.color))
    for _, source, _, target, _, _ in link_list(workflow):
        sx, sy, sw, _ = layout.nodes[source]
        tx, ty, _, _ = layout.nodes[target]
        draw.line((*at(sx + sw, sy + 10), *at(tx, ty + 10)), fill=mix(BACKGROUND, TEXT, 0.45), width=1)
    for x, y, w, h in layout.nodes.values():
        draw.rounded_rectangle((*at(x, y - 30), *at(x + w, y + h)), 2, fill=NODE)
    return top + height * scale
