"""FigureSync: a view that starts drawing at any moment ends at the figure's current state."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from nncf_explore.widgets._ui import FigureSync

WATCHED = ["_py2js_update", "_py2js_restyle", "_py2js_relayout", "_widget_data", "_widget_layout"]


def _figure() -> tuple[Any, FigureSync, list[tuple[str, Any]]]:
    fig = go.FigureWidget(data=[{"type": "scatter", "x": [0, 1], "y": [0, 1]}])
    sync = FigureSync(fig)
    sent: list[tuple[str, Any]] = []
    fig.observe(lambda c: sent.append((c["name"], c["new"])) if c["new"] else None, names=WATCHED)
    return fig, sync, sent


def _replay(sent: list[tuple[str, Any]], start: int, initial: list[Any]) -> list[Any]:
    """The marker colours a view draws if it starts listening after ``start`` messages."""
    data = [dict(t) for t in initial]
    for name, message in sent[:start]:
        if name == "_widget_data":
            data = [dict(t) for t in message]
    for name, message in sent[start:]:
        if name in ("_py2js_update", "_py2js_restyle"):
            changes = message.get("style_data") or message.get("restyle_data") or {}
            for key, values in changes.items():
                data[0][key] = values[0] if isinstance(values, list) else values
    return [data[0].get("marker.color", data[0].get("marker", {}).get("color"))]


def test_before_the_first_draw_every_start_point_ends_at_the_current_state() -> None:
    fig, sync, sent = _figure()
    initial = [dict(t) for t in fig._widget_data]
    with fig.batch_update():
        fig.data[0].marker.color = "red"
    sync.changed()
    names = [name for name, _ in sent]
    # The change, the whole state, the change again.
    assert names[0] == names[-1] == "_py2js_update" and "_widget_data" in names[1:-1]
    for start in range(len(sent) + 1):
        assert _replay(sent, start, initial) == ["red"], f"a view listening after {start} messages"


def test_after_the_first_draw_changes_go_by_message_only() -> None:
    fig, sync, sent = _figure()
    fig._js2py_layoutDelta = {"layout_delta": {}, "layout_edit_id": fig._last_layout_edit_id}
    assert sync.drawn
    with fig.batch_update():
        fig.data[0].marker.color = "blue"
    sync.changed()
    assert [name for name, _ in sent] == ["_py2js_update"]
    sync.redisplayed()  # a new view is coming: it draws the current state
    assert [name for name, _ in sent[1:]] == ["_widget_data"] and not sync.drawn
    assert fig._widget_data[0]["marker"]["color"] == "blue"
