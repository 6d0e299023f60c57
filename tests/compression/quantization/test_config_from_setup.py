"""setup -> config -> setup is the identity, for random edits (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.config_gen import config_from_setup
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.graph import Graph, trace_model
from tests import models

GRAPH: Graph = trace_model(models.resnet18(), {"sample_size": [1, 3, 32, 32]})
TRIAL = {"target_device": "TRIAL", "compression": {"algorithm": "quantization"}}
CPU = {
    "input_info": {"sample_size": [1, 3, 32, 32]},
    "compression": {"algorithm": "quantization", "preset": "mixed"},
}
BASE_WITH_SCOPES = {
    "target_device": "TRIAL",
    "compression": {"algorithm": "quantization", "ignored_scopes": ["{re}layer4"], "weights": {"bits": 6}},
}


@st.composite
def edits(draw: st.DrawFn, base: dict) -> QuantizerSetup:
    setup = build_quantizer_setup(GRAPH, base)
    universe = build_quantizer_setup(GRAPH, {**base, "compression": {"algorithm": "quantization"}})
    trial = base.get("target_device") == "TRIAL"
    ids = [p.id for p in universe]
    # start from the base setup plus any points the base scopes removed that the user turned back on
    enabled = draw(st.sets(st.sampled_from(ids), max_size=6))
    points = {p.id: p for p in setup}
    for qid in enabled:
        points.setdefault(qid, universe.get(qid))
    current = QuantizerSetup(tuple(p for p in universe if p.id in points), setup.target_device)
    current = QuantizerSetup(tuple(points[p.id] for p in current), setup.target_device)
    for _ in range(draw(st.integers(0, 8))):
        qid = draw(st.sampled_from([p.id for p in current] or ["-"]))
        if qid == "-":
            break
        action = draw(st.sampled_from(["off", "bits", "mode", "per_channel"] if trial else ["off", "mode"]))
        members = [p.id for p in current.group_members(qid)]
        for member in members:
            if action == "off":
                current = current.without([member])
                continue
            point = current.get(member)
            if action == "bits":
                change = {
                    "bits": draw(st.integers(2, 8))
                    if member == members[0]
                    else current.get(members[0]).spec.bits
                }
            elif action == "mode":
                change = {"mode": "asymmetric" if point.spec.mode == "symmetric" else "symmetric"}
            else:
                change = {"per_channel": not point.spec.per_channel}
            current = current.replace_point(member, spec=change)
    return current


@pytest.mark.parametrize("base", [TRIAL, CPU, BASE_WITH_SCOPES], ids=["trial", "cpu-mixed", "base-scopes"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_edits_round_trip_through_the_config(base: dict, data: st.DataObject) -> None:
    wanted = data.draw(edits(base))
    config = config_from_setup(base, GRAPH, wanted)
    config = json.loads(json.dumps(config))  # the config is pure JSON
    again = build_quantizer_setup(GRAPH, config)
    assert [p.to_dict() for p in again] == [p.to_dict() for p in wanted]


def test_unedited_setup_gives_back_the_base_config() -> None:
    for base in (TRIAL, CPU, BASE_WITH_SCOPES):
        assert config_from_setup(base, GRAPH, build_quantizer_setup(GRAPH, base)) == base


def test_generated_entries_are_minimal_and_nncf_shaped() -> None:
    setup = build_quantizer_setup(GRAPH, TRIAL)
    conv = "ResNet/Conv2d[conv1]/conv2d_0"
    edited = setup.without([f"{conv}|WEIGHT"]).replace_point("/nncf_model_input_0|OUTPUT", spec={"bits": 4})
    edited = edited.replace_point("ResNet/Linear[fc]/linear_0|WEIGHT", spec={"mode": "asymmetric"})
    section = config_from_setup(TRIAL, GRAPH, edited)["compression"]
    assert section == {
        "algorithm": "quantization",
        "weights": {"ignored_scopes": [conv]},
        "scope_overrides": {"weights": {"ResNet/Linear[fc]/linear_0": {"mode": "asymmetric"}}},
        "initializer": {
            "precision": {"type": "manual", "bitwidth_per_scope": [[4, "/nncf_model_input_0|OUTPUT"]]}
        },
    }
