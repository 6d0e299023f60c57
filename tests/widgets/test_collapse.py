from __future__ import annotations

import torch
from torch import nn

from nncf_explore.graph import trace_model
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import (
    COLLAPSE_ABOVE,
    ModuleTree,
    ViewKey,
    collapse,
    expand,
    initial_expanded,
    innermost_open_group,
    reveal,
    visible_count,
    visible_graph,
)
from tests.widgets.fakes import synthetic_graph


def test_resnet_groups_follow_the_module_tree(resnet_graph: Graph) -> None:
    tree = ModuleTree.from_graph(resnet_graph)
    assert "layer1" in tree.members and "layer1.0" in tree.members and "layer2.0.downsample" in tree.members
    assert "conv1" not in tree.members  # one node: shown as the node itself
    assert tree.classes["layer1.0"] == "BasicBlock" and tree.label("layer1") == "layer1 (Sequential)"
    assert (
        tree.level("layer1") == 0 and tree.level("layer1.0") == 1 and tree.level("layer2.0.downsample") == 2
    )
    # BasicBlock calls its one ReLU twice, each call a single node: no group, not one merged "relu".
    assert "layer1.0.relu" not in tree.members and "layer1.0.relu#2" not in tree.members


def test_pass_through_modules_keep_only_the_outer_group() -> None:
    tree = ModuleTree.from_graph(synthetic_graph(200, blocks_per_stage=4))
    assert "stages.0" in tree.members and "stages.0.blocks" not in tree.members


def test_fully_collapsed_resnet_aggregates_edges(resnet_graph: Graph) -> None:
    tree = ModuleTree.from_graph(resnet_graph)
    view = visible_graph(resnet_graph, tree, frozenset())
    assert view.keys == [0, 1, 2, 3, 4, "layer1", "layer2", "layer3", "layer4", 67, 68, 69, 70]
    between = {(e.src, e.dst): e.count for e in view.edges}
    assert between[(4, "layer1")] == 2  # into conv1 and into the residual add
    assert between[("layer1", "layer2")] == 2  # into conv1 and into the downsample conv
    assert all(e.src != e.dst for e in view.edges)


def test_every_node_is_shown_exactly_once(big_graph: Graph) -> None:
    tree = ModuleTree.from_graph(big_graph)
    for expanded in (frozenset(), frozenset({"stages", "stages.0"}), frozenset(tree.members)):
        view = visible_graph(big_graph, tree, expanded)
        shown = sorted(i for item in view.items for i in item.members)
        assert shown == list(range(len(big_graph)))
        assert visible_count(tree, len(big_graph), expanded) == len(view.items)


def test_expanding_a_group_reveals_its_children_and_collapsing_hides_them(resnet_graph: Graph) -> None:
    tree = ModuleTree.from_graph(resnet_graph)
    closed = frozenset[str]()
    opened = expand(closed, "layer1")
    keys = visible_graph(resnet_graph, tree, opened).keys
    assert "layer1" not in keys and "layer1.0" in keys and "layer1.1" in keys
    deeper = expand(opened, "layer1.0")
    # conv1, bn1, relu, conv2, bn2, add, relu: the two ReLU calls are two nodes, not one group.
    assert len(visible_graph(resnet_graph, tree, deeper).items) == len(keys) - 1 + 7
    assert collapse(deeper, "layer1") == closed


def test_small_graphs_open_fully_and_big_ones_by_whole_levels(resnet_graph: Graph, big_graph: Graph) -> None:
    resnet_tree = ModuleTree.from_graph(resnet_graph)
    assert initial_expanded(resnet_tree, len(resnet_graph)) == frozenset(resnet_tree.members)
    tree = ModuleTree.from_graph(big_graph)
    expanded = initial_expanded(tree, len(big_graph))
    assert expanded == initial_expanded(tree, len(big_graph))
    assert visible_count(tree, len(big_graph), expanded) <= COLLAPSE_ABOVE
    levels = {tree.level(g) for g in expanded}
    for level in levels:
        assert {g for g in tree.members if tree.level(g) == level} <= expanded
    assert len(big_graph) > COLLAPSE_ABOVE and expanded != frozenset(tree.members)


def test_reveal_and_innermost_open_group(resnet_graph: Graph) -> None:
    tree = ModuleTree.from_graph(resnet_graph)
    relu = resnet_graph.node("ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__1").id
    opened = reveal(tree, frozenset(), [relu])
    assert opened == {"layer1", "layer1.0"}
    assert visible_graph(resnet_graph, tree, opened).rep[relu] == relu
    assert innermost_open_group(tree, relu, opened) == "layer1.0"
    assert innermost_open_group(tree, 0, opened) is None


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class _ReusesModules(nn.Module):
    """The quickstart's shape: one ``pool`` and one two-op ``block``, each called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = _Block()
        self.mid = nn.Conv2d(4, 4, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block(self.stem(x)))
        return self.pool(self.block(self.mid(x))).flatten(1)


def _is_forward_dag(keys: list[ViewKey], edges: list[tuple[ViewKey, ViewKey]]) -> bool:
    order = {k: i for i, k in enumerate(keys)}
    return all(order[a] < order[b] for a, b in edges)


def test_a_group_is_a_module_call_not_a_module_object() -> None:
    graph = trace_model(_ReusesModules().eval(), {"sample_size": [1, 1, 8, 8]})
    tree = ModuleTree.from_graph(graph)
    assert [g for g in tree.members if g.startswith("block")] == ["block", "block#2"]
    first, second = tree.members["block"], tree.members["block#2"]
    assert not set(first) & set(second) and len(first) == len(second) == 2
    assert tree.label("block#2") == "block#2 (_Block)"
    assert "pool" not in tree.members  # each call of pool is one node: shown as itself
    view = visible_graph(graph, tree, frozenset())
    assert view.keys.count("block") == 1 and "block#2" in view.keys
    pairs = [(e.src, e.dst) for e in view.edges]
    assert _is_forward_dag(view.keys, pairs), pairs  # no back edge
    assert len(pairs) == len(set(pairs))
    fan_out = [k for k in view.keys if sum(a == k for a, _ in pairs) > 1]
    assert fan_out == [], f"false forks at {fan_out}"
    assert collapse(frozenset(tree.members), "block") == {"block#2"}


def test_collapse_all_on_the_quickstart_cnn_keeps_both_pool_calls_apart() -> None:
    class DigitsCNN(nn.Module):  # notebooks/01_quickstart.ipynb
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(32 * 2 * 2, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))

    graph = trace_model(DigitsCNN().eval(), {"sample_size": [1, 1, 8, 8]})
    tree = ModuleTree.from_graph(graph)
    view = visible_graph(graph, tree, frozenset())
    pools = [k for k in view.keys if isinstance(k, int) and graph.nodes[k].module == "pool"]
    assert len(pools) == 2
    pairs = [(e.src, e.dst) for e in view.edges]
    assert _is_forward_dag(view.keys, pairs), pairs
    assert all(sum(a == p for a, _ in pairs) == 1 for p in pools)  # each pool call feeds one op
