"""The mixed-precision panel on the fake session: candidates, the front, a click, keeps."""

from __future__ import annotations

from typing import Any

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import Explorer
from nncf_explore.widgets._edits import ApplySetup, apply_edit, describe
from tests.widgets.fakes import FakeSession, synthetic_graph, with_sensitivity


@pytest.fixture
def graph() -> Graph:
    return synthetic_graph(60, blocks_per_stage=4)


def _explorer(graph: Graph, device: str = "TRIAL", has_metric: bool = True) -> tuple[Explorer, Any]:
    session = FakeSession(graph, device)
    source = with_sensitivity(session, has_metric)
    return Explorer(session), source


class _Points:
    def __init__(self, inds: list[int]) -> None:
        self.point_inds = inds


def test_clicking_a_front_point_is_one_undoable_edit_that_reaches_the_config(graph: Graph) -> None:
    ex, _ = _explorer(graph)
    mp = ex.mixed_precision
    mp.compute.click()
    assert ex.error.message.value == ""
    fig = mp.chart
    assert [t.name for t in fig.data] == [
        "front (click to apply)",
        "current",
        "uniform INT8",
        "uniform INT4",
        "within budget",
    ]
    assert fig.layout.xaxis.title.text == "weights (KiB)"
    before = ex.session.setup
    cheapest = mp.front.points[0]
    mp._clicked(_Points([0]))  # what plotly's on_click hands the callback
    assert ex.session.setup == mp.front.setup(cheapest) != before
    assert ex.history.cursor == 1 and ex.history.current_label.startswith("front: ")
    assert "bitwidth_per_scope" in ex.json_panel.value
    assert list(fig.data[1].x) == [cheapest.cost / 1024]  # the current mark moved onto the point
    ex.undo()
    assert ex.session.setup == before and not ex.history.can_undo


def test_budget_slider_marks_and_applies_the_best_point_within_it(graph: Graph) -> None:
    ex, _ = _explorer(graph)
    mp = ex.mixed_precision
    mp.search()
    points = mp.front.points
    mp.budget.value = points[len(points) // 2].cost
    best = mp.front.best_under(mp.budget.value)
    assert list(mp.chart.data[-1].y) == [best.loss] and "KiB" in mp.budget_text.value
    mp.apply_budget.click()
    assert ex.session.setup == mp.front.setup(best)


def test_candidates_are_what_the_target_allows(graph: Graph) -> None:
    ex, _ = _explorer(graph, device="CPU")
    shown = [b for b, box in ex.mixed_precision.bits.items() if box.layout.display != "none"]
    assert shown == [8]
    ex.mixed_precision.compute.click()
    assert "at least two candidate bit widths" in ex.error.message.value


def test_measured_loss_is_offered_only_with_a_metric(graph: Graph) -> None:
    ex, source = _explorer(graph)
    assert [v for _, v in ex.mixed_precision.loss.options] == ["hawq", "ablation"]
    ex.mixed_precision.loss.value = "ablation"
    ex.mixed_precision.cost.value = "bops"
    ex.mixed_precision.search()
    assert source.calls[-1] == "front:bops:ablation"
    assert ex.mixed_precision.chart.layout.xaxis.title.text == "BOPs"
    ex2, _ = _explorer(graph, has_metric=False)
    assert [v for _, v in ex2.mixed_precision.loss.options] == ["hawq"]


def test_keep_most_sensitive_in_fp32_and_at_8_bits(graph: Graph) -> None:
    ex, source = _explorer(graph)
    ex.mixed_precision.keep8.click()
    assert "choose a sensitivity measure in the overlay first" in ex.error.message.value
    ex.show_overlay("sqnr_db")
    worst = min(source.node_values("sqnr_db").items(), key=lambda kv: (kv[1], kv[0]))[0]
    ex.mixed_precision.k.value = 1
    ex.mixed_precision.keep_fp32.click()
    assert ex.error.message.value == ""
    assert all(p.target_node != worst for p in ex.session.setup)
    assert worst in ex.session.config_json()["compression"]["ignored_scopes"]
    assert ex.history.current_label == "keep 1 most sensitive in FP32"
    ex.undo()
    ex.mixed_precision.search()
    ex.mixed_precision.apply_point(0)  # all 4-bit where the loss is least
    ex.show_overlay("sqnr_db")
    ex.mixed_precision.keep8.click()
    assert ex.error.message.value == ""
    worst = min(source.node_values("sqnr_db").items(), key=lambda kv: (kv[1], kv[0]))[0]
    assert {p.spec.bits for p in ex.session.setup if p.target_node == worst} == {8}


def test_apply_setup_edit_replaces_the_setup_and_describes_itself(graph: Graph) -> None:
    session = FakeSession(graph)
    new = session.setup.replace_point(session.setup.weights[0].id, spec={"bits": 4})
    edit = ApplySetup(new, "front: 1 KiB")
    assert apply_edit(edit, session.setup, session.default_setup, {}) is new
    assert describe(edit) == "front: 1 KiB"


def test_apply_setup_from_code_is_one_undoable_edit(graph: Graph) -> None:
    ex, _ = _explorer(graph)
    ex.mixed_precision.search()
    chosen = ex.mixed_precision.front.setup(ex.mixed_precision.front.points[1])
    ex.apply_setup(chosen, "search: within 10 KiB")
    assert ex.session.setup == chosen and ex.history.label == "1/1 search: within 10 KiB"
