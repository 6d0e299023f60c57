"""The side panel for the selected node: its details and one control row per quantizer.

Each row turns a quantizer on or off and sets bits, mode and per-channel.
Controls never change a setup themselves: they emit an edit
(:mod:`._edits`) and the Explorer applies it, then calls :meth:`NodePanel.show`
again, which updates the same widgets in place when the node is unchanged.

Where nothing can change, the panel says why: the node has no quantization
point (with the session's reason, or one from the node's category), the
target device allows only some bit widths (with a button switching
``target_device`` to ``TRIAL``), or quantizers share a unified scale.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.widgets._edits import Edit, SetDevice, SetSpec, Toggle
from nncf_explore.widgets._html import node_details_html, node_title_html, spec_html
from nncf_explore.widgets._points import QuantState
from nncf_explore.widgets._session import TRIAL_DEVICE, AllowedBits
from nncf_explore.widgets._styles import point_line
from nncf_explore.widgets._ui import css

EDITABLE_BITS = tuple(range(2, 9))
_NOTHING_SELECTED = "<i>Click a node to see and edit its quantizers.</i>"

_AGNOSTIC = (
    "{op} is quantization-agnostic: it passes values through unchanged, so quantizers go on the "
    "tensors around it rather than on it."
)
_CATEGORY_REASONS = {
    OpCategory.NORMALIZATION: (
        "{op} gets no quantizer: NNCF folds batch norm into the preceding convolution, and the "
        "quantizer sits after the norm's output where a compute op consumes it."
    ),
    OpCategory.ACTIVATION: (
        "{op} gets no quantizer of its own: its output is quantized where a compute op consumes it."
    ),
    OpCategory.RESHAPE: _AGNOSTIC,
    OpCategory.POOLING: _AGNOSTIC,
    OpCategory.INPUT: "A model input has no quantizer of its own; one on its outgoing edge quantizes it.",
    OpCategory.OUTPUT: "Model outputs are not quantized.",
}


def default_reason(node: Node) -> str:
    """Why a node without quantization points has none, from its category alone.

    Examples:
        >>> from nncf_explore.graph.ops import OpCategory
        >>> default_reason(Node(3, "Net/ReLU[r]/relu_0", "relu", OpCategory.ACTIVATION, "", "r", "ReLU"))
        "'relu' gets no quantizer of its own: its output is quantized where a compute op consumes it."
    """
    template = _CATEGORY_REASONS.get(
        node.category,
        "No quantizer was placed on {op} by the current config: it may match ignored_scopes, or the "
        "target device's hardware config may not quantize it.",
    )
    return template.format(op=repr(node.op))


@dataclass(frozen=True)
class PanelContext:
    """What the panel reads: the graph, the quantizer state and the session's answers."""

    graph: Graph
    state: QuantState
    allowed: Callable[[QuantizationPoint], AllowedBits]
    reason: Callable[[Node], str | None]

    @property
    def target_device(self) -> str:
        """The current setup's ``target_device``."""
        return self.state.current.target_device


