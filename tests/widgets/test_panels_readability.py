"""Issue 12's panel findings: spec text, aligned rows, export label, metric scatter, live search, target notes."""

from __future__ import annotations

import pytest

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.widgets import Explorer
from nncf_explore.widgets._diff import device_change_note
from nncf_explore.widgets._html import human_bytes, spec_html
from nncf_explore.widgets._metric_chart import MetricPoint, metric_traces, padded_range
from nncf_explore.widgets._toolbar import SEARCH_DELAY_S, SearchBar
from tests.widgets.fakes import FakeSession, synthetic_graph

CONV = "SynthNet/ModuleList[stages]/Stage[0]/ModuleList[blocks]/Block[0]/Conv2d[conv1]/conv2d_0"


@pytest.fixture
def explorer() -> Explorer:
    return Explorer(FakeSession(synthetic_graph(60, blocks_per_stage=4), "TRIAL"))


def test_spec_reads_in_words_with_nncfs_short_form_in_the_hover(explorer: Explorer) -> None:
    assert (
        spec_html(QuantizerSpec())
        == "<span title='B:8 M:S SGN:ANY PC:N NR:N'>8-bit, symmetric, per-tensor</span>"
    )
    explorer.select(CONV)
    notes = explorer.node_panel.weight_row.notes.value
    assert (
        "8-bit, symmetric, per-channel, signed, narrow range" in notes
        and "title='B:8 M:S SGN:S PC:Y NR:Y'" in notes
    )


def test_weight_and_activation_rows_lay_out_alike(explorer: Explorer) -> None:
    explorer.select(CONV.replace("conv1", "conv2"))  # fed by a ReLU: a weight and an activation row
    weight, act = explorer.node_panel.weight_row, explorer.node_panel.activation_rows[0]
    for a, b in ((weight.toggle, act.toggle), (weight.bits, act.bits), (weight.mode, act.mode)):
        assert a.layout.width == b.layout.width and a.layout.width not in (None, "auto")


def test_export_button_never_shrinks(explorer: Explorer) -> None:
    assert explorer.export_panel.button.layout.flex == "0 0 auto"
    assert explorer.export_panel.path.layout.flex == "1 1 auto"


def test_one_size_unit_kib() -> None:
    assert human_bytes(2048) == "2.0 KiB" and human_bytes(3 * 1024 * 1024) == "3.0 MiB"


def test_metric_chart_is_a_scatter_without_duplicates_on_undo_and_redo(explorer: Explorer) -> None:
    explorer.metric_panel.button.click()
    explorer.select(CONV)
    explorer.node_panel.weight_row.bits.value = 4
    explorer.metric_panel.button.click()
    explorer.undo()
    explorer.metric_panel.button.click()
    explorer.redo()
    explorer.metric_panel.button.click()
    chart = explorer.metric_panel.chart
    assert [t.name for t in chart.data] == ["evaluated", "current", "FP32", "uniform INT8"]
    assert chart.data[0].mode == "markers+text" and len(chart.data[0].x) == 2  # two setups, not four
    assert list(chart.data[0].text) == ["opened", f"bits=4: {CONV}|WEIGHT"]
    assert chart.data[1].x[0] == min(chart.data[0].x)  # the current (4-bit) setup is marked
    assert chart.layout.xaxis.title.text == "weights (KiB)" and "KiB" in chart.data[0].hovertemplate
    fp32 = explorer.session.weight_memory_bytes(QuantizerSetup()) / 1024
    assert chart.data[2].x[0] == pytest.approx(fp32)
    assert "metric %{y:.4g}" in chart.data[0].hovertemplate


def test_a_single_point_gets_axes_around_it() -> None:
    _, axes = metric_traces([MetricPoint(4096, 0.75, "opened", "a")], "a", 16384, 4096)
    low, high = axes["yaxis"]["range"]
    assert low < 0.75 < high and high - low < 0.5
    assert padded_range([0.0]) == [-0.5, 0.5]
    assert axes["xaxis"]["range"][0] < 4.0 and axes["xaxis"]["range"][1] > 16.0


def test_search_runs_as_the_user_types_debounced() -> None:
    scheduled: list[tuple[float, object]] = []
    cancelled: list[int] = []
    runs: list[str] = []

    def schedule(delay: float, action):  # type: ignore[no-untyped-def]
        scheduled.append((delay, action))
        index = len(scheduled) - 1
        return lambda: cancelled.append(index)

    bar = SearchBar([("all ops", "")], lambda: runs.append(bar.query.value), schedule)
    assert bar.query.continuous_update
    for text in ("c", "co", "con"):
        bar.query.value = text
    assert runs == [] and cancelled == [0, 1] and scheduled[-1][0] == SEARCH_DELAY_S == 0.25
    scheduled[-1][1]()  # the pause after the last key
    assert runs == ["con"]


def test_typing_updates_the_match_count_and_an_invalid_regex_counts_zero(explorer: Explorer) -> None:
    explorer.search_bar.query.value = "conv1"  # no event loop here: runs at once
    assert "match" in explorer.search_bar.count.value and explorer.matches
    explorer.search_bar.query.value = "re:conv("
    assert "invalid regular expression" in explorer.error.message.value
    assert explorer.matches == [] and "0 matches" in explorer.search_bar.count.value


def test_a_target_switch_says_what_it_changed() -> None:
    spec = QuantizerSpec()
    acts = tuple(QuantizationPoint("activation", f"N/relu_{i}", None, spec) for i in range(2))
    note = device_change_note(QuantizerSetup(acts, "ANY"), QuantizerSetup((), "TRIAL"))
    assert note == "switched to TRIAL: 2 activation quantizers removed: N/relu_0|OUTPUT, N/relu_1|OUTPUT"
    explorer = Explorer(FakeSession(synthetic_graph(60, blocks_per_stage=4), "CPU"))
    explorer.bulk_bar.switch.click()
    assert explorer.error.status.value.count("switched to TRIAL") == 1
