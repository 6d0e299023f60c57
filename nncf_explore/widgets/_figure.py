"""Graph, layout and quantizer state → plotly trace dicts (pure; plotly is not imported).

The figure has a fixed list of traces (see ``TRACE_*``) so the widget can
update one trace's arrays in place:

* one ``lines`` trace for all edges, segments separated by NaN (plotly breaks
  lines at NaN as it does at None, and float arrays validate ~30x faster),
* the selected item's edges, a ring on search matches, a ring on the selection,
* one marker trace for activation quantizers, drawn on the edges they sit on
  (after a node: near the producer on each outgoing edge; before input ``p``:
  near the consumer on that edge), small and grey when off,
* ONE marker trace for nodes and collapsed groups (keys in ``customdata``),
  last so it is on top and receives clicks,
* empty traces that only put the colour states in the legend.

Colours are indices into :data:`~._points.STATES` mapped through a discrete
colour scale, symbols are plotly's symbol numbers and hover texts are numpy
object arrays: plotly validates such arrays in bulk, while lists of colour or
symbol names are checked element by element (about 20x slower at 5,000 points).
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.widgets._collapse import ModuleTree, ViewKey, VisibleEdge, VisibleGraph
from nncf_explore.widgets._layout import Layout, Point
from nncf_explore.widgets._points import STATES, PointIndex, QuantState

TraceDict = dict[str, Any]

TRACE_EDGES, TRACE_FOCUS, TRACE_MATCHES, TRACE_SELECTED, TRACE_ACTIVATIONS, TRACE_NODES = range(6)
GL_ABOVE = 1500
"""Above this many visible items the traces are WebGL (``scattergl``); SVG zoom gets slow past it."""
LABELS_AT_MOST = 60
"""Nodes carry text labels only when this few are visible."""
VISIBLE_LAYERS = 28
"""Layers shown at first draw; taller graphs open at the top and are panned."""
MARKER_OFFSET = 0.35
"""How far along its edge's end segment a quantizer marker sits, from the end it belongs to.

Far enough to clear the node's marker, short of the middle so an output
quantizer and the next op's input quantizer on the same edge do not meet."""

COLOURS = {
    "no weights": "#d9d9d9",
    "not quantized": "#7f7f7f",
    "8-bit": "#2ca02c",
    "4-bit": "#d62728",
    "other bits": "#9467bd",
    "mixed": "#ff7f0e",
}
COLORSCALE = [[i / (len(STATES) - 1), COLOURS[s]] for i, s in enumerate(STATES)]
SYMBOL_NODE, SYMBOL_GROUP, SYMBOL_QUANTIZER = 0, 1, 2  # plotly's numbers for circle, square, diamond
SIZE_ON, SIZE_OFF = 9, 6
EDGE_COLOUR, FOCUS_COLOUR, MATCH_COLOUR, SELECTED_COLOUR = "#b8b8b8", "#1f77b4", "#ff7f0e", "#111111"


def colour_of(code: int) -> str:
    """The colour drawn for a state code.

    Example:
        >>> colour_of(STATES.index("4-bit"))
        '#d62728'
    """
    return COLOURS[STATES[code]]


@dataclass(frozen=True)
class ActivationMarkers:
    """Where activation quantizers are drawn: one marker per (quantizer, visible edge)."""

    qids: tuple[str, ...]
    node_ids: tuple[int, ...]  # the node each quantizer is attached to
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Scene:
    """Everything about a drawing that does not change with the quantizer setup."""

    graph: Graph
    tree: ModuleTree
    view: VisibleGraph
    layout: Layout
    x: np.ndarray
    y: np.ndarray
    captions: tuple[str, ...]
    markers: ActivationMarkers
    items_of: Mapping[str, tuple[int, ...]]  # quantizer id -> positions of the items it shows on
    markers_of: Mapping[str, tuple[int, ...]]  # quantizer id -> positions of its markers

    @property
    def trace_type(self) -> str:
        """``scattergl`` for big views, ``scatter`` otherwise."""
        return "scattergl" if len(self.view.items) > GL_ABOVE else "scatter"


