"""Scene and styles → the whole plotly figure as trace dicts (pure; plotly is not imported).

The figure has a fixed list of traces (``TRACE_*`` in :mod:`._styles`) so the
widget can update one trace's arrays in place:

* one ``lines`` trace for all edges, segments separated by NaN (plotly breaks
  lines at NaN as it does at None, and float arrays validate ~30x faster),
* the selected item's edges, a ring on search matches, a ring on the selection,
* one marker trace for activation quantizers, drawn on the edges they sit on
  (after a node: near the producer on each outgoing edge; before input ``p``:
  near the consumer on that edge), small and grey when off,
* ONE marker trace for nodes and collapsed groups (keys in ``customdata``),
  last so it is on top and receives clicks,
* empty traces that only put the colour states in the legend.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection
from typing import Any

import numpy as np

from nncf_explore.widgets._collapse import ViewKey
from nncf_explore.widgets._points import STATES, QuantState
from nncf_explore.widgets._scene import Scene, edge_xy
from nncf_explore.widgets._styles import (
    COLORSCALE,
    COLOURS,
    EDGE_COLOUR,
    FOCUS_COLOUR,
    MATCH_COLOUR,
    SELECTED_COLOUR,
    SIZE_OFF,
    SYMBOL_GROUP,
    SYMBOL_NODE,
    SYMBOL_QUANTIZER,
    Styles,
    TraceDict,
    selection_style,
    styles,
)

LABELS_AT_MOST = 60
"""Nodes carry text labels only when this few are visible."""
VISIBLE_LAYERS = 28
"""Layers shown at first draw; taller graphs open at the top and are panned."""


# -- the whole figure ---------------------------------------------------------------


def _node_trace(scene: Scene, style: Styles) -> TraceDict:
    items = scene.view.items
    labels = None
    if len(items) <= LABELS_AT_MOST:
        # plotly renders a few HTML tags in text; names are the model's, so escape them.
        labels = [
            html.escape(str(i.key) if i.is_group else scene.graph.nodes[int(i.key)].name.rsplit("/", 1)[-1])
            for i in items
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
        # Explicit size: FigureWidget inside an HBox sizes itself wrongly otherwise (plotly #4998).
        "height": 620,
        "width": 480,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "plot_bgcolor": "white",
        "hovermode": "closest",
        "dragmode": "pan",
        "modebar": {"orientation": "v"},  # keeps the tool icons off the legend
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
