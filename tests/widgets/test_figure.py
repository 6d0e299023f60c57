from __future__ import annotations

import numpy as np
import pytest

from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import ModuleTree, visible_graph
from nncf_explore.widgets._edits import SetSpec, Toggle, apply_edit
from nncf_explore.widgets._figure import figure_dict
from nncf_explore.widgets._labels import LABEL_CAP
from nncf_explore.widgets._layered import layered_layout
from nncf_explore.widgets._points import BITS4, BITS8, MIXED, NO_WEIGHTS, OFF, STATES, PointIndex, QuantState
from nncf_explore.widgets._scene import GL_ABOVE, MARKER_OFFSET, Scene, build_scene
from nncf_explore.widgets._styles import (
    TRACE_ACTIVATIONS,
    TRACE_EDGES,
    TRACE_FOCUS,
    TRACE_LABELS,
    TRACE_NODES,
    TRACE_SELECTED,
    changed_quantizers,
    colour_of,
    restyled,
    selection_style,
    styles,
)
from tests.widgets.fakes import default_setup_for, synthetic_graph

CONV1 = "ResNet/Conv2d[conv1]/conv2d_0"


def _scene(graph: Graph, expanded: frozenset[str] | None = None) -> tuple[Scene, PointIndex]:
    tree = ModuleTree.from_graph(graph)
    view = visible_graph(graph, tree, frozenset(tree.members) if expanded is None else expanded)
    layout = layered_layout(view.keys, [(e.src, e.dst) for e in view.edges])
    index = PointIndex(graph, default_setup_for(graph))
    return build_scene(graph, tree, view, layout, index), index


@pytest.fixture
def resnet(resnet_graph: Graph) -> tuple[Scene, PointIndex]:
    return _scene(resnet_graph)


