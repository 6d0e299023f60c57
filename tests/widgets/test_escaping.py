"""Names from the user's model never reach the DOM as markup: every HTML value escapes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import torch
from torch import nn

from nncf_explore.widgets import Explorer
from tests.widgets.builders import trial_explorer

EVIL = "<img src=x onerror=alert(1)>"


class _EvilNames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module(EVIL, nn.Conv2d(1, 4, 3, padding=1))
        self.act = nn.ReLU()
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(getattr(self, EVIL)(x)).flatten(1))


def _html_values(widget: Any) -> Iterator[str]:
    """HTML strings of ``widget`` and everything shown inside it."""
    if isinstance(widget, widgets.HTML):
        yield widget.value
    for child in getattr(widget, "children", ()):
        yield from _html_values(child)


def _explorer_html(explorer: Explorer) -> list[str]:
    values = list(_html_values(explorer))
    for trace in explorer.graph_view.figure.data:  # plotly renders <b>, <br>, <a> ... in text
        for field in ("text", "hovertext"):
            text = getattr(trace, field, None)
            if text is not None and not isinstance(text, str):
                values.extend(str(t) for t in text)
    return values


def test_a_module_named_like_markup_is_escaped_everywhere() -> None:
    explorer = trial_explorer(_EvilNames().eval())
    evil_conv = next(n for n in explorer.graph.nodes if EVIL in n.name)
    for node in explorer.graph.nodes:
        explorer.select(node.id)
        assert explorer.error.last is None, explorer.error.last
        assert not [v for v in _explorer_html(explorer) if "<img" in v], node.name
    explorer.select(evil_conv.id)
    row = explorer.node_panel.weight_row
    assert row is not None and EVIL in row.qid
    row.toggle.value = False  # the history label names the quantizer
    assert explorer.error.last is None, explorer.error.last
    explorer.select(evil_conv.id)
    values = _explorer_html(explorer)
    assert not [v for v in values if "<img" in v]
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert any(escaped in v for v in values)
    assert escaped in explorer.node_panel.title.value
    assert escaped in row.notes.value
    assert escaped in explorer.history_bar.label.value