class QuantizerRow(widgets.VBox):  # type: ignore[misc]
    """Controls of one quantizer: on/off, bits, mode, per-channel, and notes."""

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(self, qid: str, kind: str, emit: Callable[[Edit], None]) -> None:
        self.qid = qid
        self.kind = kind  # "weight" | "act"; the CSS class prefix
        self._emit = emit
        self._syncing = False
        narrow = widgets.Layout(width="auto")
        # One fixed width for the on/off label ("W", "A out", "A in (after relu_0)"), so the
        # bits, mode and per-channel controls of weight and activation rows line up.
        self.toggle = css(
            widgets.Checkbox(indent=False, layout=widgets.Layout(width="150px", overflow="hidden")),
            f"nxe-{kind}-toggle",
        )
        self.bits = css(
            widgets.Dropdown(description="bits", layout=widgets.Layout(width="110px")), f"nxe-{kind}-bits"
        )
        self.bits.style.description_width = "28px"
        self.mode = css(
            widgets.Dropdown(options=["symmetric", "asymmetric"], layout=widgets.Layout(width="110px")),
            f"nxe-{kind}-mode",
        )
        self.per_channel = css(
            widgets.Checkbox(description="per-channel", indent=False, layout=narrow),
            f"nxe-{kind}-per-channel",
        )
        self.notes = css(widgets.HTML(), "nxe-quantizer-notes")
        self.switch = css(
            widgets.Button(
                description=f"Switch target_device to {TRIAL_DEVICE}", layout=widgets.Layout(width="auto")
            ),
            "nxe-switch-trial",
        )
        self.toggle.observe(self._changed("enabled"), "value")
        self.bits.observe(self._changed("bits"), "value")
        self.mode.observe(self._changed("mode"), "value")
        self.per_channel.observe(self._changed("per_channel"), "value")
        self.switch.on_click(lambda _: self._emit(SetDevice(TRIAL_DEVICE)))
        self.controls = widgets.HBox(
            [self.toggle, self.bits, self.mode, self.per_channel], layout=widgets.Layout(flex_flow="row wrap")
        )
        # flex "0 0 auto": a flex column must never squeeze a row of controls to nothing.
        box = widgets.Layout(border_bottom="1px solid #eee", flex="0 0 auto", padding="2px 0")
        super().__init__([self.controls, self.notes], layout=box)
        css(self, "nxe-quantizer", f"nxe-{kind}-quantizer")

    def _changed(self, field: str) -> Callable[[dict[str, Any]], None]:
        def emit(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            if field == "enabled":
                self._emit(Toggle((self.qid,), bool(change["new"])))
            else:
                self._emit(SetSpec((self.qid,), {field: change["new"]}))

        return emit

    def sync(self, node: Node, context: PanelContext) -> None:
        """Show the quantizer's current state without emitting edits."""
        state = context.state
        point, on = state.point(self.qid), state.is_on(self.qid)
        allowed = context.allowed(point)
        options = sorted({b for b in allowed.bits if b in EDITABLE_BITS} | {point.spec.bits})
        self._syncing = True
        try:
            self.toggle.description = point_line(point, node, on).split(":", 1)[0]
            self.toggle.value = on
            self.bits.options = [(str(b), b) for b in options]
            self.bits.value = point.spec.bits
            self.mode.value = point.spec.mode
            self.per_channel.value = point.spec.per_channel
            for control in (self.bits, self.mode, self.per_channel):
                control.disabled = not on
            self.toggle.tooltip = self.qid
        finally:
            self._syncing = False
        self._sync_notes(point, allowed, context)

    def _sync_notes(self, point: QuantizationPoint, allowed: AllowedBits, context: PanelContext) -> None:
        # Quantizer ids, names and reasons come from the user's model: escaped, since
        # a module may be registered under any string (even ``<img onerror=...>``).
        notes = [
            f"<code style='font-size:10px;word-break:break-all'>{html.escape(self.qid)}</code><br>"
            f"{spec_html(point.spec)}"
        ]
        members = [q for q in context.state.index.group_of.get(self.qid, ()) if q != self.qid]
        if members:
            notes.append(
                f"<div class='nxe-unified-note'>Shares one scale with {html.escape(', '.join(members))} "
                f"(unified scale group {point.unified_group}): NNCF gives them a single quantizer, "
                "so they change together.</div>"
            )
        restricted = allowed.reason is not None
        if allowed.reason is not None:
            reason = html.escape(allowed.reason)
            notes.append(f"<div class='nxe-bits-reason' style='color:#8a5a00'>{reason}</div>")
        self.notes.value = "<div style='font-size:11px;line-height:1.3'>" + "".join(notes) + "</div>"
        offer_switch = restricted and context.target_device != TRIAL_DEVICE
        self.children = (
            (self.controls, self.notes, self.switch) if offer_switch else (self.controls, self.notes)
        )


class NodePanel(widgets.VBox):  # type: ignore[misc]
    """Details and quantizer controls of the selected node.

    Args:
        emit: Receives every edit the user makes.
    """

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(self, emit: Callable[[Edit], None]) -> None:
        self._emit = emit
        self.node: Node | None = None
        self.rows: list[QuantizerRow] = []
        # Rows are pooled per kind and rebound to another quantizer on each
        # selection: widgets live until closed, so building rows per click would
        # grow the kernel (and the front end) by ~40 widgets a click, forever.
        self._pool: dict[str, list[QuantizerRow]] = {"weight": [], "act": []}
        self.title = css(widgets.HTML(_NOTHING_SELECTED), "nxe-node-title")
        self.details = css(widgets.HTML(), "nxe-node-details")
        self.note = css(widgets.HTML(), "nxe-node-note")
        super().__init__([self.title], layout=widgets.Layout(width="100%"))
        css(self, "nxe-node-panel")

    @property
    def weight_row(self) -> QuantizerRow | None:
        """The row of the node's weight quantizer, if it has one."""
        return next((r for r in self.rows if r.kind == "weight"), None)

    @property
    def activation_rows(self) -> list[QuantizerRow]:
        """Rows of the activation quantizers attached to or feeding the node."""
        return [r for r in self.rows if r.kind == "act"]

    def _bind_rows(self, qids: list[str], weights: Container[str]) -> list[QuantizerRow]:
        """One row per quantizer of ``qids``, taken from the pool (grown only when it runs short)."""
        used = {"weight": 0, "act": 0}
        rows = []
        for qid in qids:
            kind = "weight" if qid in weights else "act"
            pool = self._pool[kind]
            if used[kind] == len(pool):
                pool.append(QuantizerRow(qid, kind, self._emit))
            row = pool[used[kind]]
            used[kind] += 1
            row.qid = qid
            rows.append(row)
        return rows

    def show(self, node: Node | None, context: PanelContext) -> None:
        """Show ``node`` (None: nothing selected) in ``context``'s state."""
        if node is None:
            self.node, self.rows = None, []
            self.title.value = _NOTHING_SELECTED
            self.children = (self.title,)
            return
        qids = list(context.state.index.related.get(node.id, ()))
        if self.node is None or node.id != self.node.id or [r.qid for r in self.rows] != qids:
            self.node = node
            self.title.value = node_title_html(node)
            self.details.value = node_details_html(context.graph, node)
            self.rows = self._bind_rows(qids, context.state.index.weights)
        for row in self.rows:
            row.sync(node, context)
        # Controls first: the attribute table can be long.
        if qids:
            self.children = (self.title, *self.rows, self.details)
        else:
            reason = context.reason(node) or default_reason(node)
            self.note.value = f"<div style='color:#555'>{html.escape(reason)}</div>"
            self.children = (self.title, self.note, self.details)
