"""HTML fragments for the Explorer's text panels (pure: strings in, strings out).

The JSON panel shows the config with the lines changed by the last edit
highlighted, and the removed lines struck through where they were.
"""

from __future__ import annotations

import difflib
import html
from collections import Counter
from dataclasses import dataclass

from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.graph.ir import Graph, Node

_ADDED = "background:#fff3b0"
_REMOVED = "background:#fde2e2;color:#a33;text-decoration:line-through"
_PRE = "margin:0;font-size:11px;line-height:1.35;max-height:360px;overflow:auto"


def json_diff_html(old: str | None, new: str) -> str:
    """``new`` as a ``<pre>`` block with lines that differ from ``old`` highlighted.

    Examples:
        >>> out = json_diff_html('{\\n  "a": 1\\n}', '{\\n  "a": 2\\n}')
        >>> "1 line added, 1 removed" in out and "text-decoration:line-through" in out
        True
    """
    new_lines = new.splitlines()
    if old is None:
        body = "\n".join(html.escape(line) for line in new_lines)
        return f'<div class="nxe-json-summary">config</div><pre style="{_PRE}">{body}</pre>'
    old_lines = old.splitlines()
    out: list[str] = []
    added = removed = 0
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
            out.extend(f'<span style="{_REMOVED}">{html.escape(line)}</span>' for line in old_lines[i1:i2])
        if tag in ("replace", "insert"):
            added += j2 - j1
            out.extend(f'<span style="{_ADDED}">{html.escape(line)}</span>' for line in new_lines[j1:j2])
        if tag == "equal":
            out.extend(html.escape(line) for line in new_lines[j1:j2])
    summary = (
        f"last edit: {_plural(added, 'line')} added, {removed} removed"
        if added or removed
        else "last edit: no change"
    )
    return f'<div class="nxe-json-summary">{summary}</div><pre style="{_PRE}">' + "\n".join(out) + "</pre>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class SetupStats:
    """Counts and sizes of one setup against the default setup."""

    weights_on: int
    weights_total: int
    activations_on: int
    activations_total: int
    bits: Counter[tuple[str, int]]  # ("W" | "A", bits) -> count
    memory_bytes: int
    fp32_bytes: int


def setup_stats(
    default: QuantizerSetup, current: QuantizerSetup, memory_bytes: int, fp32_bytes: int
) -> SetupStats:
    """The :class:`SetupStats` of ``current``."""
    return SetupStats(
        weights_on=len(current.weights),
        weights_total=len(default.weights),
        activations_on=len(current.activations),
        activations_total=len(default.activations),
        bits=Counter(("W" if p.kind == "weight" else "A", p.spec.bits) for p in current),
        memory_bytes=memory_bytes,
        fp32_bytes=fp32_bytes,
    )


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: binary units, the one size unit of the whole Explorer.

    Examples:
        >>> human_bytes(1536), human_bytes(44_700_000), human_bytes(512)
        ('1.5 KiB', '42.6 MiB', '512 B')
    """
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


def spec_text(spec: QuantizerSpec) -> str:
    """A spec in words, e.g. ``"8-bit, symmetric, per-tensor"``.

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> spec_text(QuantizerSpec())
        '8-bit, symmetric, per-tensor'
        >>> spec_text(QuantizerSpec(bits=4, mode="asymmetric", per_channel=True, signed=False))
        '4-bit, asymmetric, per-channel, unsigned'
    """
    words = [f"{spec.bits}-bit", spec.mode, "per-channel" if spec.per_channel else "per-tensor"]
    if spec.signed is not None:
        words.append("signed" if spec.signed else "unsigned")
    if spec.narrow_range:
        words.append("narrow range")
    return ", ".join(words)


def spec_html(spec: QuantizerSpec) -> str:
    """:func:`spec_text`, with NNCF's short form (``B:8 M:S ...``) in its hover."""
    return f"<span title='{html.escape(spec.label())}'>{html.escape(spec_text(spec))}</span>"


def stats_html(stats: SetupStats) -> str:
    """Quantizer counts, a bit-width histogram with bars, and weight memory against FP32."""
    top = max(stats.bits.values(), default=1)
    rows = []
    for (kind, bits), count in sorted(stats.bits.items(), key=lambda kv: (kv[0][0] != "W", -kv[0][1])):
        bar = f'<div style="background:#4c78a8;height:9px;width:{max(2, round(120 * count / top))}px"></div>'
        rows.append(f"<tr><td>{kind}{bits}</td><td>{bar}</td><td style='text-align:right'>{count}</td></tr>")
    ratio = stats.memory_bytes / stats.fp32_bytes if stats.fp32_bytes else 1.0
    smaller = f", ×{1 / ratio:.2f} smaller" if 0 < ratio < 1 else ""
    return (
        f"<b>Quantizers</b>: weights {stats.weights_on}/{stats.weights_total}, "
        f"activations {stats.activations_on}/{stats.activations_total}"
        f"<table style='font-size:11px'>{''.join(rows)}</table>"
        f"<b>Weights</b>: {human_bytes(stats.memory_bytes)} of {human_bytes(stats.fp32_bytes)} FP32 "
        f"({100 * ratio:.1f}%{smaller})"
    )


def node_title_html(node: Node) -> str:
    """The node's NNCF name and op, as the panel's heading."""
    return (
        f"<div style='line-height:1.3'><b style='word-break:break-all'>{html.escape(node.name)}</b><br>"
        f"<span style='color:#555;font-size:11px'>{html.escape(node.op)} ({node.category.value}), "
        f"module {html.escape(node.module or '(root)')}</span></div>"
    )


def node_details_html(graph: Graph, node: Node) -> str:
    """Module, class, shapes, layer attributes and parameters of a node as a compact table."""
    ins = ", ".join(str(list(e.shape)) for e in graph.in_edges(node.id)) or "none"
    outs = ", ".join(sorted({str(list(e.shape)) for e in graph.out_edges(node.id)})) or "none"
    rows = [
        ("module", node.module or "(root)"),
        ("class", node.module_class or "-"),
        ("inputs", ins),
        ("outputs", outs),
        *((k, str(v)) for k, v in node.attrs.items() if k not in ("has_weight", "weight_port")),
        *((f"param {port}", name) for port, name in sorted(node.params.items())),
    ]
    cell = "padding:0 8px 0 0;line-height:1.3"
    body = "".join(
        f"<tr><td style='color:#666;{cell}'>{html.escape(k)}</td>"
        f"<td style='{cell}'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:11px;border-collapse:collapse'>{body}</table>"


def error_html(exc: BaseException) -> str:
    """An exception's type and message for the error area."""
    return (
        f"<div style='color:#a00;white-space:pre-wrap'><b>{type(exc).__name__}</b>: "
        f"{html.escape(str(exc))}</div>"
    )
