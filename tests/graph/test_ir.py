"""The IR is immutable all the way down: nodes and graphs hash, and their mappings refuse writes."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from nncf_explore.graph import Graph, OpCategory, trace_model
from nncf_explore.graph.ir import Node


@pytest.fixture(scope="module")
def graph() -> Graph:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    return trace_model(model, {"sample_size": [1, 3, 8, 8]})


def test_equal_graphs_hash_equal(graph: Graph) -> None:
    again = Graph.from_dict(graph.to_dict())
    assert again == graph and hash(again) == hash(graph)
    assert len({graph, again}) == 1
    assert {n: n.name for n in graph.nodes}[again.nodes[1]] == graph.nodes[1].name


def test_node_fields_refuse_writes(graph: Graph) -> None:
    conv = graph.node("Sequential/Conv2d[0]/conv2d_0")
    with pytest.raises(TypeError, match="does not support item assignment"):
        conv.attrs["groups"] = 2  # type: ignore[index]
    with pytest.raises(TypeError, match="does not support item assignment"):
        conv.params[1] = "other.weight"  # type: ignore[index]
    with pytest.raises(AttributeError):
        conv.attrs.update(groups=2)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="cannot assign to field"):
        conv.name = "renamed"  # type: ignore[misc]
    assert conv.attrs["groups"] == 1 and conv.params[1] == "0.weight"


def test_node_copies_what_it_is_given() -> None:
    attrs: dict[str, object] = {"kernel_size": [3, 3], "has_weight": True, "weight_port": 1}
    params = {1: "conv.weight"}
    node = Node(
        0, "Net/Conv2d[conv]/conv2d_0", "conv2d", OpCategory.CONVOLUTION, "", "conv", "Conv2d", params, attrs
    )
    attrs["has_weight"] = False
    params[1] = "elsewhere"
    assert node.weight == "conv.weight" and node.attrs["kernel_size"] == (3, 3)
    assert Node.from_dict(node.to_dict()) == node and node.to_dict()["attrs"]["kernel_size"] == (3, 3)


def test_nodes_and_graphs_survive_pickle_and_deepcopy(graph: Graph) -> None:
    for clone in (pickle.loads(pickle.dumps(graph)), copy.deepcopy(graph)):
        assert clone == graph and hash(clone) == hash(graph)
        with pytest.raises(TypeError):
            clone.nodes[1].attrs["x"] = 1  # type: ignore[index]


def test_json_round_trip_is_exact(graph: Graph) -> None:
    again = Graph.from_dict(graph.to_dict())
    assert again.to_json() == graph.to_json()
    assert [dict(n.attrs) for n in again.nodes] == [dict(n.attrs) for n in graph.nodes]
    assert torch.Size(again.node("Sequential/Conv2d[0]/conv2d_0").attrs["weight_shape"]) == (4, 3, 3, 3)
