"""The setup-dependent part of a drawing: colours, sizes and hover texts (pure).

Colours are indices into :data:`~._points.STATES` mapped through a discrete
colour scale, and hover texts are numpy object arrays: plotly validates such
arrays in bulk, while lists of colour names are checked element by element
(about 20x slower at 5,000 points).  After an edit only the items touched by
the changed quantizers are recomputed (:func:`restyled`).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.widgets._collapse import ViewKey
from nncf_explore.widgets._labels import badge, label_text, node_title
from nncf_explore.widgets._points import STATES, QuantState
from nncf_explore.widgets._scene import Scene, edge_xy

TraceDict = dict[str, Any]
(
    TRACE_EDGES,
    TRACE_FOCUS,
    TRACE_MATCHES,
    TRACE_SELECTED,
    TRACE_ACTIVATIONS,
    TRACE_NODES,
    TRACE_LABELS,
    TRACE_HIGHLIGHT,
    TRACE_COLORBAR,
) = range(9)
TRACE_LEGEND = TRACE_COLORBAR + 1
"""The first legend-only trace: one per state, in ``STATES`` order, then the marker shapes."""
LEGEND_RINGS = (TRACE_LEGEND + len(STATES) + 4, TRACE_LEGEND + len(STATES) + 5)
"""The legend entries of the selection and match rings (drawn in the theme's ring colour)."""
"""Positions of the traces in the figure (legend-only traces follow)."""

COLOURS = {
    "no weights": "#d9d9d9",
    "not quantized": "#8c8c8c",
    # Okabe & Ito's palette, which readers with any common colour-vision
    # deficiency can tell apart; neighbouring widths get far-apart hues.
    "2-bit": "#CC79A7",
    "3-bit": "#D55E00",
    "4-bit": "#E69F00",
    "5-bit": "#F0E442",
    "6-bit": "#56B4E9",
    "7-bit": "#0072B2",
    "8-bit": "#009E73",
    "other bits": "#7a5195",
    "mixed": "#000000",
}
"""Colour per state in the light theme; :mod:`._theme` swaps the few that would vanish on dark."""
COLORSCALE = [[i / (len(STATES) - 1), COLOURS[s]] for i, s in enumerate(STATES)]


def colorscale(colours: Mapping[str, str]) -> list[list[float | str]]:
    """A discrete plotly colour scale mapping state codes to ``colours``."""
    return [[i / (len(STATES) - 1), colours[s]] for i, s in enumerate(STATES)]


SYMBOL_NODE, SYMBOL_GROUP, SYMBOL_IO, SYMBOL_QUANTIZER = 1, 14, 0, 2
"""plotly's numbers for square, hexagon, circle and diamond (numbers validate in bulk, names one by one).

Nodes are boxes, collapsed modules hexagons, graph inputs and outputs round
pills, activation quantizers diamonds on the edges."""
SIZE_NODE = 14
SIZE_ON, SIZE_OFF = 9, 6
EDGE_COLOUR, FOCUS_COLOUR, MATCH_COLOUR, SELECTED_COLOUR = "#b8b8b8", "#1f77b4", "#111111", "#111111"
# Selection, search matches and diff highlights are told apart by shape and
# line weight, never by colour: colour belongs to the bit widths (or overlay).
RING_SELECTED = {"symbol": "square-open", "size": 26, "line": {"width": 3.5}}
RING_MATCH = {"symbol": "circle-open", "size": 22, "line": {"width": 1.5}}
RING_HIGHLIGHT = {"symbol": "diamond-open", "size": 32, "line": {"width": 2}}


def colour_of(code: int) -> str:
    """The colour drawn for a state code.

    Examples:
        >>> colour_of(STATES.index("4-bit"))
        '#E69F00'
    """
    return COLOURS[STATES[code]]


def point_line(point: QuantizationPoint, node: Node, on: bool) -> str:
    """One quantizer as a hover/panel line, e.g. ``"W: B:8 M:S SGN:S PC:Y NR:Y"``.

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> from nncf_explore.graph.ops import OpCategory
        >>> n = Node(1, "Net/relu_0", "relu", OpCategory.ACTIVATION, "Net", "", "Net")
        >>> point_line(QuantizationPoint("activation", "Net/relu_0", None, QuantizerSpec()), n, True)
        'A out: B:8 M:S SGN:ANY PC:N NR:N'
    """
    if point.kind == "weight":
        where = "W"
    elif point.target_node != node.name:
        where = f"A in (after {point.target_node.rsplit('/', 1)[-1]})"
    elif point.input_port is None:
        where = "A out"
    else:
        where = f"A in{point.input_port}"
    return f"{where}: {point.spec.label() if on else 'off'}"


def _bits_of(state: QuantState, qids: Iterable[str]) -> tuple[list[int], list[int]]:
    on = [state.current.get(q) for q in qids if state.is_on(q)]
    return [p.spec.bits for p in on if p.kind == "weight"], [p.spec.bits for p in on if p.kind != "weight"]


def _item_style(scene: Scene, state: QuantState, position: int) -> tuple[int, str, str]:
    item = scene.view.items[position]
    caption = scene.captions[position]
    code = state.node_state(item.members)
    if item.is_group:
        group = str(item.key)
        qids = [q for m in item.members for q in state.index.attached.get(m, ())]
        detail = scene.tree.classes.get(group, "module")
        label = label_text(group, f"{detail}, {len(item.members)} nodes", badge(*_bits_of(state, qids)))
        return code, f"{caption}<br>{state.summary(item.members)}", label
    node = scene.graph.nodes[int(item.key)]
    qids = state.index.related.get(node.id, [])
    lines = [point_line(state.point(q), node, state.is_on(q)) for q in qids] or ["no quantizers"]
    hover = caption + "<br>" + "<br>".join(html.escape(line) for line in lines)
    detail = "" if node.category in (OpCategory.INPUT, OpCategory.OUTPUT) else node.op
    return code, hover, label_text(node_title(node), detail, badge(*_bits_of(state, qids)))


def _marker_style(state: QuantState, qid: str) -> tuple[int, float, str]:
    on = state.is_on(qid)
    label = state.point(qid).spec.label() if on else "off"
    return state.point_state(qid), SIZE_ON if on else SIZE_OFF, f"{html.escape(qid)}<br>{label}"


@dataclass(frozen=True)
class Styles:
    """The setup-dependent arrays of the node and activation traces."""

    node_codes: np.ndarray
    node_hover: np.ndarray
    node_labels: np.ndarray
    marker_codes: np.ndarray
    marker_sizes: np.ndarray
    marker_hover: np.ndarray

    def node_update(self) -> TraceDict:
        """The node trace's properties."""
        return {"marker": {"color": self.node_codes}, "hovertext": self.node_hover}

    def marker_update(self) -> TraceDict:
        """The activation trace's properties."""
        return {
            "marker": {"color": self.marker_codes, "size": self.marker_sizes},
            "hovertext": self.marker_hover,
        }


def styles(scene: Scene, state: QuantState) -> Styles:
    """Colours, sizes and hover texts of every node and activation marker for ``state``."""
    nodes = [_item_style(scene, state, i) for i in range(len(scene.view.items))]
    markers = [_marker_style(state, q) for q in scene.markers.qids]
    return Styles(
        np.array([c for c, _, _ in nodes], dtype=float),
        np.array([h for _, h, _ in nodes], dtype=object),
        np.array([t for _, _, t in nodes], dtype=object),
        np.array([c for c, _, _ in markers], dtype=float),
        np.array([s for _, s, _ in markers], dtype=float),
        np.array([h for _, _, h in markers], dtype=object),
    )


def restyled(scene: Scene, state: QuantState, before: Styles, changed: Iterable[str]) -> Styles:
    """``before`` with only the entries touched by the ``changed`` quantizers recomputed.

    Equal to ``styles(scene, state)`` when ``changed`` lists every point whose
    presence or spec differs; the cost follows the size of the edit, not the graph.
    """
    changed = list(changed)
    after = Styles(*(a.copy() for a in dataclasses.astuple(before)))
    for i in sorted({i for q in changed for i in scene.items_of.get(q, ())}):
        after.node_codes[i], after.node_hover[i], after.node_labels[i] = _item_style(scene, state, i)
    for j in sorted({j for q in changed for j in scene.markers_of.get(q, ())}):
        after.marker_codes[j], after.marker_sizes[j], after.marker_hover[j] = _marker_style(
            state, scene.markers.qids[j]
        )
    return after


def changed_quantizers(old: QuantizerSetup, new: QuantizerSetup) -> set[str]:
    """Ids of points added, removed or re-specified between two setups.

    Points are immutable and edits reuse the untouched ones, so only points
    that are not the very same object in both setups are compared.
    """
    old_objects = {id(p) for p in old.points}
    new_objects = {id(p) for p in new.points}
    before = {p.id: p.spec for p in old.points if id(p) not in new_objects}
    after = {p.id: p.spec for p in new.points if id(p) not in old_objects}
    return {q for q in before.keys() | after.keys() if before.get(q) != after.get(q)}


def selection_style(
    scene: Scene, selected: ViewKey | None, matches: Collection[ViewKey]
) -> dict[int, TraceDict]:
    """Updates of the focus, match and selection traces, by trace index."""
    index = scene.view.index
    hits = [index[k] for k in matches if k in index]
    chosen = [index[selected]] if selected is not None and selected in index else []
    around = [e for e in scene.view.edges if selected in (e.src, e.dst)] if chosen else []
    fx, fy = edge_xy(scene.layout, around)
    return {
        TRACE_FOCUS: {"x": fx, "y": fy},
        TRACE_MATCHES: {"x": scene.x[hits], "y": scene.y[hits]},
        TRACE_SELECTED: {"x": scene.x[chosen], "y": scene.y[chosen]},
    }
