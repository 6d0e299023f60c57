"""Scene and styles → the whole plotly figure as trace dicts (pure; plotly is not imported).

The figure has a fixed list of traces (``TRACE_*`` in :mod:`._styles`) so the
widget can update one trace's arrays in place:

* one ``lines`` trace for all edges, segments separated by NaN (plotly breaks
  lines at NaN as it does at None, and float arrays validate ~30x faster),
* the selected item's edges, a ring on search matches, a ring on the selection,
* one marker trace for activation quantizers, drawn on the edges they sit on
  (after a node: near the producer on each outgoing edge; before input ``p``:
  near the consumer on that edge), small and grey when off,
* ONE marker trace for nodes (boxes) and collapsed groups (keys in
  ``customdata``), the only one with hover, so it receives every click,
* the labels that fit the current view (a text trace of at most
  :data:`~._labels.LABEL_CAP` points, restyled on zoom), the diff highlight
  ring, and a point-less trace carrying the overlay's colour bar,
* empty traces that only put the colour states and shapes in the legend.

Traces are never added or removed after the figure is built: a front end
that draws late then still meets the same trace list.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np

from nncf_explore.graph.ops import OpCategory
from nncf_explore.widgets._collapse import ViewKey
from nncf_explore.widgets._labels import LABEL_FONT_PX, ViewBox, label_update
from nncf_explore.widgets._points import STATES, QuantState
from nncf_explore.widgets._scene import Scene, edge_xy
from nncf_explore.widgets._styles import (
    COLORSCALE,
    COLOURS,
    EDGE_COLOUR,
    FOCUS_COLOUR,
    MATCH_COLOUR,
    RING_HIGHLIGHT,
    RING_MATCH,
    RING_SELECTED,
    SELECTED_COLOUR,
    SIZE_NODE,
    SIZE_OFF,
    SYMBOL_GROUP,
    SYMBOL_IO,
    SYMBOL_NODE,
    SYMBOL_QUANTIZER,
    Styles,
    TraceDict,
    selection_style,
    styles,
)

VISIBLE_LAYERS = 20
"""Layers shown at first draw (about 32 px each: room for two-line labels); taller graphs are panned."""
HEIGHT_PX = 640
"""The plot's height; its width follows the cell."""
DEFAULT_WIDTH_PX = 900
"""The plot width assumed for fitting labels until the browser reports the real one."""
PLOT_CONFIG = {"scrollZoom": True, "responsive": True, "displaylogo": False}
"""plotly's config: the mouse wheel zooms, the plot follows its container's size."""
MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}
LEGEND_PX = 90


# -- the whole figure ---------------------------------------------------------------


def _symbol(scene: Scene, position: int) -> int:
    item = scene.view.items[position]
    if item.is_group:
        return SYMBOL_GROUP
    io = scene.graph.nodes[int(item.key)].category in (OpCategory.INPUT, OpCategory.OUTPUT)
    return SYMBOL_IO if io else SYMBOL_NODE


def _size(members: tuple[int, ...]) -> float:
    return 16 + min(8.0, 2 * math.log2(len(members)))  # bigger modules, bigger hexagons


def _node_trace(scene: Scene, style: Styles) -> TraceDict:
    items = scene.view.items
    sizes = np.array([_size(i.members) if i.is_group else SIZE_NODE for i in items], dtype=float)
    return {
        "type": scene.trace_type,
        "name": "nodes",
        "x": scene.x,
        "y": scene.y,
        "mode": "markers",
        "customdata": np.array(scene.view.keys, dtype=object),
        "hovertext": style.node_hover,
        "hoverinfo": "text",
        "showlegend": False,
        "marker": {
            "color": style.node_codes,
            "colorscale": COLORSCALE,
            "cmin": 0,
            "cmax": len(STATES) - 1,
            "showscale": False,
            # Sized per point, plotly takes the trace for a bubble chart and
            # draws it at 0.7 opacity: dim on dark backgrounds, pale on light.
            "opacity": 1.0,
            "size": sizes,
            "symbol": np.array([_symbol(scene, k) for k in range(len(items))], dtype=np.int64),
            "line": {"width": 1, "color": "#444444"},
        },
    }


def label_trace(scene: Scene, style: Styles, view: ViewBox) -> TraceDict:
    """The text trace of the labels that fit in ``view`` (no hover: clicks go to the nodes)."""
    return {
        "type": scene.trace_type,
        "name": "labels",
        "mode": "text",
        "textposition": "middle right",
        "textfont": {"size": LABEL_FONT_PX, "color": "#1f1f1f"},
        "hoverinfo": "skip",
        "showlegend": False,
        **label_update(scene.x, scene.y, style.node_labels, view, markup=scene.trace_type == "scatter"),
    }


