"""The Explorer's bars: search and op filter, bulk edits, undo/redo/reset (thin ipywidgets).

Bars hold controls and call back into the Explorer; they keep no state of their own.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Literal

import ipywidgets as widgets

from nncf_explore.widgets._search import ALL_OPS
from nncf_explore.widgets._session import TRIAL_DEVICE
from nncf_explore.widgets._ui import button, css, hidden

Action = Callable[[], None]
BulkAction = Literal["set-bits", "on", "off"]


SEARCH_DELAY_S = 0.25
"""Typing pause after which the search runs: one search per pause, not one per key."""

Schedule = Callable[[float, Action], Callable[[], None]]
"""``schedule(delay, action)`` runs ``action`` after ``delay`` seconds; returns a cancel function."""


def event_loop_schedule(delay: float, action: Action) -> Callable[[], None]:
    """Run ``action`` on the kernel's event loop after ``delay`` (at once when no loop runs).

    ipykernel handles widget messages on its asyncio loop, so a timer there runs
    in the kernel's own thread.  Without a running loop (a script, a test) there
    is nothing to wait for and the action runs now.
    """
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        action()
        return lambda: None
    return loop.call_later(delay, action).cancel


class SearchBar(widgets.HBox):  # type: ignore[misc]
    """Name search (substring, or ``re:`` regex) and an op filter; matches are ringed in the graph.

    The search runs as the user types, :data:`SEARCH_DELAY_S` after the last key.
    """

    def __init__(
        self, op_options: list[tuple[str, str]], on_change: Action, schedule: Schedule = event_loop_schedule
    ) -> None:
        self.query = css(
            widgets.Text(
                placeholder="search names: layer4  or  re:conv\\d",
                continuous_update=True,
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
        self._schedule = schedule
        self._pending: Callable[[], None] | None = None
        self.query.observe(self._typed, "value")
        self.op_filter.observe(self._changed, "value")
        super().__init__([self.query, self.op_filter, self.count])

    def _typed(self, _: object) -> None:
        if self._quiet:
            return
        if self._pending is not None:
            self._pending()  # a newer key: the earlier search would be stale
        self._pending = self._schedule(SEARCH_DELAY_S, self._run_pending)

    def _run_pending(self) -> None:
        self._pending = None
        self._on_change()

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

    def __init__(
        self, on_action: Callable[[BulkAction], None], switch_to_trial: Action | None = None
    ) -> None:
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
        self.bits_reason = css(widgets.HTML(), "nxe-bulk-bits-reason")
        self.switch = button(f"Switch target_device to {TRIAL_DEVICE}", "nxe-bulk-switch-trial")
        self.switch.on_click(lambda _: switch_to_trial() if switch_to_trial else None)
        hidden(self.switch, True)
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
            [
                label,
                self.target,
                self.kind,
                self.bits,
                self.set_bits,
                self.on,
                self.off,
                self.bits_reason,
                self.switch,
            ],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        css(self, "nxe-bulk")

    def offer_bits(
        self, bits: tuple[int, ...], reason: str | None = None, device: str = TRIAL_DEVICE
    ) -> None:
        """Offer only ``bits`` (what the target allows), keeping the choice when it is still offered.

        With a ``reason`` (the target restricts bits) the bar says why and offers the switch to TRIAL.
        """
        hidden(self.switch, reason is None or device == TRIAL_DEVICE)
        offered = [b for b in bits if 2 <= b <= 8] or [8]
        if list(self.bits.options) != offered:
            keep = self.bits.value if self.bits.value in offered else (4 if 4 in offered else offered[-1])
            self.bits.options = offered
            self.bits.value = keep
        note = (
            ""
            if reason is None
            else f"<span style='font-size:11px;color:#8a5a00'>{html.escape(reason)}</span>"
        )
        self.bits_reason.value = note


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