def build_scene(
    graph: Graph, tree: ModuleTree, view: VisibleGraph, layout: Layout, index: PointIndex
) -> Scene:
    """The static part of a drawing of ``view`` laid out by ``layout``."""
    xy = [layout.positions[k] for k in view.keys]
    captions = tuple(
        _group_caption(tree, str(item.key), len(item.members))
        if item.is_group
        else _node_caption(graph, int(item.key))
        for item in view.items
    )
    markers = activation_markers(graph, view, layout, index)
    items_of: dict[str, list[int]] = {}
    for i, item in enumerate(view.items):
        qids = (
            index.related.get(int(item.key), ())
            if not item.is_group
            else (q for m in item.members for q in index.attached.get(m, ()))
        )
        for q in qids:
            items_of.setdefault(q, []).append(i)
    markers_of: dict[str, list[int]] = {}
    for j, q in enumerate(markers.qids):
        markers_of.setdefault(q, []).append(j)
    return Scene(
        graph,
        tree,
        view,
        layout,
        np.array([p[0] for p in xy], dtype=float),
        np.array([p[1] for p in xy], dtype=float),
        captions,
        markers,
        {q: tuple(v) for q, v in items_of.items()},
        {q: tuple(v) for q, v in markers_of.items()},
    )


def _node_caption(graph: Graph, node_id: int) -> str:
    node = graph.nodes[node_id]
    out = graph.out_edges(node_id)
    shape = f"<br>out: {list(out[0].shape)}" if out else ""
    module = f"{node.module} ({node.module_class})" if node.module else "(root)"
    return (
        f"<b>{html.escape(node.name)}</b><br>op: {html.escape(node.op)} ({node.category.value})"
        f"<br>module: {html.escape(module)}{shape}"
    )


def _group_caption(tree: ModuleTree, group: str, size: int) -> str:
    return f"<b>{html.escape(tree.label(group))}</b><br>{size} nodes, click to expand"


def _along(path: Sequence[Point], near_start: bool) -> Point:
    (x0, y0), (x1, y1) = (path[0], path[1]) if near_start else (path[-1], path[-2])
    return (x0 + MARKER_OFFSET * (x1 - x0), y0 + MARKER_OFFSET * (y1 - y0))


def activation_markers(
    graph: Graph, view: VisibleGraph, layout: Layout, index: PointIndex
) -> ActivationMarkers:
    """Marker positions of every activation point of ``index`` on the visible edges.

    Edges hidden inside a collapsed group carry no marker; the group's summary counts them.
    """
    ids = {n.name: n.id for n in graph.nodes}
    qids: list[str] = []
    nodes: list[int] = []
    xy: list[Point] = []
    for p in index.default.activations:
        target = ids.get(p.target_node)
        if target is None:
            continue
        if p.input_port is None:
            edges = graph.out_edges(target)
        else:
            edges = tuple(e for e in graph.in_edges(target) if e.in_port == p.input_port)
        seen: set[tuple[ViewKey, ViewKey]] = set()
        for e in edges:
            pair = (view.rep[e.src], view.rep[e.dst])
            if pair[0] == pair[1] or pair in seen:
                continue
            seen.add(pair)
            qids.append(p.id)
            nodes.append(target)
            xy.append(_along(layout.path(*pair), near_start=p.input_port is None))
    return ActivationMarkers(
        tuple(qids), tuple(nodes), np.array([p[0] for p in xy], float), np.array([p[1] for p in xy], float)
    )


def edge_xy(layout: Layout, edges: Iterable[VisibleEdge]) -> tuple[np.ndarray, np.ndarray]:
    """x and y arrays of edge polylines, one NaN between edges."""
    xs: list[float] = []
    ys: list[float] = []
    for e in edges:
        for x, y in layout.path(e.src, e.dst):
            xs.append(x)
            ys.append(y)
        xs.append(math.nan)
        ys.append(math.nan)
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


# -- state-dependent styles ---------------------------------------------------------


