"""Node labels: module path, op and bit badge; escaping; culling by the view (issue 12 "Labels")."""

from __future__ import annotations

import numpy as np
import pytest

from nncf_explore.graph.ir import Edge, Graph, Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.widgets._collapse import ModuleTree, visible_graph
from nncf_explore.widgets._edits import SetSpec, Toggle, apply_edit
from nncf_explore.widgets._figure import figure_dict
from nncf_explore.widgets._labels import (
    LABEL_CAP,
    LABEL_FONT_PX,
    LABEL_OFFSET_PX,
    ViewBox,
    label_update,
    plain,
    visible_labels,
)
from nncf_explore.widgets._layered import layered_layout
from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets._scene import Scene, build_scene
from nncf_explore.widgets._styles import RING_HIGHLIGHT, RING_MATCH, RING_SELECTED, TRACE_LABELS, styles
from nncf_explore.widgets.graph_view import GraphView
from tests.widgets.fakes import default_setup_for, synthetic_graph

CONV2 = "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv2]/conv2d_0"  # fed by a quantized ReLU


def _scene(graph: Graph) -> tuple[Scene, PointIndex]:
    tree = ModuleTree.from_graph(graph)
    view = visible_graph(graph, tree, frozenset(tree.members))
    layout = layered_layout(view.keys, [(e.src, e.dst) for e in view.edges])
    index = PointIndex(graph, default_setup_for(graph))
    return build_scene(graph, tree, view, layout, index), index


def _label(scene: Scene, state: QuantState, name: str) -> str:
    return str(styles(scene, state).node_labels[scene.view.index[scene.graph.node(name).id]])


def test_a_node_is_labelled_by_module_path_op_and_bit_badge(resnet_graph: Graph) -> None:
    scene, index = _scene(resnet_graph)
    state = QuantState(index, index.default)
    assert _label(scene, state, CONV2) == "<b>layer1.0.conv2</b><br>conv2d · W8 · A8"
    four = apply_edit(SetSpec((f"{CONV2}|WEIGHT",), {"bits": 4}), index.default, index.default, {})
    assert _label(scene, QuantState(index, four), CONV2).endswith("conv2d · W4 · A8")
    relu = "ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__0"
    assert _label(scene, state, relu) == "<b>layer1.0.relu</b><br>relu_ · A8"
    bn = "ResNet/Sequential[layer1]/BasicBlock[0]/BatchNorm2d[bn1]/batch_norm_0"
    assert _label(scene, state, bn) == "<b>layer1.0.bn1</b><br>batch_norm"  # nothing quantized: no badge
    assert _label(scene, state, "/nncf_model_input_0") == "<b>nncf_model_input_0</b><br>A8"  # by its op
    off = apply_edit(Toggle((f"{CONV2}|WEIGHT",), False), index.default, index.default, {})
    assert _label(scene, QuantState(index, off), CONV2).endswith("conv2d · A8")


def test_seven_convs_no_longer_share_one_label(resnet_graph: Graph) -> None:
    scene, index = _scene(resnet_graph)
    labels = styles(scene, QuantState(index, index.default)).node_labels
    convs = [labels[i] for i, n in enumerate(resnet_graph.nodes) if n.op == "conv2d"]
    assert len(set(convs)) == len(convs)


def _evil_graph() -> Graph:
    evil = "<img src=x onerror=alert(1)>"
    nodes = [
        Node(0, "/nncf_model_input_0", "nncf_model_input", OpCategory.INPUT, "", "", ""),
        Node(1, f"Net/Conv2d[{evil}]/conv2d_0", "conv2d", OpCategory.CONVOLUTION, f"Net/Conv2d[{evil}]",
             evil, "Conv2d", params={1: f"{evil}.weight"}, attrs={"has_weight": True}),
        Node(2, "/nncf_model_output_0", "nncf_model_output", OpCategory.OUTPUT, "", "", ""),
    ]  # fmt: skip
    edges = [Edge(0, 1, (1, 3, 8, 8), "float32", 0, 0), Edge(1, 2, (1, 3, 8, 8), "float32", 0, 0)]
    return Graph(nodes, edges, root_class="Net")


