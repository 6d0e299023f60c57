"""The graph view's drawing channels: palette, rings, overlay, highlight, theme, fit/centre, snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nncf_explore.errors import GraphError
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import COLLAPSE_ABOVE
from nncf_explore.widgets._edits import SetSpec, apply_edit
from nncf_explore.widgets._overlay_colours import MISSING_COLOUR, VIRIDIS
from nncf_explore.widgets._points import BIT_WIDTHS, STATES, PointIndex, QuantState, bits_state
from nncf_explore.widgets._styles import (
    COLOURS,
    RING_HIGHLIGHT,
    RING_MATCH,
    RING_SELECTED,
    TRACE_COLORBAR,
    TRACE_EDGES,
    TRACE_HIGHLIGHT,
    TRACE_LABELS,
    TRACE_MATCHES,
    TRACE_NODES,
    TRACE_SELECTED,
    colour_of,
)
from nncf_explore.widgets._theme import DARK, LIGHT, ThemeProbe
from nncf_explore.widgets.graph_view import GraphView
from tests.widgets.fakes import FakeSession

CONV = "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0"


def _view(graph: Graph, collapse_above: int = COLLAPSE_ABOVE) -> GraphView:
    session = FakeSession(graph)
    state = QuantState(PointIndex(graph, session.default_setup), session.setup)
    return GraphView(graph, state, collapse_above=collapse_above)


@pytest.fixture
def view(resnet_graph: Graph) -> GraphView:
    return _view(resnet_graph)


def _at(view: GraphView, name: str) -> int:
    return view.scene.view.index[view.scene.view.rep[view.graph.node(name).id]]


# -- colours and channels ---------------------------------------------------------


def test_every_bit_width_from_2_to_8_has_its_own_colour() -> None:
    codes = [bits_state([b]) for b in BIT_WIDTHS]
    colours = [colour_of(c) for c in codes]
    assert len(set(colours)) == len(BIT_WIDTHS) == 7
    assert len({COLOURS[s] for s in STATES}) == len(STATES)  # mixed, off, other: distinct too
    assert colour_of(bits_state([2])) != colour_of(bits_state([6]))  # both were the same purple


def test_rings_and_matches_differ_by_shape_not_colour(view: GraphView) -> None:
    rings = [view.figure.data[i].marker for i in (TRACE_SELECTED, TRACE_MATCHES, TRACE_HIGHLIGHT)]
    assert len({m.color for m in rings}) == 1  # one ink for every outline channel
    assert len({m.symbol for m in rings}) == 3
    assert all(str(m.symbol).endswith("-open") for m in rings)
    assert RING_SELECTED["line"]["width"] > RING_MATCH["line"]["width"]
    # "mixed" is a node fill; a match is an open ring in the outline ink: orange meant both before.
    assert COLOURS["mixed"] not in {m.color for m in rings}
    assert RING_HIGHLIGHT["symbol"] not in (RING_SELECTED["symbol"], RING_MATCH["symbol"])


# -- overlay ----------------------------------------------------------------------


def test_overlay_colours_follow_the_values_and_missing_nodes_are_grey(view: GraphView) -> None:
    names = [n.name for n in view.graph.nodes]
    values = {name: float(i) for i, name in enumerate(names) if i % 2}
    view.set_overlay(values, title="SQNR (dB)")
    marker = view.figure.data[TRACE_NODES].marker
    colour = np.asarray(marker.color, dtype=float)
    assert colour[_at(view, names[3])] < colour[_at(view, names[5])]  # follows the values
    assert colour[_at(view, names[4])] == marker.cmin  # missing: the bottom of the scale...
    assert marker.colorscale[0][1] == MISSING_COLOUR  # ...which is grey
    bar = view.figure.data[TRACE_COLORBAR]
    assert bar.visible and bar.marker.showscale
    assert "SQNR (dB)" in bar.marker.colorbar.title.text
    assert (bar.marker.cmin, bar.marker.cmax) == (1.0, float(len(names) - 1 - (len(names) % 2 == 1)))


def test_higher_is_worse_flips_the_scale_so_bad_keeps_its_hue(view: GraphView) -> None:
    values = {n.name: float(n.id) for n in view.graph.nodes}
    view.set_overlay(values, title="output error", higher_is_worse=False)
    low_is_bad = view.figure.data[TRACE_COLORBAR].marker.colorscale
    view.set_overlay(values, title="output error", higher_is_worse=True)
    high_is_bad = view.figure.data[TRACE_COLORBAR].marker.colorscale
    assert low_is_bad[0][1] == VIRIDIS[0] and high_is_bad[-1][1] == VIRIDIS[0]


def test_a_collapsed_group_takes_its_worst_member(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    view.show(frozenset())
    members = view.tree.members["layer1"]
    values = {resnet_graph.nodes[m].name: float(k + 1) for k, m in enumerate(members)}
    g = view.scene.view.index["layer1"]
    view.set_overlay(values, title="error", higher_is_worse=True)
    assert float(view.figure.data[TRACE_NODES].marker.color[g]) == len(members)
    view.set_overlay(values, title="SQNR", higher_is_worse=False)
    assert float(view.figure.data[TRACE_NODES].marker.color[g]) == 1.0


def test_overlay_survives_edits_and_clears_back_to_bits(view: GraphView) -> None:
    values = {CONV: 5.0}
    view.set_overlay(values, title="t")
    before = list(view.figure.data[TRACE_NODES].marker.color)
    qid = f"{CONV}|WEIGHT"
    index = view.state.index
    view.set_state(
        QuantState(index, apply_edit(SetSpec((qid,), {"bits": 4}), index.default, index.default, {}))
    )
    assert list(view.figure.data[TRACE_NODES].marker.color) == before  # the overlay still owns colours
    view.set_overlay(None, title="")
    assert float(view.figure.data[TRACE_NODES].marker.color[_at(view, CONV)]) == STATES.index("4-bit")
    assert not view.figure.data[TRACE_COLORBAR].visible


def test_overlay_with_an_unknown_node_names_it(view: GraphView) -> None:
    with pytest.raises(GraphError, match="layer1.0.conv9|did you mean"):
        view.set_overlay({CONV.replace("conv1", "conv9"): 1.0}, title="t")


# -- highlight ----------------------------------------------------------------------


def test_highlight_outlines_the_nodes_and_names_them_in_the_legend(view: GraphView) -> None:
    view.set_highlight([CONV], label="changed vs config")
    ring = view.figure.data[TRACE_HIGHLIGHT]
    i = _at(view, CONV)
    assert (list(ring.x), list(ring.y)) == ([view.scene.x[i]], [view.scene.y[i]])
    assert ring.name == "changed vs config" and ring.showlegend
    node_colours = list(view.figure.data[TRACE_NODES].marker.color)
    view.set_highlight(None)
    assert len(ring.x) == 0 and not ring.showlegend
    assert list(view.figure.data[TRACE_NODES].marker.color) == node_colours  # colour untouched
    with pytest.raises(GraphError, match="did you mean"):
        view.set_highlight([CONV + "x"])


def test_highlight_follows_collapsing(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    view.set_highlight([CONV])
    view.show(frozenset())
    g = view.scene.view.index["layer1"]
    assert list(view.figure.data[TRACE_HIGHLIGHT].x) == [view.scene.x[g]]


# -- theme ---------------------------------------------------------------------------


def test_theme_switch_changes_the_layout_colours(view: GraphView) -> None:
    view.set_theme(False)
    assert view.figure.layout.font.color == DARK.font
    assert view.figure.data[TRACE_EDGES].line.color == DARK.edge
    assert view.figure.data[TRACE_SELECTED].marker.color == DARK.ring
    assert view.figure.layout.paper_bgcolor == "rgba(0,0,0,0)"  # the notebook's background shows
    view.set_theme(True)
    assert view.figure.layout.font.color == LIGHT.font
    assert view.figure.data[TRACE_EDGES].line.color == LIGHT.edge


def test_the_light_theme_is_applied_before_any_report(view: GraphView) -> None:
    # The probe starts light and only reports changes: a new figure must already be light,
    # not plotly's default template colours.
    assert view.figure.layout.font.color == LIGHT.font


def test_the_theme_probe_drives_the_figure(view: GraphView) -> None:
    assert isinstance(view.theme_probe, ThemeProbe) and view.theme_probe in view.children
    assert "jpThemeLight" in view.theme_probe._esm and "MutationObserver" in view.theme_probe._esm
    view.theme_probe.light = False  # what the front end syncs on a switch to the dark theme
    assert view.figure.layout.font.color == DARK.font


# -- the trace list is fixed ------------------------------------------------------------


def test_trace_list_never_changes_after_construction(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    traces = list(view.figure.data)
    view.set_overlay({CONV: 1.0}, title="t")
    view.set_theme(False)
    view.figure.layout.xaxis.range = [-1.0, 2.0]
    view.figure.layout.yaxis.range = [12.0, 4.0]
    view.set_highlight([CONV])
    view.show(frozenset())
    view.fit_all()
    view.center_on(CONV)
    view.set_overlay(None, title="")
    assert len(view.figure.data) == len(traces)
    assert all(a is b for a, b in zip(view.figure.data, traces, strict=True))


# -- plot, fit and centre ----------------------------------------------------------------


def test_the_plot_fills_its_cell_and_zooms_with_the_wheel(view: GraphView) -> None:
    layout = view.figure.layout
    assert layout.width is None and layout.autosize
    assert view.figure._config["scrollZoom"] and view.figure._config["responsive"]
    # A block box: as a flex item the plot kept plotly's 700 px fallback in JupyterLab.
    assert view.canvas.layout.width == "100%" and view.canvas.layout.display == "block"
    assert "ResizeObserver" in view.theme_probe._esm  # refits the plot when the cell's width changes
    assert layout.legend.yanchor == "top" and layout.legend.y < 0  # legend below, toolbar above


def test_fit_all_and_center_on(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    view.figure.layout.yaxis.range = [10.0, 5.0]
    view.fit_all()
    low, high = float(view.scene.y.min()), float(view.scene.y.max())
    bottom, top = view.figure.layout.yaxis.range
    assert bottom >= high and top <= low
    view.center_on(CONV)
    i = _at(view, CONV)
    x0, x1 = view.figure.layout.xaxis.range
    y0, y1 = view.figure.layout.yaxis.range
    assert (x0 + x1) / 2 == pytest.approx(view.scene.x[i]) and (y0 + y1) / 2 == pytest.approx(view.scene.y[i])
    with pytest.raises(GraphError, match="did you mean"):
        view.center_on(CONV[:-1] + "9")


def test_center_on_opens_the_collapsed_module(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    view.show(frozenset())
    view.center_on(CONV)
    assert view.scene.view.rep[resnet_graph.node(CONV).id] == resnet_graph.node(CONV).id


# -- snapshot --------------------------------------------------------------------------


def test_snapshot_writes_a_standalone_file_with_the_figure(view: GraphView, tmp_path: Path) -> None:
    view.set_overlay({CONV: 3.0}, title="SQNR (dB)")
    path = view.snapshot_html(tmp_path / "sub" / "graph.html")
    text = Path(path).read_text(encoding="utf-8")
    assert Path(path).is_absolute() and Path(path).parent.name == "sub"
    assert "SQNR (dB)" in text and "layer1.0.conv1" in text  # the overlay and the labels
    assert "plotly.js" in text.lower() or "Plotly" in text  # plotly.js inlined: opens offline
    assert '<script src="https://cdn.plot.ly' not in text
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["graph.html"]  # no temporary left


def test_labels_trace_is_restyled_on_zoom(view: GraphView) -> None:
    labels = view.figure.data[TRACE_LABELS]
    view.figure.layout.yaxis.range = [80.0, -1.0]  # the whole ResNet in one screen: too dense
    assert len(labels.x) == 0
    view.figure.layout.yaxis.range = [12.0, 4.0]
    assert len(labels.x) > 0 and all(4.0 <= y <= 12.0 for y in labels.y)


def test_theme_and_overlay_survive_expanding_and_collapsing(resnet_graph: Graph) -> None:
    view = _view(resnet_graph)
    view.set_theme(False)
    view.set_overlay({CONV: 2.0}, title="t")
    view.show(frozenset())
    assert view.figure.data[TRACE_EDGES].line.color == DARK.edge
    assert view.figure.data[TRACE_COLORBAR].visible
    assert view.figure.data[TRACE_NODES].marker.colorscale[0][1] == MISSING_COLOUR


def test_node_and_quantizer_markers_are_fully_opaque(view: GraphView) -> None:
    # Per-point sizes make plotly draw a "bubble" trace at 0.7 opacity unless told:
    # the screenshot showed every colour dimmed on the dark theme.
    from nncf_explore.widgets._styles import TRACE_ACTIVATIONS

    assert view.figure.data[TRACE_NODES].marker.opacity == 1.0
    assert view.figure.data[TRACE_ACTIVATIONS].marker.opacity == 1.0