def point_line(point: QuantizationPoint, node: Node, on: bool) -> str:
    """One quantizer as a hover/panel line, e.g. ``"W: B:8 M:S SGN:S PC:Y NR:Y"``.

    Example:
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


def _item_style(scene: Scene, state: QuantState, position: int) -> tuple[int, str]:
    item = scene.view.items[position]
    caption = scene.captions[position]
    if item.is_group:
        return state.node_state(item.members), f"{caption}<br>{state.summary(item.members)}"
    node = scene.graph.nodes[int(item.key)]
    qids = state.index.related.get(node.id, ())
    lines = [point_line(state.point(q), node, state.is_on(q)) for q in qids] or ["no quantizers"]
    return state.node_state(item.members), caption + "<br>" + "<br>".join(html.escape(line) for line in lines)


def _marker_style(state: QuantState, qid: str) -> tuple[int, float, str]:
    on = state.is_on(qid)
    label = state.point(qid).spec.label() if on else "off"
    return state.point_state(qid), SIZE_ON if on else SIZE_OFF, f"{html.escape(qid)}<br>{label}"


@dataclass(frozen=True)
class Styles:
    """The setup-dependent arrays of the node and activation traces."""

    node_codes: np.ndarray
    node_hover: np.ndarray
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
        np.array([c for c, _ in nodes], dtype=float),
        np.array([h for _, h in nodes], dtype=object),
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
        after.node_codes[i], after.node_hover[i] = _item_style(scene, state, i)
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
    chosen = [index[selected]] if selected in index else []
    around = [e for e in scene.view.edges if selected in (e.src, e.dst)] if chosen else []
    fx, fy = edge_xy(scene.layout, around)
    return {
        TRACE_FOCUS: {"x": fx, "y": fy},
        TRACE_MATCHES: {"x": scene.x[hits], "y": scene.y[hits]},
        TRACE_SELECTED: {"x": scene.x[chosen], "y": scene.y[chosen]},
    }


# -- the whole figure ---------------------------------------------------------------


def _node_trace(scene: Scene, style: Styles) -> TraceDict:
    items = scene.view.items
    labels = None
    if len(items) <= LABELS_AT_MOST:
        labels = [
            str(i.key) if i.is_group else scene.graph.nodes[int(i.key)].name.rsplit("/", 1)[-1] for i in items
        ]
    sizes = [12 + min(6.0, math.log2(len(i.members))) if i.is_group else 10 for i in items]
    return {
        "type": scene.trace_type,
        "name": "nodes",
        "x": scene.x,
        "y": scene.y,
        "mode": "markers+text" if labels else "markers",
        "text": labels,
        "textposition": "middle right",
        "textfont": {"size": 9, "color": "#444"},
        "customdata": np.array(scene.view.keys, dtype=object),
        "hovertext": style.node_hover,
        "hoverinfo": "text",
        "showlegend": False,
        "marker": {
            "color": style.node_codes,
            "colorscale": COLORSCALE,
            "cmin": 0,
            "cmax": len(STATES) - 1,
            "size": sizes,
            "symbol": [SYMBOL_GROUP if i.is_group else SYMBOL_NODE for i in items],
            "line": {"width": 0.5, "color": "#555"},
        },
    }


def _activation_trace(scene: Scene, style: Styles) -> TraceDict:
    return {
        "type": scene.trace_type,
        "name": "activation quantizers",
        "x": scene.markers.x,
        "y": scene.markers.y,
        "mode": "markers",
        "customdata": np.array(scene.markers.node_ids, dtype=int),
        "hovertext": style.marker_hover,
        "hoverinfo": "text",
        "showlegend": False,
        "marker": {
            "color": style.marker_codes,
            "size": style.marker_sizes,
            "colorscale": COLORSCALE,
            "cmin": 0,
            "cmax": len(STATES) - 1,
            "symbol": SYMBOL_QUANTIZER,
            "line": {"width": 1, "color": "#555"},
        },
    }


def _line_trace(
    kind: str, name: str, xy: tuple[np.ndarray, np.ndarray], colour: str, width: float
) -> TraceDict:
    return {
        "type": kind,
        "name": name,
        "x": xy[0],
        "y": xy[1],
        "mode": "lines",
        "line": {"color": colour, "width": width},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def _ring_trace(kind: str, name: str, colour: str, size: int) -> TraceDict:
    return {
        "type": kind,
        "name": name,
        "x": np.zeros(0),
        "y": np.zeros(0),
        "mode": "markers",
        "marker": {"symbol": "circle-open", "size": size, "color": colour, "line": {"width": 3}},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def legend_traces() -> list[TraceDict]:
    """Empty traces whose only job is a legend entry per colour state and marker shape."""

    def entry(name: str, colour: str, symbol: int, size: int = 10) -> TraceDict:
        return {
            "type": "scatter",
            "name": name,
            "x": [None],
            "y": [None],
            "mode": "markers",
            "marker": {"color": colour, "symbol": symbol, "size": size},
            "hoverinfo": "skip",
            "showlegend": True,
        }

    return [
        *(entry(s, COLOURS[s], SYMBOL_NODE) for s in STATES),
        entry("activation quantizer", "#555", SYMBOL_QUANTIZER),
        entry("quantizer off", COLOURS["not quantized"], SYMBOL_QUANTIZER, SIZE_OFF),
        entry("module (click to expand)", "#555", SYMBOL_GROUP),
    ]


def y_window(scene: Scene, centre: ViewKey | None = None) -> list[float]:
    """The y range to show (reversed, so the graph reads top-down), centred on ``centre`` if given."""
    bottom = float(scene.y.max()) if len(scene.y) else 0.0
    if bottom < VISIBLE_LAYERS:
        return [bottom + 0.5, -0.5]
    top = -0.5
    index = scene.view.index
    if centre in index:
        top = max(-0.5, float(scene.y[index[centre]]) - VISIBLE_LAYERS / 2)
    return [top + VISIBLE_LAYERS, top]


def x_window(scene: Scene) -> list[float]:
    """The x range to show: every node, and at least a few units wide."""
    if not len(scene.x):
        return [-3.0, 3.0]
    low, high = float(scene.x.min()), float(scene.x.max())
    pad = max(1.5, (6 - (high - low)) / 2)
    return [low - pad, high + pad + 4]  # room on the right for text labels


def figure_layout(scene: Scene) -> dict[str, Any]:
    """The plotly layout dict: hidden axes, top-down, pan by default, legend on top."""
    return {
        "height": 640,
        "width": 760,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "plot_bgcolor": "white",
        "hovermode": "closest",
        "dragmode": "pan",
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 10},
            "itemclick": False,
            "itemdoubleclick": False,
        },
        "xaxis": {"visible": False, "range": x_window(scene)},
        "yaxis": {"visible": False, "range": y_window(scene)},
    }


def figure_data(
    scene: Scene, style: Styles, selected: ViewKey | None = None, matches: Collection[ViewKey] = ()
) -> list[TraceDict]:
    """All traces, in ``TRACE_*`` order, then the legend entries."""
    kind = scene.trace_type
    traces = [
        _line_trace(kind, "edges", edge_xy(scene.layout, scene.view.edges), EDGE_COLOUR, 1.0),
        _line_trace(kind, "selected edges", (np.zeros(0), np.zeros(0)), FOCUS_COLOUR, 2.5),
        _ring_trace(kind, "matches", MATCH_COLOUR, 18),
        _ring_trace(kind, "selected", SELECTED_COLOUR, 22),
        _activation_trace(scene, style),
        _node_trace(scene, style),
    ]
    for i, update in selection_style(scene, selected, matches).items():
        traces[i].update(update)
    return traces + legend_traces()


def figure_dict(
    scene: Scene, state: QuantState, selected: ViewKey | None = None, matches: Collection[ViewKey] = ()
) -> dict[str, Any]:
    """The whole figure as a dict, ready for ``go.FigureWidget(figure_dict(...))``."""
    return {
        "data": figure_data(scene, styles(scene, state), selected, matches),
        "layout": figure_layout(scene),
    }
