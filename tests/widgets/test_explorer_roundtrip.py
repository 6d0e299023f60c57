"""Property: after any sequence of Explorer edits, the exported config rebuilds exactly the Explorer's setup."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model
from nncf_explore.widgets import Explorer
from nncf_explore.widgets._edits import SetSpec, Toggle
from tests.widgets.builders import trial_explorer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return trial_explorer(_model())


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["off", "on", "bits", "mode", "per_channel", "undo"]),
        st.integers(0, 100),
        st.integers(2, 8),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_exported_config_rebuilds_the_explorers_setup(
    explorer: Explorer, edits: list, tmp_path_factory
) -> None:
    explorer.reset()
    ids = [p.id for p in explorer.session.default_setup]
    for action, pick, bits in edits:
        qid = ids[pick % len(ids)]
        if action == "undo":
            explorer.undo()
            continue
        if action in ("off", "on"):
            explorer.edit(Toggle((qid,), action == "on"))
        elif qid in explorer.session.setup:
            point = explorer.session.setup.get(qid)
            change = {
                "bits": bits,
                "mode": "asymmetric" if point.spec.mode == "symmetric" else "symmetric",
                "per_channel": not point.spec.per_channel,
            }[action]
            explorer.edit(SetSpec((qid,), {action: change}))
        assert explorer.error.message.value == "", explorer.error.message.value
    path = Path(explorer.export_config(str(tmp_path_factory.mktemp("export") / "edited.json")))
    config = NNCFConfig.from_json(path)
    assert json.loads(path.read_text()) == dict(explorer.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(_model(), config, dump_graphs=False)
    assert [p.to_dict() for p in ctrl.setup] == [p.to_dict() for p in explorer.session.setup]
