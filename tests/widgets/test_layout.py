from __future__ import annotations

import itertools
import random
import shutil

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import _layout
from nncf_explore.widgets._graphviz import dot_layout, dot_source
from nncf_explore.widgets._layered import layered_layout
from nncf_explore.widgets._layout import compute_layout
from tests.widgets.fakes import synthetic_graph


def _structure(graph: Graph) -> tuple[list[int], list[tuple[int, int]]]:
    return [n.id for n in graph.nodes], [(e.src, e.dst) for e in graph.edges]


def test_layered_layout_is_deterministic(resnet_graph: Graph) -> None:
    keys, edges = _structure(resnet_graph)
    assert layered_layout(keys, edges) == layered_layout(keys, edges)
    assert layered_layout(keys, list(reversed(edges))).positions == layered_layout(keys, edges).positions


@pytest.mark.parametrize("which", ["resnet", "synthetic"])
def test_y_increases_along_every_edge(which: str, resnet_graph: Graph) -> None:
    graph = resnet_graph if which == "resnet" else synthetic_graph(600)
    keys, edges = _structure(graph)
    pos = layered_layout(keys, edges).positions
    assert all(pos[a][1] < pos[b][1] for a, b in edges)


def test_nodes_in_a_layer_are_at_least_one_apart() -> None:
    rng = random.Random(0)
    edges = [(i, j) for j in range(1, 200) for i in rng.sample(range(j), k=min(j, 2))]
    pos = layered_layout(list(range(200)), edges).positions
    rows: dict[float, list[float]] = {}
    for x, y in pos.values():
        rows.setdefault(y, []).append(x)
    for xs in rows.values():
        xs.sort()
        assert all(b - a >= 0.99 for a, b in itertools.pairwise(xs))


def test_skip_connections_bend_around_the_chain_which_stays_straight(resnet_graph: Graph) -> None:
    keys, edges = _structure(resnet_graph)
    layout = layered_layout(keys, edges)
    first_block = [n.id for n in resnet_graph.nodes if n.module.startswith("layer1.0")]
    assert len({layout.positions[i][0] for i in first_block if i != first_block[-1]}) == 1
    skip = next(
        e for e in resnet_graph.edges if resnet_graph.nodes[e.dst].op == "__iadd__" and e.in_port == 1
    )
    path = layout.path(skip.src, skip.dst)
    assert len(path) > 2
    assert all(x != layout.positions[skip.src][0] for x, _ in path[1:-1])


def test_cycles_from_collapsing_are_laid_out_without_error() -> None:
    layout = layered_layout(["a", "g", "b"], [("a", "g"), ("g", "b"), ("b", "g")])
    assert set(layout.positions) == {"a", "g", "b"}
    assert layout.path("b", "g")[0] == layout.positions["b"]


def test_dot_source_is_built_by_hand_with_numbered_nodes() -> None:
    text = dot_source(3, [(0, 2)])
    assert "n0; n1; n2;" in text and "n0 -> n2;" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_dot_layout_respects_edges(resnet_graph: Graph) -> None:
    keys, edges = _structure(resnet_graph)
    layout = dot_layout(keys, edges, timeout=10)
    assert layout.engine == "dot"
    assert all(layout.positions[a][1] < layout.positions[b][1] for a, b in edges)


def test_missing_dot_falls_back_to_layered_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_layout.shutil, "which", lambda _: None)
    layout = compute_layout([0, 1], [(0, 1)], engine="dot")
    assert layout.engine == "layered"
    assert "not installed" in layout.note


def test_dot_timeout_falls_back(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    monkeypatch.setattr(_layout.shutil, "which", lambda _: str(slow))
    monkeypatch.setattr(_layout, "DOT_TIMEOUT_S", 0.2)
    layout = compute_layout([0, 1, 2], [(0, 1), (1, 2)], engine="dot")
    assert layout.engine == "layered"
    assert "longer than" in layout.note


def test_big_graphs_never_go_to_dot_on_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("dot must not run")

    monkeypatch.setattr(_layout, "dot_layout", fail)
    keys, edges = _structure(synthetic_graph(_layout.DOT_MAX_NODES + 50))
    assert compute_layout(keys, edges).engine == "layered"


def test_layouts_are_cached_by_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _layout.layered_layout
    monkeypatch.setattr(_layout, "layered_layout", lambda k, e: calls.append(1) or real(k, e))
    first = compute_layout([0, 1, 2], [(0, 1), (1, 2)], engine="layered")
    again = compute_layout([0, 1, 2], [(0, 1), (1, 2)], engine="layered")
    other = compute_layout([0, 1, 2], [(0, 2), (1, 2)], engine="layered")
    assert first is again and other is not first
    assert len(calls) == 2
