"""The Explorer driven as a user would, without a browser: clicks go through plotly's click dispatch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import Explorer, ExplorerSession
from nncf_explore.widgets._points import BITS4, OFF
from nncf_explore.widgets._scene import GL_ABOVE
from nncf_explore.widgets._styles import TRACE_ACTIVATIONS, TRACE_MATCHES, TRACE_NODES
from tests.widgets.fakes import FakeSession, synthetic_graph

CONV1 = "ResNet/Conv2d[conv1]/conv2d_0"
ADD = "ResNet/Sequential[layer1]/BasicBlock[0]/__iadd___0"


def click(explorer: Explorer, trace: int, point: int) -> None:
    """What the browser sends when a point is clicked (env-notes §2)."""
    explorer.graph_view.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"xs": [0.0], "ys": [0.0], "point_indexes": [point], "trace_indexes": [trace]},
        "device_state": None,
        "selector": None,
    }


def click_node(explorer: Explorer, name: str) -> None:
    node_id = explorer.graph.node(name).id
    click(explorer, TRACE_NODES, explorer.graph_view.scene.view.index[node_id])


def node_colour(explorer: Explorer, name: str) -> float:
    i = explorer.graph_view.scene.view.index[explorer.graph.node(name).id]
    return float(explorer.graph_view.figure.data[TRACE_NODES].marker.color[i])


def css_classes(widget: Any) -> set[str]:
    found = set(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        found |= css_classes(child)
    return found


@pytest.fixture
def explorer(session: FakeSession) -> Explorer:
    return Explorer(session, layout_engine="layered")


def test_fake_session_satisfies_the_protocol(session: FakeSession) -> None:
    assert isinstance(session, ExplorerSession)


def test_widgets_carry_the_documented_css_classes(explorer: Explorer) -> None:
    click_node(explorer, CONV1)
    classes = css_classes(explorer)
    for name in (
        "nxe-explorer",
        "nxe-graph",
        "nxe-search",
        "nxe-op-filter",
        "nxe-undo",
        "nxe-redo",
        "nxe-reset",
        "nxe-bulk-set-bits",
        "nxe-bulk-on",
        "nxe-bulk-off",
        "nxe-error",
        "nxe-json",
        "nxe-stats",
        "nxe-export-path",
        "nxe-export-button",
        "nxe-metric-button",
        "nxe-node-panel",
        "nxe-weight-toggle",
        "nxe-weight-bits",
        "nxe-weight-mode",
        "nxe-weight-per-channel",
        "nxe-act-toggle",
        "nxe-act-bits",
        "nxe-expand-all",
        "nxe-collapse-module",
    ):
        assert name in classes, name
    import nncf_explore.widgets.explorer as module

    documented = module.__doc__ or ""
    assert all(c in documented for c in classes if c.startswith("nxe-"))


def test_click_selects_and_the_panel_shows_the_node(explorer: Explorer) -> None:
    click_node(explorer, CONV1)
    assert explorer.selected == 1
    panel = explorer.node_panel
    assert CONV1 in panel.title.value and "kernel_size" in panel.details.value
    assert panel.weight_row is not None and panel.weight_row.qid == f"{CONV1}|WEIGHT"
    assert [r.qid for r in panel.activation_rows] == ["/nncf_model_input_0|OUTPUT"]
    assert len(explorer.graph_view.figure.data[3].x) == 1  # the selection ring


def test_toggle_weight_off_updates_setup_json_and_colour(explorer: Explorer, session: FakeSession) -> None:
    click_node(explorer, CONV1)
    nodes_trace = explorer.graph_view.figure.data[TRACE_NODES]
    xs = list(nodes_trace.x)
    explorer.node_panel.weight_row.toggle.value = False
    assert f"{CONV1}|WEIGHT" not in session.setup
    assert session.config_json()["compression"]["ignored_scopes"] == [CONV1]
    assert "background:#fff3b0" in explorer.json_panel.value and "ignored_scopes" in explorer.json_panel.value
    assert node_colour(explorer, CONV1) == OFF
    assert (
        explorer.graph_view.figure.data[TRACE_NODES] is nodes_trace and list(nodes_trace.x) == xs
    )  # recoloured
    assert explorer.node_panel.weight_row.bits.disabled


def test_bits_undo_redo_reset(explorer: Explorer, session: FakeSession) -> None:
    click_node(explorer, CONV1)
    row = explorer.node_panel.weight_row
    row.bits.value = 4
    assert session.setup.get(row.qid).spec.bits == 4 and node_colour(explorer, CONV1) == BITS4
    assert [4, row.qid] in session.config_json()["compression"]["initializer"]["precision"][
        "bitwidth_per_scope"
    ]
    assert not explorer.history_bar.undo.disabled and explorer.history_bar.redo.disabled
    explorer.history_bar.undo.click()
    assert session.setup.get(row.qid).spec.bits == 8 and row.bits.value == 8
    explorer.history_bar.redo.click()
    assert session.setup.get(row.qid).spec.bits == 4 and row.bits.value == 4
    row.mode.value = "asymmetric"
    row.per_channel.value = False
    spec = session.setup.get(row.qid).spec
    assert (spec.mode, spec.per_channel) == ("asymmetric", False)
    explorer.history_bar.reset.click()
    assert session.setup == explorer.history.initial and explorer.history.can_undo
    assert explorer.error.message.value == ""


def test_search_and_bulk_edit(explorer: Explorer, session: FakeSession) -> None:
    explorer.search_bar.op_filter.value = "category:convolution"
    explorer.search_bar.query.value = "layer4"
    assert len(explorer.matches) == 5 and "5 matches" in explorer.search_bar.count.value
    assert len(explorer.graph_view.figure.data[TRACE_MATCHES].x) == 5
    explorer.bulk_bar.bits.value = 4
    explorer.bulk_bar.set_bits.click()
    assert sorted(p.target_node for p in session.setup.weights if p.spec.bits == 4) == sorted(
        explorer.graph.nodes[i].name for i in explorer.matches
    )
    explorer.search(r"re:^ResNet/(Conv2d\[conv1\]|Linear\[fc\])/")
    explorer.bulk_bar.kind.value = "all"
    explorer.bulk_bar.off.click()
    gone = {f"{CONV1}|WEIGHT", "ResNet/Linear[fc]/linear_0|WEIGHT", "/nncf_model_input_0|OUTPUT"}
    assert not gone & {p.id for p in session.setup} and explorer.history.label.endswith("off: 3 quantizers")


def test_bulk_without_targets_says_what_to_do(explorer: Explorer) -> None:
    explorer.bulk_bar.off.click()
    assert "search or filter first" in explorer.error.message.value


def test_session_errors_are_shown_and_state_is_kept(explorer: Explorer, session: FakeSession) -> None:
    click_node(explorer, CONV1)
    before, history = session.setup, explorer.history.label
    session.fail_next = ConfigError("quantizer cannot go there; use ignored_scopes")
    explorer.node_panel.weight_row.toggle.value = False
    assert (
        "ConfigError" in explorer.error.message.value and "use ignored_scopes" in explorer.error.message.value
    )
    assert session.setup is before and explorer.history.label == history
    assert explorer.node_panel.weight_row.toggle.value is True  # the checkbox went back
    explorer.node_panel.weight_row.bits.value = 6
    assert explorer.error.message.value == ""  # the next success clears it


def test_restricted_bits_explain_why_and_offer_trial(resnet_graph: Graph) -> None:
    session = FakeSession(resnet_graph, target_device="CPU")
    explorer = Explorer(session, layout_engine="layered")
    click_node(explorer, CONV1)
    row = explorer.node_panel.weight_row
    assert [v for _, v in row.bits.options] == [8]
    assert "nxe-bits-reason" in row.notes.value and "only 8-bit" in row.notes.value
    assert row.switch in row.children
    row.switch.click()
    assert session.setup.target_device == "TRIAL"
    row = explorer.node_panel.weight_row
    assert [v for _, v in row.bits.options] == list(range(2, 9)) and row.switch not in row.children
    explorer.undo()
    assert session.setup.target_device == "CPU"


def test_bulk_bits_not_allowed_offers_the_fix(resnet_graph: Graph) -> None:
    # issue 12: the bulk menu offers only what the target allows, says why, and offers the switch.
    session = FakeSession(resnet_graph, target_device="CPU")
    explorer = Explorer(session, layout_engine="layered")
    explorer.search("layer1", "category:convolution")
    assert list(explorer.bulk_bar.bits.options) == [8] and "only 8-bit" in explorer.bulk_bar.bits_reason.value
    assert explorer.bulk_bar.switch.layout.display is None
    explorer.bulk_bar.switch.click()
    assert session.setup.target_device == "TRIAL" and explorer.error.message.value == ""
    assert list(explorer.bulk_bar.bits.options) == [2, 3, 4, 5, 6, 7, 8]
    assert explorer.bulk_bar.switch.layout.display == "none"
    explorer.bulk_bar.bits.value = 4
    explorer.bulk_bar.set_bits.click()
    assert {p.spec.bits for p in session.setup.weights if "layer1" in p.id} == {4}


def test_nodes_without_quantizers_say_why(explorer: Explorer, session: FakeSession) -> None:
    explorer.select("ResNet/BatchNorm2d[bn1]/batch_norm_0")
    assert explorer.node_panel.rows == [] and "folds batch norm" in explorer.node_panel.note.value
    bn2 = "ResNet/Sequential[layer1]/BasicBlock[0]/BatchNorm2d[bn2]/batch_norm_0"
    session.reasons[bn2] = "matched ignored_scopes entry '{re}.*layer1.*'"
    explorer.select(bn2)
    assert "matched ignored_scopes" in explorer.node_panel.note.value


def test_unified_scale_members_change_together_and_the_panel_says_why(
    explorer: Explorer, session: FakeSession
) -> None:
    explorer.select(ADD)
    rows = {r.qid: r for r in explorer.node_panel.rows}
    assert "nxe-unified-note" in rows[f"{ADD}|INPUT0"].notes.value
    rows[f"{ADD}|INPUT0"].bits.value = 5
    assert session.setup.get(f"{ADD}|INPUT1").spec.bits == 5
    assert rows[f"{ADD}|INPUT1"].bits.value == 5


def test_clicking_an_activation_marker_selects_its_node(explorer: Explorer) -> None:
    markers = explorer.graph_view.scene.markers
    j = markers.qids.index(f"{ADD}|INPUT1")
    click(explorer, TRACE_ACTIVATIONS, j)
    assert explorer.selected == explorer.graph.node(ADD).id


def test_clicking_a_collapsed_module_expands_it(big_graph: Graph) -> None:
    explorer = Explorer(FakeSession(big_graph), layout_engine="layered")
    view = explorer.graph_view
    groups = [k for k in view.scene.view.keys if isinstance(k, str)]
    assert groups and len(view.scene.view.items) <= 500
    click(explorer, TRACE_NODES, view.scene.view.index[groups[0]])
    assert groups[0] in view.expanded and groups[0] not in view.scene.view.keys
    assert len(view.figure.data[TRACE_NODES].x) == len(view.scene.view.items)
    inner = view.tree.members[groups[1]][-1]
    assert inner not in view.scene.view.keys
    explorer.select(inner)  # selecting a hidden node reveals it
    assert inner in view.scene.view.keys
    view.collapse_button.click()
    assert inner not in view.scene.view.keys and explorer.error.message.value == ""


def test_the_figure_keeps_its_traces_through_expand_collapse_and_edits() -> None:
    # A front end that draws late must never meet added or deleted traces: the
    # trace list is fixed at construction, and only updated in place.
    graph = synthetic_graph(GL_ABOVE + 100, blocks_per_stage=32)
    explorer = Explorer(FakeSession(graph), layout_engine="layered")
    view = explorer.graph_view
    traces = list(view.figure.data)
    assert view.figure.data[TRACE_NODES].type == "scattergl"  # chosen by the graph's size
    sent: list[str] = []
    view.figure.observe(
        lambda c: sent.append(c["name"]) if c["new"] else None,
        names=["_py2js_addTraces", "_py2js_deleteTraces", "_py2js_moveTraces"],
    )
    view.expand_all_button.click()
    assert len(view.scene.view.items) == len(graph)
    click(explorer, TRACE_NODES, 5)
    assert explorer.selected == 5
    explorer.node_panel.rows[0].toggle.value = False
    explorer.search("re:conv1")
    view.collapse_all_button.click()
    explorer.undo()
    click(explorer, TRACE_NODES, 0)
    assert explorer.selected == 0 and explorer.error.message.value == ""
    assert [id(t) for t in view.figure.data] == [id(t) for t in traces] and sent == []


def test_edits_before_the_first_draw_reach_the_state_a_front_end_will_draw(
    explorer: Explorer,
) -> None:
    figure = explorer.graph_view.figure
    explorer.select(CONV1)
    explorer.node_panel.weight_row.toggle.value = False
    explorer.search("layer4")
    explorer.graph_view.show(frozenset())
    # What a view created now would draw: the synced state, not the messages it missed.
    drawn = {t["name"]: t for t in figure._widget_data}
    now = {t.name: t for t in figure.data}
    assert list(drawn) == list(now)
    for name in ("nodes", "matches", "selected", "activation quantizers"):
        assert list(drawn[name]["x"]) == list(now[name].x), name
    assert list(drawn["nodes"]["marker"]["color"]) == list(now["nodes"].marker.color)
    assert figure._widget_layout["yaxis"]["range"] == list(figure.layout.yaxis.range)
    # Once the front end reports its first draw, updates go by message only.
    figure._js2py_layoutDelta = {"layout_delta": {}, "layout_edit_id": figure._last_layout_edit_id}
    before = figure._widget_data
    explorer.search("layer3")
    assert figure._widget_data is before
    explorer._repr_mimebundle_()  # displayed again: a new view will draw the current state
    assert list({t["name"]: t for t in figure._widget_data}["matches"]["x"]) == list(
        {t.name: t for t in figure.data}["matches"].x
    )


def test_export_writes_atomically_and_offers_a_download(
    explorer: Explorer, session: FakeSession, tmp_path
) -> None:
    explorer.export_panel.path.value = str(tmp_path / "configs" / "edited.json")
    explorer.export_panel.button.click()
    written = json.loads((tmp_path / "configs" / "edited.json").read_text())
    assert written == session.config_json()
    assert "data:application/json;base64," in explorer.export_panel.link.value
    explorer.export_panel.path.value = str(tmp_path)
    explorer.export_panel.button.click()
    assert "IsADirectoryError" in explorer.error.message.value


def test_metric_on_a_button_and_after_edits(explorer: Explorer, session: FakeSession) -> None:
    explorer.metric_panel.button.click()
    assert explorer.metric_panel.chart is not None and len(explorer.metric_panel.chart.data[0].x) == 1
    explorer.metric_panel.auto.value = True
    explorer.select(CONV1)
    explorer.node_panel.weight_row.bits.value = 4
    assert len(explorer.metric_panel.points) == 2 and session.metric_calls == 2
    assert explorer.metric_panel.points[1].memory_bytes < explorer.metric_panel.points[0].memory_bytes


def test_the_graph_view_error_path_reaches_the_error_area(explorer: Explorer) -> None:
    explorer.graph_view.collapse_button.click()  # nothing selected
    assert "select a node first" in explorer.error.message.value
