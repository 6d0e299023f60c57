"""The Explorer on a real model: ``Explorer(model, config, ...)`` builds the compression session itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nncf_explore.widgets import Explorer
from tests.widgets.builders import trial_explorer
from tests.widgets.fakes import FakeSession

CONV0 = "Sequential/Conv2d[0]/conv2d_0"


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
        nn.Linear(16, 10),
    ).eval()
    loader = [(torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)) for _ in range(2)]
    return trial_explorer(model, init_loader=loader)


def test_edits_reach_the_compressed_model_and_the_config(explorer: Explorer, tmp_path) -> None:
    before = explorer.config
    explorer.select(CONV0)
    explorer.node_panel.weight_row.toggle.value = False
    explorer.select("Sequential/Conv2d[2]/conv2d_0")
    explorer.node_panel.weight_row.bits.value = 4
    assert explorer.error.message.value == ""
    assert explorer.controller is not None
    assert f"{CONV0}|WEIGHT" not in explorer.session.setup
    assert explorer.session.setup.get("Sequential/Conv2d[2]/conv2d_0|WEIGHT").spec.bits == 4
    assert explorer.config != before and "bitwidth_per_scope" in explorer.json_panel.value
    assert isinstance(explorer.compressed_model, nn.Module)
    path = explorer.export_config(str(tmp_path / "edited.json"))
    assert json.loads(Path(path).read_text()) == explorer.config


def test_constructor_forms(resnet_graph) -> None:
    session = FakeSession(resnet_graph)
    with pytest.raises(TypeError, match="needs the NNCF config"):
        Explorer(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="either a session alone"):
        Explorer(session, {"compression": {}})
    with pytest.raises(AttributeError, match="has no 'controller'"):
        _ = Explorer(session).controller
