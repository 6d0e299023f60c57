"""The Explorer's bars: search and op filter, bulk edits, undo/redo/reset (thin ipywidgets).

Bars hold controls and call back into the Explorer; they keep no state of their own.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Literal

import ipywidgets as widgets

from nncf_explore.widgets._search import ALL_OPS
from nncf_explore.widgets._ui import button, css

Action = Callable[[], None]
BulkAction = Literal["set-bits", "on", "off"]


class SearchBar(widgets.HBox):  # type: ignore[misc]
    """Name search (substring, or ``re:`` regex) and an op filter; matches are ringed in the graph."""

    def __init__(self, op_options: list[tuple[str, str]], on_change: Action) -> None:
        self.query = css(
            widgets.Text(
                placeholder="search names: layer4  or  re:conv\\d",
                continuous_update=False,
                layout=widgets.Layout(width="260px"),
            ),
            "nxe-search",
        )
        self.op_filter = css(
            widgets.Dropdown(options=op_options, value=ALL_OPS, layout=widgets.Layout(width="170px")),
            "nxe-op-filter",
        )
        self.count = css(widgets.HTML(), "nxe-match-count")
        self._on_change = on_change
        self._quiet = False
        self.query.observe(self._changed, "value")
        self.op_filter.observe(self._changed, "value")
        super().__init__([self.query, self.op_filter, self.count])

    def _changed(self, _: object) -> None:
        if not self._quiet:
            self._on_change()

    def set(self, query: str, op_filter: str) -> None:
        """Set both controls, then call back once."""
        self._quiet = True
        try:
            self.query.value = query
            self.op_filter.value = op_filter
        finally:
            self._quiet = False
        self._on_change()


class BulkBar(widgets.HBox):  # type: ignore[misc]
    """Edits of many quantizers at once: the matches (or the selection), weights/activations/all."""

    def __init__(self, on_action: Callable[[BulkAction], None]) -> None:
        self.target = css(
            widgets.ToggleButtons(
                options=["matches", "selection"], value="matches", style={"button_width": "80px"}
            ),
            "nxe-bulk-target",
        )
        self.kind = css(
            widgets.Dropdown(
                options=["weights", "activations", "all"],
                value="weights",
                layout=widgets.Layout(width="120px"),
            ),
            "nxe-bulk-kind",
        )
        self.bits = css(
            widgets.Dropdown(
                options=list(range(2, 9)), value=4, description="bits", layout=widgets.Layout(width="110px")
            ),
            "nxe-bulk-bits",
        )
        self.bits.style.description_width = "28px"
        self.set_bits = button(
            "Set bits", "nxe-bulk-set-bits", "Set the bit width of these quantizers (those that are on)"
        )
        self.on = button("On", "nxe-bulk-on", "Turn these quantizers on")
        self.off = button("Off", "nxe-bulk-off", "Turn these quantizers off")
        self.set_bits.on_click(lambda _: on_action("set-bits"))
        self.on.on_click(lambda _: on_action("on"))
        self.off.on_click(lambda _: on_action("off"))
        label = widgets.HTML("<b style='font-size:12px'>Bulk:</b>")
        super().__init__(
            [label, self.target, self.kind, self.bits, self.set_bits, self.on, self.off],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        css(self, "nxe-bulk")


class HistoryBar(widgets.HBox):  # type: ignore[misc]
    """Undo, redo and reset, with the current position in the edit history."""

    def __init__(self, undo: Action, redo: Action, reset: Action) -> None:
        self.undo = button("Undo", "nxe-undo", "Undo the last edit", "undo")
        self.redo = button("Redo", "nxe-redo", "Redo the undone edit", "repeat")
        self.reset = button("Reset", "nxe-reset", "Back to the setup the Explorer opened with (undoable)")
        self.label = css(widgets.HTML(), "nxe-history")
        self.undo.on_click(lambda _: undo())
        self.redo.on_click(lambda _: redo())
        self.reset.on_click(lambda _: reset())
        super().__init__([self.undo, self.redo, self.reset, self.label])

    def sync(self, can_undo: bool, can_redo: bool, label: str) -> None:
        """Enable the buttons that can act and show ``label``."""
        self.undo.disabled = not can_undo
        self.redo.disabled = not can_redo
        self.label.value = f"<span style='font-size:11px;color:#555'>{html.escape(label)}</span>"
