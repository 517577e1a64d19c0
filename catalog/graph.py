"""An entity's relations as a picture: a server-rendered SVG, no JavaScript needed.

The entity sits in the middle column; the entities it relates to are stacked in a column on
either side, grouped by relation type, each joined to it by an arrow labelled with the
relation types. Every related entity the catalog holds is a link to its page. Stacking
keeps ~40 neighbours readable (the picture grows taller, labels never cross), where a
force layout would tangle them. All text is escaped here: names come from catalog files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from catalog import relations

WIDTH = 1000
NODE_WIDTH = 200
NODE_HEIGHT = 42
GAP = 12
MARGIN = 16
# Columns: related entities left and right, the entity itself in the middle.
LEFT_X = MARGIN
RIGHT_X = WIDTH - MARGIN - NODE_WIDTH
CENTRE_X = (WIDTH - NODE_WIDTH) // 2
# Past this many neighbours the picture stops being readable; the list below it has all.
MAX_NODES = 60
# About how wide a character of the 13px name is, to cut names that would overflow a box.
CHAR_WIDTH = 7.2
NAME_CHARS = int((NODE_WIDTH - 20) / CHAR_WIDTH)

# Relation types drawn on the left: what the entity belongs to, uses or comes from.
LEFT_TYPES = frozenset(
    {
        relations.OWNED_BY,
        relations.PART_OF,
        relations.DEPENDS_ON,
        relations.CONSUMES_API,
        relations.API_PROVIDED_BY,
        relations.MEMBER_OF,
        relations.CHILD_OF,
        relations.TRAINED_ON,
    }
)
# Box colours by kind (fill, border); other kinds are grey.
KIND_COLOURS = {
    "component": ("#e3f0ff", "#2f6fbf"),
    "api": ("#e6f7ec", "#2e8b57"),
    "resource": ("#fff4dc", "#b7791f"),
    "system": ("#f0e8ff", "#6b46c1"),
    "domain": ("#fde8f1", "#b83280"),
    "group": ("#e6fffa", "#2c7a7b"),
    "user": ("#edf2f7", "#4a5568"),
    "model": ("#ffe9e3", "#c05621"),
    "dataset": ("#fefcbf", "#975a16"),
}
DEFAULT_COLOURS = ("#f1f3f5", "#6c757d")


@dataclass(frozen=True)
class Node:
    """One entity in the picture; ``href`` is None when the catalog does not hold it."""

    ref: str
    kind: str
    name: str
    title: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class Edge:
    """The centre entity's relations to ``target``: one arrow, labelled with every type."""

    target: Node
    types: tuple[str, ...]


def relations_svg(
    centre: Node, edges: Sequence[Edge], *, max_nodes: int = MAX_NODES, id_prefix: str = "graph"
) -> Markup:
    """The SVG of ``centre`` and its ``edges``, ready to put in a page as it is."""
    shown = list(edges)[:max_nodes]
    left, right = _columns(shown)
    rows = max(len(left), len(right), 1)
    height = max(rows * (NODE_HEIGHT + GAP) - GAP + 2 * MARGIN, NODE_HEIGHT + 2 * MARGIN)
    centre_y = (height - NODE_HEIGHT) / 2
    title_id, desc_id, arrow_id = f"{id_prefix}-title", f"{id_prefix}-desc", f"{id_prefix}-arrow"
    described = _description(centre, shown, len(edges))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="entity-graph" role="group" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'style="max-width:{WIDTH}px;height:auto" '
        f'aria-labelledby="{title_id}" aria-describedby="{desc_id}" '
        f'font-family="system-ui, sans-serif" data-nodes="{len(shown) + 1}">',
        f'<title id="{title_id}">Relations of {_text(centre.ref)}</title>',
        f'<desc id="{desc_id}">{_text(described)}</desc>',
        "<style>"
        ".entity-graph a{text-decoration:none}"
        ".entity-graph a:focus rect,.entity-graph a:hover rect{stroke-width:3}"
        ".entity-graph a:focus{outline:none}"
        ".entity-graph a:hover .name{text-decoration:underline}"
        "</style>",
        "<defs>"
        f'<marker id="{arrow_id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#868e96"/></marker>'
        "</defs>",
    ]
    for side, column in (("left", left), ("right", right)):
        top = (height - (len(column) * (NODE_HEIGHT + GAP) - GAP)) / 2
        for index, edge in enumerate(column):
            y = top + index * (NODE_HEIGHT + GAP)
            parts.append(_arrow(side, centre_y, y, edge.types, arrow_id))
            x = LEFT_X if side == "left" else RIGHT_X
            parts.append(_box(edge.target, x, y, edge.types))
    parts.append(_box(centre, CENTRE_X, centre_y, (), is_centre=True))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every value in it went through _text)