def _activation_trace(scene: Scene, style: Styles) -> TraceDict:
    return {
        "type": scene.trace_type,
        "name": "activation quantizers",
        "x": scene.markers.x,
        "y": scene.markers.y,
        "mode": "markers",
        # No customdata: the node trace is the one trace that carries ids.
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
            "opacity": 1.0,  # sized per point: a "bubble" trace, 0.7 opaque unless set
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


def _ring_trace(kind: str, name: str, colour: str, ring: dict[str, Any]) -> TraceDict:
    return {
        "type": kind,
        "name": name,
        "x": np.zeros(0),
        "y": np.zeros(0),
        "mode": "markers",
        "marker": {**ring, "color": colour},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def colorbar_trace() -> TraceDict:
    """A point-less trace whose only job is the overlay's colour bar (hidden without an overlay)."""
    return {
        "type": "scatter",
        "name": "overlay",
        "x": [None],
        "y": [None],
        "mode": "markers",
        "hoverinfo": "skip",
        "showlegend": False,
        "visible": False,
        "marker": {
            "color": [0.0, 1.0],
            "colorscale": "Viridis",
            "showscale": False,
            "colorbar": {"thickness": 12, "len": 0.6, "x": 1.0, "xanchor": "left", "title": {"text": ""}},
        },
    }


def legend_traces() -> list[TraceDict]:
    """Empty traces whose only job is a legend entry per colour state and marker shape."""

    def entry(name: str, colour: str, symbol: int | str, size: int = 10) -> TraceDict:
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
        entry("activation quantizer", "#8c8c8c", SYMBOL_QUANTIZER),
        entry("quantizer off", COLOURS["not quantized"], SYMBOL_QUANTIZER, SIZE_OFF),
        entry("module (click to expand)", "#8c8c8c", SYMBOL_GROUP),
        entry("graph input/output", "#8c8c8c", SYMBOL_IO),
        entry("selected", SELECTED_COLOUR, str(RING_SELECTED["symbol"])),
        entry("search match", MATCH_COLOUR, str(RING_MATCH["symbol"])),
    ]


def y_window(scene: Scene, centre: ViewKey | None = None) -> list[float]:
    """The y range to show (reversed, so the graph reads top-down), centred on ``centre`` if given."""
    bottom = float(scene.y.max()) if len(scene.y) else 0.0
    if bottom < VISIBLE_LAYERS:
        return [bottom + 0.5, -0.5]
    top = -0.5
    index = scene.view.index
    if centre is not None and centre in index:
        top = max(-0.5, float(scene.y[index[centre]]) - VISIBLE_LAYERS / 2)
    return [top + VISIBLE_LAYERS, top]


def x_window(scene: Scene) -> list[float]:
    """The x range to show: every node, and at least a few units wide."""
    if not len(scene.x):
        return [-3.0, 3.0]
    low, high = float(scene.x.min()), float(scene.x.max())
    pad = max(1.5, (6 - (high - low)) / 2)
    return [low - pad, high + pad + 3]  # room on the right for the rightmost labels


def figure_layout(scene: Scene) -> dict[str, Any]:
    """The plotly layout dict: hidden axes, top-down, pan by default, legend below the plot.

    The width is left to the browser (``autosize``), so the plot fills its cell;
    the toolbar sits in the top right corner and the legend under the plot, apart.
    """
    return {
        "autosize": True,
        "height": HEIGHT_PX,
        "margin": MARGIN,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "closest",
        "dragmode": "pan",
        "modebar": {"orientation": "h", "bgcolor": "rgba(0,0,0,0)"},
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": -0.01,
            "yanchor": "top",
            "font": {"size": 11},
            "itemclick": False,
            "itemdoubleclick": False,
        },
        "xaxis": {"visible": False, "range": x_window(scene)},
        "yaxis": {"visible": False, "range": y_window(scene)},
    }


def initial_view(scene: Scene, width_px: float = DEFAULT_WIDTH_PX) -> ViewBox:
    """The view at first draw, for fitting the first labels."""
    x0, x1 = x_window(scene)
    y0, y1 = y_window(scene)
    return ViewBox((x0, x1), (y0, y1), width_px - MARGIN["l"] - MARGIN["r"], plot_height(HEIGHT_PX))


def plot_height(height_px: float) -> float:
    """The plot area's height in a figure ``height_px`` tall: the legend below takes about 90 px."""
    return max(height_px - MARGIN["t"] - MARGIN["b"] - LEGEND_PX, 50.0)


def figure_data(
    scene: Scene,
    style: Styles,
    selected: ViewKey | None = None,
    matches: Collection[ViewKey] = (),
    view: ViewBox | None = None,
) -> list[TraceDict]:
    """All traces, in ``TRACE_*`` order, then the legend entries."""
    kind = scene.trace_type
    traces = [
        _line_trace(kind, "edges", edge_xy(scene.layout, scene.view.edges), EDGE_COLOUR, 1.0),
        _line_trace(kind, "selected edges", (np.zeros(0), np.zeros(0)), FOCUS_COLOUR, 2.5),
        _ring_trace(kind, "matches", MATCH_COLOUR, RING_MATCH),
        _ring_trace(kind, "selected", SELECTED_COLOUR, RING_SELECTED),
        _activation_trace(scene, style),
        _node_trace(scene, style),
        label_trace(scene, style, view or initial_view(scene)),
        _ring_trace(kind, "changed", SELECTED_COLOUR, RING_HIGHLIGHT),
        colorbar_trace(),
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
