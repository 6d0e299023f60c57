"""The diff view (table + highlighted nodes) and the standalone HTML snapshot button."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import Explorer
from tests.widgets.builders import trial_explorer
from tests.widgets.fakes import FakeSession, synthetic_graph

CONV = "SynthNet/ModuleList[stages]/Stage[0]/ModuleList[blocks]/Block[0]/Conv2d[conv1]/conv2d_0"


@pytest.fixture
def explorer() -> Explorer:
    return Explorer(FakeSession(synthetic_graph(60, blocks_per_stage=4), "TRIAL"))


def test_current_against_opened_lists_changes_and_highlights_their_nodes(explorer: Explorer) -> None:
    explorer.select(CONV)
    explorer.node_panel.weight_row.bits.value = 4
    explorer.diff_panel.compare.click()
    assert explorer.error.message.value == ""
    table = explorer.diff_panel.table.value
    assert "1 quantizer differ" in table and f"{CONV}|WEIGHT" in table
    assert "<td>8-bit, symmetric" in table and "<td>4-bit, symmetric" in table
    assert explorer.graph_view.highlighted == frozenset({explorer.graph.node(CONV).id})
    explorer.diff_panel.clear.click()
    assert explorer.graph_view.highlighted == frozenset() and explorer.diff_panel.table.value == ""


def test_a_missing_file_names_the_path_and_the_fix(explorer: Explorer, tmp_path: Path) -> None:
    explorer.diff_panel.path_a.value = str(tmp_path / "nope.json")
    explorer.diff_panel.compare.click()
    message = explorer.error.message.value
    assert "ConfigError" in message and "nope.json" in message and "Export config" in message


def test_two_exported_files_on_a_real_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)).eval()
    ex = trial_explorer(model, [(torch.randn(4, 1, 8, 8), 0)])
    first = ex.export_config(str(tmp_path / "a.json"))
    ex.select("Sequential/Conv2d[0]/conv2d_0")
    ex.node_panel.weight_row.toggle.value = False
    second = ex.export_config(str(tmp_path / "b.json"))
    changes = ex.diff(first, second)
    assert [(c.qid, c.after) for c in changes] == [("Sequential/Conv2d[0]/conv2d_0|WEIGHT", "off (FP32)")]
    assert "a.json" in ex.diff_panel.table.value and json.loads(Path(second).read_text())


def test_snapshot_button_writes_standalone_html(
    explorer: Explorer, tmp_path: Path, graph: Graph | None = None
) -> None:
    target = tmp_path / "graph.html"
    explorer.export_panel.snapshot_path.value = str(target)
    explorer.export_panel.snapshot.click()
    assert explorer.error.message.value == "", explorer.error.message.value
    text = target.read_text()
    assert (
        "<html" in text.lower()
        and "plotly" in text.lower()
        and "graph.html" in explorer.export_panel.link.value
    )