def test_one_node_trace_with_ids_in_customdata(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    fig = figure_dict(scene, QuantState(index, index.default))
    data = fig["data"]
    assert [t["name"] for t in data[: TRACE_NODES + 1]][TRACE_NODES] == "nodes"
    assert list(data[TRACE_NODES]["customdata"]) == list(range(len(scene.graph)))
    assert sum(1 for t in data if t["name"] == "nodes") == 1
    assert all(t["type"] == "scatter" for t in data)
    assert data[TRACE_EDGES]["hoverinfo"] == "skip"


def test_edges_are_one_trace_of_nan_separated_polylines(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    edges = figure_dict(scene, QuantState(index, index.default))["data"][TRACE_EDGES]
    assert int(np.isnan(edges["x"]).sum()) == len(scene.view.edges) == len(scene.graph.edges)
    first = scene.view.edges[0]
    assert (edges["x"][0], edges["y"][0]) == scene.layout.positions[first.src]


def test_output_quantizer_markers_sit_near_the_producer_on_each_out_edge(
    resnet: tuple[Scene, PointIndex],
) -> None:
    scene, _ = resnet
    graph = scene.graph
    relu = graph.node("ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__1")
    qid = f"{relu.name}|OUTPUT"
    spots = [(scene.markers.x[j], scene.markers.y[j]) for j, q in enumerate(scene.markers.qids) if q == qid]
    assert len(spots) == len(graph.out_edges(relu.id)) == 2
    for e, (x, y) in zip(graph.out_edges(relu.id), spots):
        (x0, y0), (x1, y1) = scene.layout.path(e.src, e.dst)[:2]
        assert (x, y) == pytest.approx((x0 + MARKER_OFFSET * (x1 - x0), y0 + MARKER_OFFSET * (y1 - y0)))


def test_input_port_markers_sit_near_the_consumer_on_that_edge(resnet: tuple[Scene, PointIndex]) -> None:
    scene, _ = resnet
    add = scene.graph.node("ResNet/Sequential[layer1]/BasicBlock[0]/__iadd___0")
    j = scene.markers.qids.index(f"{add.name}|INPUT1")
    skip = next(e for e in scene.graph.in_edges(add.id) if e.in_port == 1)
    (x0, y0), (x1, y1) = scene.layout.path(skip.src, skip.dst)[-1], scene.layout.path(skip.src, skip.dst)[-2]
    assert (scene.markers.x[j], scene.markers.y[j]) == pytest.approx(
        (x0 + MARKER_OFFSET * (x1 - x0), y0 + MARKER_OFFSET * (y1 - y0))
    )
    assert scene.markers.node_ids[j] == add.id


def test_markers_inside_a_collapsed_group_are_not_drawn(resnet_graph: Graph) -> None:
    scene, index = _scene(resnet_graph, frozenset())
    inner = "ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__0|OUTPUT"  # feeds conv2 of its block
    last = "ResNet/Sequential[layer1]/BasicBlock[1]/ReLU[relu]/relu__1|OUTPUT"  # feeds layer2
    assert inner in index.default and inner not in scene.markers.qids
    j = scene.markers.qids.index(last)
    path = scene.layout.path("layer1", "layer2")
    assert (scene.markers.x[j], scene.markers.y[j]) == pytest.approx(
        (
            path[0][0] + MARKER_OFFSET * (path[1][0] - path[0][0]),
            path[0][1] + MARKER_OFFSET * (path[1][1] - path[0][1]),
        )
    )
    assert "/nncf_model_input_0|OUTPUT" in scene.markers.qids


def test_colours_follow_the_setup(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    conv = scene.view.index[scene.graph.node(CONV1).id]
    relu = scene.view.index[scene.graph.node("ResNet/ReLU[relu]/relu__0").id]
    qid = f"{CONV1}|WEIGHT"
    before = styles(scene, QuantState(index, index.default))
    assert before.node_codes[conv] == BITS8 and before.node_codes[relu] == NO_WEIGHTS
    four = apply_edit(SetSpec((qid,), {"bits": 4}), index.default, index.default, {})
    off = apply_edit(Toggle((qid,), False), index.default, index.default, {})
    assert styles(scene, QuantState(index, four)).node_codes[conv] == BITS4
    assert styles(scene, QuantState(index, off)).node_codes[conv] == OFF
    assert colour_of(BITS4) != colour_of(BITS8) != colour_of(OFF)
    relu_out = [j for j, q in enumerate(scene.markers.qids) if q == "ResNet/ReLU[relu]/relu__0|OUTPUT"]
    act_off = apply_edit(
        Toggle(("ResNet/ReLU[relu]/relu__0|OUTPUT",), False), index.default, index.default, {}
    )
    after = styles(scene, QuantState(index, act_off))
    assert all(
        after.marker_codes[j] == OFF and after.marker_sizes[j] < before.marker_sizes[j] for j in relu_out
    )


def test_incremental_restyle_equals_a_full_one(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    start = QuantState(index, index.default)
    qids = tuple(p.id for p in index.default if "layer2" in p.id)
    setup = apply_edit(SetSpec(qids, {"bits": 4}), index.default, index.default, {})
    setup = apply_edit(Toggle(qids[:3], False), setup, index.default, {})
    end = QuantState(index, setup)
    patched = restyled(scene, end, styles(scene, start), changed_quantizers(index.default, setup))
    full = styles(scene, end)
    for a, b in zip(patched.__dict__.values(), full.__dict__.values()):
        assert list(a) == list(b)


def test_hover_text_names_node_op_module_shape_and_specs(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    i = scene.view.index[scene.graph.node(CONV1).id]
    text = styles(scene, QuantState(index, index.default)).node_hover[i]
    for part in (
        CONV1,
        "op: conv2d",
        "module: conv1 (Conv2d)",
        "out: [1, 64, 16, 16]",
        "W: B:8 M:S SGN:S PC:Y NR:Y",
        "A in (after nncf_model_input_0): B:8 M:S SGN:ANY PC:N NR:N",
    ):
        assert part in text


def test_groups_show_aggregate_state(resnet_graph: Graph) -> None:
    scene, index = _scene(resnet_graph, frozenset())
    layer4 = [p.id for p in index.default.weights if "layer4" in p.id]
    setup = apply_edit(SetSpec(tuple(layer4[:2]), {"bits": 4}), index.default, index.default, {})
    setup = apply_edit(Toggle((layer4[2],), False), setup, index.default, {})
    out = styles(scene, QuantState(index, setup))
    g = scene.view.index["layer4"]
    assert out.node_codes[g] == MIXED
    # 5 convs (one of them off) and 8 activation points: 4 ReLU outputs, 2 unified pairs at the adds
    assert "12/13 quantized, W4×2 W8×2 A8×8" in out.node_hover[g]
    assert "layer4 (Sequential)" in out.node_hover[g]


def test_selection_rings_the_item_and_highlights_its_edges(resnet: tuple[Scene, PointIndex]) -> None:
    scene, _ = resnet
    node = scene.graph.node(CONV1).id
    update = selection_style(scene, node, [])
    i = scene.view.index[node]
    assert list(update[TRACE_SELECTED]["x"]) == [scene.x[i]]
    assert int(np.isnan(update[TRACE_FOCUS]["x"]).sum()) == 2  # its in and out edge
    assert len(selection_style(scene, None, [])[TRACE_SELECTED]["x"]) == 0


def test_webgl_above_the_threshold() -> None:
    graph = synthetic_graph(GL_ABOVE + 200)
    scene, index = _scene(graph)
    data = figure_dict(scene, QuantState(index, QuantizerSetup()))["data"]
    assert data[TRACE_NODES]["type"] == data[TRACE_ACTIVATIONS]["type"] == "scattergl"
    assert data[TRACE_LABELS]["type"] == "scattergl"  # drawn on the same layer as the nodes
    assert "text" not in data[TRACE_NODES]  # labels live in their own, capped, trace
    assert len(data[TRACE_LABELS]["text"]) <= LABEL_CAP


def test_legend_lists_every_state(resnet: tuple[Scene, PointIndex]) -> None:
    scene, index = resnet
    names = [
        t["name"] for t in figure_dict(scene, QuantState(index, index.default))["data"] if t["showlegend"]
    ]
    assert names[: len(STATES)] == list(STATES)