def _columns(edges: Sequence[Edge]) -> tuple[list[Edge], list[Edge]]:
    """Split the edges between the two columns, keeping each relation type together.

    Each type starts on its side (what the entity belongs to on the left), then the
    smallest groups move over until the columns are about as tall as each other.
    """
    groups: dict[str, list[Edge]] = {}
    for edge in sorted(edges, key=lambda e: (e.types[0] if e.types else "", e.target.ref)):
        groups.setdefault(edge.types[0] if edge.types else "", []).append(edge)
    left = {t: g for t, g in groups.items() if t in LEFT_TYPES}
    right = {t: g for t, g in groups.items() if t not in LEFT_TYPES}

    def size(side: dict[str, list[Edge]]) -> int:
        return sum(len(group) for group in side.values())

    while True:
        bigger, smaller = (left, right) if size(left) > size(right) else (right, left)
        # Moving a group smaller than the difference always narrows it, so this ends.
        movable = [t for t, group in bigger.items() if len(group) < size(bigger) - size(smaller)]
        if not movable:
            break
        moved = min(movable, key=lambda t: (len(bigger[t]), t))
        smaller[moved] = bigger.pop(moved)
    return _flat(left), _flat(right)


def _flat(side: dict[str, list[Edge]]) -> list[Edge]:
    return [edge for relation_type in sorted(side) for edge in side[relation_type]]


def _arrow(side: str, centre_y: float, y: float, types: tuple[str, ...], arrow_id: str) -> str:
    """A curve from the centre box to a neighbour's box, its label just before the head."""
    start_y, end_y = centre_y + NODE_HEIGHT / 2, y + NODE_HEIGHT / 2
    if side == "left":
        start_x, end_x = CENTRE_X, LEFT_X + NODE_WIDTH
        label_x, anchor = end_x + 8, "start"
    else:
        start_x, end_x = CENTRE_X + NODE_WIDTH, RIGHT_X
        label_x, anchor = end_x - 8, "end"
    middle_x = (start_x + end_x) / 2
    label = ", ".join(types)
    return (
        f'<g class="edge" data-types="{_text(label)}">'
        f'<path d="M{start_x:.1f},{start_y:.1f} C{middle_x:.1f},{start_y:.1f} '
        f'{middle_x:.1f},{end_y:.1f} {end_x:.1f},{end_y:.1f}" fill="none" stroke="#adb5bd" '
        f'stroke-width="1.5" marker-end="url(#{arrow_id})"/>'
        f'<text x="{label_x:.1f}" y="{end_y - 6:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#495057" stroke="#fff" stroke-width="3" paint-order="stroke">{_text(label)}</text>'
        "</g>"
    )


def _box(node: Node, x: float, y: float, types: tuple[str, ...], *, is_centre: bool = False) -> str:
    fill, border = KIND_COLOURS.get(node.kind.lower(), DEFAULT_COLOURS)
    shown_name = node.name if len(node.name) <= NAME_CHARS else node.name[: NAME_CHARS - 1] + "…"
    is_missing = node.href is None and not is_centre
    tooltip = node.ref + (f" ({', '.join(types)})" if types else "")
    if node.title and node.title != node.name:
        tooltip = f"{node.title}: {tooltip}"
    if is_missing:
        tooltip += ", not in the catalog"
    # A related entity the catalog does not hold: dashed and white, and not a link.
    dashes = ' stroke-dasharray="4 3"' if is_missing else ""
    box = (
        f"<title>{_text(tooltip)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
        f'fill="{"#fff" if is_missing else fill}" stroke="{border}" '
        f'stroke-width="{2.5 if is_centre else 1.2}"{dashes}/>'
        f'<text x="{x + 10:.1f}" y="{y + 15:.1f}" font-size="10" fill="#495057">'
        f"{_text(node.kind)}</text>"
        f'<text class="name" x="{x + 10:.1f}" y="{y + 32:.1f}" font-size="13" '
        f'font-weight="{700 if is_centre else 600}" fill="#212529">{_text(shown_name)}</text>'
    )
    classes = "node centre" if is_centre else "node"
    if node.href is None or is_centre:
        return f'<g class="{classes}" data-ref="{_text(node.ref)}">{box}</g>'
    return f'<a class="{classes}" href="{_text(node.href)}" data-ref="{_text(node.ref)}">{box}</a>'


def _description(centre: Node, shown: Sequence[Edge], total: int) -> str:
    if not total:
        return f"{centre.ref} has no relations."
    described = f"{centre.ref} and the {total} entities it relates to"
    if len(shown) < total:
        described += f" (the first {len(shown)} are drawn; the list has them all)"
    return described + "; each box links to its entity's page."


def _text(value: str) -> str:
    """Escaped for SVG text and attribute values alike."""
    return escape(value, quote=True)
