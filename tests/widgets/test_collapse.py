from __future__ import annotations

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import (
    COLLAPSE_ABOVE,
    ModuleTree,
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
    assert tree.level("layer1") == 0 and tree.level("layer1.0") == 1 and tree.level("layer1.0.relu") == 2


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
    assert (
        len(visible_graph(resnet_graph, tree, deeper).items) == len(keys) - 1 + 6
    )  # 5 nodes + the relu group
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
    assert opened == {"layer1", "layer1.0", "layer1.0.relu"}
    assert visible_graph(resnet_graph, tree, opened).rep[relu] == relu
    assert innermost_open_group(tree, relu, opened) == "layer1.0.relu"
    assert innermost_open_group(tree, 0, opened) is None
