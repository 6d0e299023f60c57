"""A long session must not grow: selections and edits reuse widgets instead of creating new ones."""

from __future__ import annotations

from ipywidgets.widgets.widget import _instances

from nncf_explore.graph.ir import Graph
from nncf_explore.graph.ops import OpCategory
from nncf_explore.widgets import Explorer
from tests.widgets.fakes import FakeSession

OPERATIONS = 300


def _session_of_edits(explorer: Explorer, names: list[str], steps: int) -> None:
    """``steps`` user actions: select a node, then flip, re-bit or undo one of its quantizers."""
    for step in range(steps):
        explorer.select(names[step % len(names)])
        rows = explorer.node_panel.rows
        if not rows:
            continue
        row = rows[step % len(rows)]
        action = step % 4
        if action == 0:
            row.toggle.value = not row.toggle.value
        elif action == 1 and row.toggle.value:
            row.bits.value = 4 if row.bits.value != 4 else 8
        elif action == 2 and explorer.history.can_undo:
            explorer.undo()
        else:
            explorer.select(None)
    assert explorer.error.last is None, explorer.error.last


def test_selections_and_edits_leave_the_live_widget_count_flat(resnet_graph: Graph) -> None:
    explorer = Explorer(FakeSession(resnet_graph))
    # Nodes with the most quantizers, and some with none, so every pool size is visited.
    names = [n.name for n in resnet_graph.nodes if n.category is not OpCategory.OUTPUT]
    _session_of_edits(explorer, names, len(names))  # warm up: every node once
    before = len(_instances)
    _session_of_edits(explorer, names, OPERATIONS)
    grown = len(_instances) - before
    assert grown <= 3, f"{grown} widgets more after {OPERATIONS} selections and edits"


def test_rows_are_rebound_not_rebuilt(resnet_graph: Graph) -> None:
    explorer = Explorer(FakeSession(resnet_graph))
    explorer.select("ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0")
    first = explorer.node_panel.weight_row
    explorer.select("ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv2]/conv2d_0")
    second = explorer.node_panel.weight_row
    assert first is second and second is not None
    assert second.qid == "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv2]/conv2d_0|WEIGHT"
    second.toggle.value = False  # the rebound row edits its new quantizer, not the old one
    assert second.qid not in {p.id for p in explorer.session.setup}
    assert "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0|WEIGHT" in {
        p.id for p in explorer.session.setup
    }
