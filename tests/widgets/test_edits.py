from __future__ import annotations

import pytest

from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._edits import History, SetDevice, SetSpec, Toggle, apply_edit, describe
from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets._search import match_nodes, op_filter_options, quantizers_of
from tests.widgets.fakes import default_setup_for

CONV1 = "ResNet/Conv2d[conv1]/conv2d_0"
ADD = "ResNet/Sequential[layer1]/BasicBlock[0]/__iadd___0"


@pytest.fixture
def default(resnet_graph: Graph) -> QuantizerSetup:
    return default_setup_for(resnet_graph)


def test_toggle_off_and_on_restores_the_remembered_spec(default: QuantizerSetup) -> None:
    qid = f"{CONV1}|WEIGHT"
    four = apply_edit(SetSpec((qid,), {"bits": 4}), default, default, {})
    off = apply_edit(Toggle((qid,), False), four, default, {})
    assert qid not in off and len(off) == len(default) - 1
    assert apply_edit(Toggle((qid,), True), off, default, {qid: four.get(qid)}).get(qid).spec.bits == 4
    assert apply_edit(Toggle((qid,), True), off, default, {}) == default  # default spec, default order


def test_unified_scale_members_change_together(default: QuantizerSetup) -> None:
    new = apply_edit(SetSpec((f"{ADD}|INPUT0",), {"bits": 6}), default, default, {})
    assert new.get(f"{ADD}|INPUT1").spec.bits == 6
    off = apply_edit(Toggle((f"{ADD}|INPUT1",), False), default, default, {})
    assert f"{ADD}|INPUT0" not in off


def test_set_spec_follows_placement_rules(default: QuantizerSetup) -> None:
    # An edited point must equal what placement gives for the same spec, or the config written from
    # the setup cannot reproduce it (the session then refuses the edit).
    qid = f"{CONV1}|WEIGHT"
    point = default.get(qid)
    for changes in ({"bits": 4}, {"per_channel": not point.spec.per_channel}):
        edited = apply_edit(SetSpec((qid,), changes), default, default, {}).get(qid)
        assert edited == point.respec(**changes)


def test_set_spec_leaves_off_points_off_and_rejects_unknown_fields(default: QuantizerSetup) -> None:
    qid = f"{CONV1}|WEIGHT"
    off = apply_edit(Toggle((qid,), False), default, default, {})
    assert qid not in apply_edit(SetSpec((qid,), {"bits": 4}), off, default, {})
    with pytest.raises(ConfigError, match="the Explorer edits"):
        apply_edit(SetSpec((qid,), {"narrow_range": True}), default, default, {})
    with pytest.raises(ConfigError, match="did you mean"):
        apply_edit(Toggle((f"{CONV1}|WEIGHTS",), False), default, default, {})


def test_set_device_keeps_points(default: QuantizerSetup) -> None:
    trial = apply_edit(SetDevice("TRIAL"), default, default, {})
    assert trial.target_device == "TRIAL" and trial.points == default.points
    assert describe(SetDevice("TRIAL")) == "target_device=TRIAL"
    assert describe(SetSpec(("a", "b"), {"bits": 4})) == "bits=4: 2 quantizers"


def test_history_undo_redo_and_branching() -> None:
    h = History(0, "opened")
    assert not h.can_undo and not h.can_redo and h.label == "0/0 opened"
    h.push(1, "one")
    h.push(2, "two")
    assert h.undo() == 1 and h.undo() == 0
    with pytest.raises(IndexError):
        h.undo()
    assert h.redo() == 1
    h.push(3, "three")
    assert not h.can_redo and h.label == "2/2 three" and [v for v, _ in h.entries] == [0, 1, 3]


def test_search_by_substring_regex_and_op(resnet_graph: Graph) -> None:
    convs_in_layer4 = match_nodes(resnet_graph, "layer4", "category:convolution")
    assert len(convs_in_layer4) == 5
    assert match_nodes(resnet_graph, "LAYER4.0.CONV1", "") == [
        resnet_graph.node("ResNet/Sequential[layer4]/BasicBlock[0]/Conv2d[conv1]/conv2d_0").id
    ]
    assert match_nodes(resnet_graph, r"re:^ResNet/(Conv2d\[conv1\]|Linear\[fc\])/", "") == [1, 69]
    assert match_nodes(resnet_graph, "", "op:linear") == [69]
    assert match_nodes(resnet_graph, "", "") == []
    with pytest.raises(ValueError, match="invalid regular expression"):
        match_nodes(resnet_graph, "re:conv[", "")
    options = {v: k for k, v in op_filter_options(resnet_graph)}
    assert options["category:convolution"] == "[convolution]" and options["op:relu_"] == "relu_"


def test_bulk_quantizers_of_nodes(resnet_graph: Graph, default: QuantizerSetup) -> None:
    index = PointIndex(resnet_graph, default)
    first_and_last = [1, 69]
    assert quantizers_of(index, first_and_last, "weights") == [
        f"{CONV1}|WEIGHT",
        "ResNet/Linear[fc]/linear_0|WEIGHT",
    ]
    assert quantizers_of(index, first_and_last, "activations") == ["/nncf_model_input_0|OUTPUT"]
    assert len(quantizers_of(index, first_and_last, "all")) == 3


def test_point_index_and_state(resnet_graph: Graph, default: QuantizerSetup) -> None:
    index = PointIndex(resnet_graph, default)
    conv1 = resnet_graph.node(CONV1).id
    assert index.attached[conv1] == [f"{CONV1}|WEIGHT"]
    assert index.related[conv1] == [f"{CONV1}|WEIGHT", "/nncf_model_input_0|OUTPUT"]
    assert index.with_group([f"{ADD}|INPUT0"]) == [f"{ADD}|INPUT0", f"{ADD}|INPUT1"]
    state = QuantState(index, apply_edit(Toggle((f"{CONV1}|WEIGHT",), False), default, default, {}))
    assert not state.is_on(f"{CONV1}|WEIGHT") and state.point(f"{CONV1}|WEIGHT").spec.bits == 8
    assert state.summary([0]) == "1/1 quantized, A8×1"
    assert state.summary([2]) == "nothing to quantize"
