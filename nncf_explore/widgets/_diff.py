"""The diff view: what changed between two quantizer setups, as a table and highlighted nodes.

Compare the current setup against the one the Explorer opened with, or two
config files (each placed on the Explorer's graph the way
``create_compressed_model`` would place it).

Examples:
    >>> from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
    >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
    >>> w = QuantizationPoint("weight", "N/conv2d_0", None, QuantizerSpec())
    >>> a = QuantizerSetup((w,))
    >>> b = a.replace_point(w.id, spec={"bits": 4})
    >>> [(c.qid, c.before, c.after) for c in setup_changes(a, b)]
    [('N/conv2d_0|WEIGHT', '8-bit, symmetric, per-tensor', '4-bit, symmetric, per-tensor')]
    >>> [(c.before, c.after) for c in setup_changes(a, QuantizerSetup())]
    [('8-bit, symmetric, per-tensor', 'off (FP32)')]
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.widgets._html import spec_text
from nncf_explore.widgets._ui import button, css

OFF = "off (FP32)"


@dataclass(frozen=True)
class Change:
    """One quantizer that differs: its id, node, and spec before and after (or :data:`OFF`)."""

    qid: str
    node: str
    before: str
    after: str


def _text(point: QuantizationPoint | None) -> str:
    return OFF if point is None else spec_text(point.spec)


def setup_changes(before: QuantizerSetup, after: QuantizerSetup) -> list[Change]:
    """The quantizers whose spec differs, or that are on in one setup only (before's order, then new)."""
    old = {p.id: p for p in before}
    new = {p.id: p for p in after}
    order = [*old, *(q for q in new if q not in old)]
    changes = []
    for qid in order:
        a, b = old.get(qid), new.get(qid)
        if a is None or b is None or a.spec != b.spec:
            node = (a or b).target_node  # type: ignore[union-attr]  # one of them exists
            changes.append(Change(qid, node, _text(a), _text(b)))
    return changes


def changes_html(changes: Sequence[Change], before: str, after: str) -> str:
    """The change table (everything escaped: ids come from the user's model)."""
    if not changes:
        return f"<i>No quantizer differs between {html.escape(before)} and {html.escape(after)}.</i>"
    head = (
        "<tr><th style='text-align:left'>quantizer</th>"
        f"<th style='text-align:left'>{html.escape(before)}</th>"
        f"<th style='text-align:left'>{html.escape(after)}</th></tr>"
    )
    rows = "".join(
        f"<tr><td><code style='font-size:10px'>{html.escape(c.qid)}</code></td>"
        f"<td>{html.escape(c.before)}</td><td>{html.escape(c.after)}</td></tr>"
        for c in changes
    )
    summary = f"<div>{len(changes)} quantizer{'' if len(changes) == 1 else 's'} differ</div>"
    return f"{summary}<table style='font-size:11px'>{head}{rows}</table>"


def device_change_note(before: QuantizerSetup, after: QuantizerSetup) -> str:
    """What a ``target_device`` switch changed, e.g. ``"switched to TRIAL: 2 activation quantizers removed"``.

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> a = QuantizationPoint("activation", "N/relu_0", None, QuantizerSpec())
        >>> device_change_note(QuantizerSetup((a,), "CPU"), QuantizerSetup((), "TRIAL"))
        'switched to TRIAL: 1 activation quantizer removed: N/relu_0|OUTPUT'
    """
    old = {p.id: p for p in before}
    new = {p.id: p for p in after}
    parts: list[str] = []
    for kind in ("weight", "activation"):
        for verb, ids in (
            ("removed", [q for q in old if q not in new and old[q].kind == kind]),
            ("added", [q for q in new if q not in old and new[q].kind == kind]),
            ("changed", [q for q in new if q in old and new[q].kind == kind and new[q].spec != old[q].spec]),
        ):
            if ids:
                shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                plural = "" if len(ids) == 1 else "s"
                parts.append(f"{len(ids)} {kind} quantizer{plural} {verb}: {shown}")
    return f"switched to {after.target_device}: " + ("; ".join(parts) if parts else "no quantizer changed")


class DiffPanel(widgets.VBox):  # type: ignore[misc]
    """Compare the current setup with the opened one, or two config files.

    Args:
        compare: ``compare(path_a, path_b)``: both empty compares the current setup with the opened one.
        clear: Removes the highlight.
    """

    def __init__(self, compare: Callable[[str, str], None], clear: Callable[[], None]) -> None:
        self.path_a = css(
            widgets.Text(placeholder="config A (empty: opened)", layout=widgets.Layout(width="220px")),
            "nxe-diff-a",
        )
        self.path_b = css(
            widgets.Text(placeholder="config B (empty: current)", layout=widgets.Layout(width="220px")),
            "nxe-diff-b",
        )
        self.compare = button("Compare", "nxe-diff-compare", "Table and highlight what differs", "exchange")
        self.clear = button("Clear", "nxe-diff-clear", "Remove the diff highlight")
        self.table = css(widgets.HTML(), "nxe-diff-table")
        self.compare.on_click(lambda _: compare(self.path_a.value.strip(), self.path_b.value.strip()))
        self.clear.on_click(lambda _: clear())
        super().__init__(
            [
                widgets.HTML("<b>Diff</b>"),
                widgets.HBox(
                    [self.path_a, self.path_b, self.compare, self.clear],
                    layout=widgets.Layout(flex_flow="row wrap"),
                ),
                self.table,
            ]
        )
        css(self, "nxe-diff")

    def show(self, changes: Sequence[Change], before: str, after: str) -> None:
        """Show the table."""
        self.table.value = changes_html(changes, before, after)

    def reset(self) -> None:
        """Empty the table."""
        self.table.value = ""


def load_setup(path: str, graph: Any) -> QuantizerSetup:
    """The setup a config file places on ``graph`` (as ``create_compressed_model`` would place it).

    Raises:
        ConfigError: The file is missing, is not a valid NNCF config, or does not fit the graph.
    """
    from nncf_explore.compression.quantization.build import build_quantizer_setup
    from nncf_explore.config.nncf_config import NNCFConfig
    from nncf_explore.errors import ConfigError

    try:
        config = NNCFConfig.from_json(path)
    except FileNotFoundError:
        raise ConfigError(
            f"diff: config file {path!r} not found; give the path of a config file "
            "(the Explorer's “Export config” writes one), or leave both paths empty to compare "
            "the current setup with the opened one"
        ) from None
    return build_quantizer_setup(graph, config)
