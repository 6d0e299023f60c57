"""The overlay control and the node's measures and histogram, on the fake session (no model)."""

from __future__ import annotations

from typing import Any

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import Explorer
from nncf_explore.widgets._overlay import OVERLAYS, bits_by_node, histogram_bars, most_sensitive
from tests.widgets.fakes import FakeSession, synthetic_graph, with_sensitivity


@pytest.fixture
def graph() -> Graph:
    return synthetic_graph(60, blocks_per_stage=4)


def _explorer(graph: Graph, has_metric: bool = True) -> tuple[Explorer, Any]:
    session = FakeSession(graph)
    source = with_sensitivity(session, has_metric)
    return Explorer(session), source


class OverlayRecorder:
    def __init__(self, explorer: Explorer) -> None:
        self.calls: list[tuple[Any, str, bool]] = []
        explorer.graph_view.set_overlay = self  # type: ignore[method-assign]

    def __call__(self, values: Any, *, title: str, higher_is_worse: bool = False) -> None:
        self.calls.append((None if values is None else dict(values), title, higher_is_worse))


@pytest.mark.parametrize("measure", ["sqnr_db", "output_sqnr_db", "hessian_trace"])
def test_each_measure_colours_the_graph_with_its_title_and_direction(graph: Graph, measure: str) -> None:
    ex, source = _explorer(graph)
    recorder = OverlayRecorder(ex)
    ex.overlay_panel.menu.value = measure
    assert ex.error.message.value == ""
    values, title, worse_high = recorder.calls[-1]
    assert values == source.node_values(measure)
    assert (title, worse_high) == (OVERLAYS[measure].title, OVERLAYS[measure].higher_is_worse)
    ex.overlay_panel.menu.value = ""
    assert recorder.calls[-1][0] is None  # off restores the bit colouring


def test_bits_need_no_measurement_and_follow_edits(graph: Graph) -> None:
    ex, source = _explorer(graph)
    recorder = OverlayRecorder(ex)
    ex.show_overlay("bits")
    assert recorder.calls[-1][0] == bits_by_node(ex.session.setup) and source.calls == []
    conv = graph.nodes[1].name
    ex.select(conv)
    ex.node_panel.weight_row.bits.value = 4
    assert recorder.calls[-1][0][conv] == 4.0  # re-measured after the edit


def test_node_panel_shows_the_measures_computed_so_far_and_a_histogram(graph: Graph) -> None:
    ex, _ = _explorer(graph)
    conv = graph.nodes[1].name
    ex.show_overlay("sqnr_db")
    ex.show_overlay("hessian_trace")
    ex.select(conv)
    text = ex.overlay_panel.values_html.value
    assert "SQNR (dB)" in text and "Hessian trace" in text
    assert ex.overlay_panel.quantizer.value == f"{conv}|WEIGHT"
    fig = ex.overlay_panel.histogram
    assert [t.name for t in fig.data] == ["FP32", "quantized", "clip low", "clip high"]
    assert list(fig.data[2].x) == [-0.9, -0.9] and list(fig.data[3].x) == [0.9, 0.9]
    assert sum(fig.data[0].y) == 200 == sum(fig.data[1].y)
    bn = next(n.name for n in graph.nodes if n.op == "batch_norm")
    ex.select(bn)  # a node without quantizers: no histogram, same figure object
    assert ex.overlay_panel.histogram is fig and ex.overlay_panel.histogram_box.layout.display == "none"


def test_without_data_the_overlay_says_what_to_pass(graph: Graph) -> None:
    ex = Explorer(FakeSession(graph))
    ex.overlay_panel.menu.value = "sqnr_db"
    assert "init_loader=loader" in ex.error.message.value


def test_metric_drop_runs_in_the_background_and_can_be_cancelled(graph: Graph) -> None:
    ex, source = _explorer(graph)
    recorder = OverlayRecorder(ex)
    source.ablation_stop_after = 3  # a run that stops part way, as a cancel does
    ex.show_overlay("metric_drop")
    ex.overlay_panel.wait(5)
    values, _, worse_high = recorder.calls[-1]
    assert len(values) == 3 and worse_high and "cancelled at 3/" in ex.overlay_panel.status.value
    ex.overlay_panel.stop()
    assert ex.overlay_panel._thread is None


def test_metric_drop_without_a_metric_is_an_error(graph: Graph) -> None:
    ex, _ = _explorer(graph, has_metric=False)
    ex.show_overlay("metric_drop")
    assert "needs a metric" in ex.error.message.value and "eval_fn=" in ex.error.message.value


def test_histogram_bins_cover_data_and_clip_range() -> None:
    bars = histogram_bars([0.0, 0.5], [0.0, 0.5], (-1.0, 1.0), bins=4)
    assert bars.centers[0] == -0.75 and bars.centers[-1] == 0.75 and sum(bars.fp32) == 2
    single = histogram_bars([2.0], [2.0], (2.0, 2.0), bins=2)
    assert single.width > 0 and sum(single.quantized) == 1


def test_most_sensitive_ranks_by_the_bad_end() -> None:
    assert most_sensitive({"a": 1.0, "b": 5.0}, "hessian_trace", 1) == ["b"]
    assert most_sensitive({"a": 1.0, "b": 5.0}, "sqnr_db", 1) == ["a"]
