"""The static part of a drawing: positions, captions and quantizer marker spots (pure).

A :class:`Scene` depends on the visible graph, its layout and the default
setup, never on the current setup, so it is built once per expand/collapse
and every recolour reuses it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import ModuleTree, ViewKey, VisibleEdge, VisibleGraph
from nncf_explore.widgets._layered import Layout, Point
from nncf_explore.widgets._points import PointIndex

GL_ABOVE = 1500
"""Graphs of more nodes draw in WebGL (``scattergl``): SVG zoom gets slow past this many items."""
MARKER_OFFSET = 0.35
"""How far along its edge's end segment a quantizer marker sits, from the end it belongs to.

Far enough to clear the node's marker, short of the middle so an output
quantizer and the next op's input quantizer on the same edge do not meet."""


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
        """``scattergl`` for big graphs, ``scatter`` otherwise.

        Decided by the whole graph, not by what is visible, so that expanding and
        collapsing modules never changes the type (hence the list) of the figure's
        traces: they are only ever updated in place.
        """
        return "scattergl" if len(self.graph) > GL_ABOVE else "scatter"


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
