"""The overlay and the mixed-precision panel on a real tiny model, end to end."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from nncf_explore.widgets import Explorer
from tests.widgets.builders import TRIAL_CONFIG

CONV2 = "Sequential/Conv2d[2]/conv2d_0"


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    ).eval()
    data = [(torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))) for _ in range(2)]

    def accuracy(m: nn.Module) -> float:
        with torch.no_grad():
            return sum(float((m(x).argmax(1) == y).float().mean()) for x, y in data) / len(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Explorer(
            model, TRIAL_CONFIG, init_loader=data, eval_fn=accuracy, criterion=nn.CrossEntropyLoss()
        )


def test_overlay_measures_the_real_model_and_shows_a_histogram(explorer: Explorer) -> None:
    recorded = []
    explorer.graph_view.set_overlay = lambda v, **kw: recorded.append((v, kw))  # type: ignore[method-assign]
    explorer.overlay_panel.menu.value = "sqnr_db"
    assert explorer.error.message.value == ""
    values, options = recorded[-1]
    assert CONV2 in values and options == {"title": "SQNR (dB)", "higher_is_worse": False}
    assert 0 < values[CONV2] < 80  # 8-bit weights: tens of dB
    explorer.select(CONV2)
    assert "SQNR (dB)" in explorer.overlay_panel.values_html.value
    assert explorer.overlay_panel.quantizer.value == f"{CONV2}|WEIGHT"
    lo, hi = explorer.overlay_panel.histogram.data[2].x[0], explorer.overlay_panel.histogram.data[3].x[0]
    assert lo < 0 < hi  # a symmetric signed weight range
    explorer.overlay_panel.menu.value = "metric_drop"
    explorer.overlay_panel.wait(120)
    assert explorer.error.message.value == "", explorer.error.message.value
    assert CONV2 in recorded[-1][0] and recorded[-1][1]["higher_is_worse"]
    explorer.overlay_panel.menu.value = ""


def test_a_front_click_applies_one_undoable_setup_to_model_and_config(explorer: Explorer) -> None:
    mp = explorer.mixed_precision
    mp.search()
    assert explorer.error.message.value == ""
    assert len(mp.front.points) >= 2 and mp.chart.data[2].name == "uniform INT8"
    before = explorer.session.setup
    mp.apply_point(0)  # the cheapest: every searched weight at 4 bits
    setup = explorer.session.setup
    assert setup != before and {p.spec.bits for p in setup.weights} == {4}
    scopes = explorer.config["compression"]["initializer"]["precision"]["bitwidth_per_scope"]
    assert [4, f"{CONV2}|WEIGHT"] in scopes
    compressed = explorer.compressed_model.nncf.quantizer_setup
    assert compressed.get(f"{CONV2}|WEIGHT").spec.bits == 4
    explorer.undo()
    assert explorer.session.setup == before