def test_label_text_from_the_model_is_escaped() -> None:
    graph = _evil_graph()
    scene, index = _scene(graph)
    label = str(styles(scene, QuantState(index, index.default)).node_labels[1])
    assert "<img" not in label and "&lt;img src=x onerror=alert(1)&gt;" in label
    shown = figure_dict(scene, QuantState(index, index.default))["data"][TRACE_LABELS]["text"]
    assert all("<img" not in str(t) for t in shown)
    # WebGL draws text on a canvas, never as HTML: there the name reads as it is.
    assert plain(label).startswith("<img src=x onerror=alert(1)> · conv2d")


def test_labels_are_readable_and_clear_the_rings() -> None:
    assert LABEL_FONT_PX >= 11
    widest = max(r["size"] / 2 + r["line"]["width"] for r in (RING_SELECTED, RING_MATCH, RING_HIGHLIGHT))
    assert widest <= LABEL_OFFSET_PX


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    x = np.tile(np.arange(cols, dtype=float), rows)
    y = np.repeat(np.arange(rows, dtype=float), cols)
    return x, y, [f"<b>n{i}</b><br>relu" for i in range(rows * cols)]


def test_only_labels_inside_the_view_that_fit_are_shown() -> None:
    x, y, labels = _grid(50, 3)
    zoomed = ViewBox((-0.5, 3.5), (10.5, 4.5), 800, 400)  # 200 px per unit, 67 px per layer
    shown, two_lines = visible_labels(x, y, labels, zoomed)
    assert two_lines and len(shown) == 6 * 3
    assert all(4.5 <= y[i] <= 10.5 for i in shown)
    # Zoomed out, 50 layers in 400 px leave 8 px each: nothing is readable, nothing is drawn.
    assert len(visible_labels(x, y, labels, ViewBox((-0.5, 3.5), (50.0, -1.0), 800, 400))[0]) == 0
    # Columns 30 px apart cannot hold a label to the right; only the last column's fit.
    narrow = ViewBox((-0.5, 99.5), (10.5, 4.5), 3000, 400)
    assert {x[i] for i in visible_labels(x, y, labels, narrow)[0]} == {2.0}


def test_labels_are_capped_nearest_the_centre_first() -> None:
    x, y, labels = _grid(400, 1)
    view = ViewBox((-1.0, 3.0), (400.0, -1.0), 800, 400 * 40)
    shown, _ = visible_labels(x, y, labels, view, cap=10)
    assert len(shown) == 10 and all(abs(y[i] - 199.5) <= 6 for i in shown)
    update = label_update(x, y, labels, view, cap=10)
    assert list(update["y"]) == [y[i] for i in shown]
    assert all(update["x"] > x[shown])  # to the right of the node, past its rings


def test_zooming_into_a_5000_node_graph_shows_readable_labels() -> None:
    graph = synthetic_graph(5000)
    from tests.widgets.fakes import FakeSession

    session = FakeSession(graph)
    view = GraphView(graph, QuantState(PointIndex(graph, session.default_setup), session.setup),
                     collapse_above=10**9)  # fmt: skip
    labels = view.figure.data[TRACE_LABELS]
    view.fit_all()
    assert len(labels.x) == 0  # 5,000 nodes at once: no room for any label
    view.figure.layout.xaxis.range = [-2.0, 4.0]  # what a wheel zoom sends back
    view.figure.layout.yaxis.range = [2020.0, 2005.0]
    assert 0 < len(labels.x) <= LABEL_CAP
    assert all(2005.0 <= y <= 2020.0 for y in labels.y)
    assert any("stages." in t and "conv2d · W8 · A8" in t for t in labels.text)


@pytest.mark.parametrize("light", [True, False])
def test_label_font_follows_the_theme(resnet_graph: Graph, light: bool) -> None:
    from tests.widgets.fakes import FakeSession

    session = FakeSession(resnet_graph)
    view = GraphView(resnet_graph, QuantState(PointIndex(resnet_graph, session.default_setup), session.setup))
    view.set_theme(light)
    assert view.figure.data[TRACE_LABELS].textfont.size >= 11
    assert view.figure.data[TRACE_LABELS].textfont.color == view.figure.layout.font.color
