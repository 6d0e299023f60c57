"""What the overlay and mixed-precision panels draw, as pure functions (no widgets).

Examples:
    >>> OVERLAYS["sqnr_db"].title, OVERLAYS["hessian_trace"].higher_is_worse
    ('SQNR (dB)', True)
    >>> most_sensitive({"a": 30.0, "b": 12.0, "c": 20.0}, "sqnr_db", 2)
    ['b', 'c']
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nncf_explore.compression.precision.mixed_precision import MixedPrecisionFront
from nncf_explore.compression.quantization.setup import QuantizerSetup

KIB = 1024
"""Bytes in the one size unit the Explorer shows (the stats, the metric chart and the front)."""


@dataclass(frozen=True)
class Overlay:
    """How one measure is shown: its menu label, colour-bar title and which end is bad."""

    label: str
    title: str
    higher_is_worse: bool


OVERLAYS: dict[str, Overlay] = {
    "bits": Overlay("bits", "bit width", False),
    "sqnr_db": Overlay("SQNR", "SQNR (dB)", False),
    "output_sqnr_db": Overlay("output error vs FP32", "output SQNR vs FP32 (dB)", False),
    "hessian_trace": Overlay("Hessian trace", "Hessian trace", True),
    "metric_drop": Overlay("metric drop", "metric gain in FP32", True),
}
"""The overlay menu, in menu order (after "Off")."""


def bits_by_node(setup: QuantizerSetup) -> dict[str, float]:
    """Node name -> the narrowest bit width of its quantizers.

    Examples:
        >>> from nncf_explore.compression.quantization.setup import QuantizationPoint
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> w = QuantizationPoint("weight", "N/conv2d_0", None, QuantizerSpec(bits=4))
        >>> bits_by_node(QuantizerSetup((w,)))
        {'N/conv2d_0': 4.0}
    """
    out: dict[str, float] = {}
    for p in setup:
        out[p.target_node] = min(out.get(p.target_node, math.inf), float(p.spec.bits))
    return out


def most_sensitive(values: Mapping[str, float], measure: str, k: int) -> list[str]:
    """The ``k`` nodes where ``measure`` is worst, worst first (ties by name, so runs agree)."""
    worse_high = OVERLAYS[measure].higher_is_worse
    finite = {n: v for n, v in values.items() if not math.isnan(v)}
    ranked = sorted(finite, key=lambda n: (-finite[n] if worse_high else finite[n], n))
    return ranked[: max(0, k)]


def format_value(value: float) -> str:
    """A measure for the panel: 3 significant digits, ``∞`` for an exact tensor.

    Examples:
        >>> format_value(12.3456), format_value(math.inf)
        ('12.3', '∞')
    """
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.3g}"


def node_values_html(node: str, values: Mapping[str, Mapping[str, float]]) -> str:
    """The selected node's numbers, one line per measure computed so far."""
    rows = [
        f"<tr><td>{html.escape(OVERLAYS[m].title)}</td><td><b>{format_value(v[node])}</b></td></tr>"
        for m, v in values.items()
        if node in v
    ]
    if not rows:
        return ""
    return "<table style='font-size:12px'>" + "".join(rows) + "</table>"


@dataclass(frozen=True)
class HistogramBars:
    """Counts of the FP32 and the quantized sample over shared bins, and the clip range."""

    centers: tuple[float, ...]
    width: float
    fp32: tuple[int, ...]
    quantized: tuple[int, ...]
    clip: tuple[float, float]

    @property
    def top(self) -> int:
        """The tallest bar (where the clip lines end)."""
        return max((*self.fp32, *self.quantized, 1))


def histogram_bars(
    sample: Sequence[float], quantized: Sequence[float], clip: tuple[float, float], bins: int = 48
) -> HistogramBars:
    """Bin both samples on the same edges, which span the data and the clip range.

    Examples:
        >>> h = histogram_bars([0.0, 1.0, 1.0], [0.0, 1.0, 1.0], (0.0, 1.0), bins=2)
        >>> h.fp32, h.centers
        ((1, 2), (0.25, 0.75))
    """
    finite = [v for v in (*sample, *quantized, *clip) if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins

    def counts(values: Sequence[float]) -> tuple[int, ...]:
        out = [0] * bins
        for v in values:
            if math.isfinite(v):
                out[min(bins - 1, max(0, int((v - low) / width)))] += 1
        return tuple(out)

    centers = tuple(low + (i + 0.5) * width for i in range(bins))
    return HistogramBars(centers, width, counts(sample), counts(quantized), clip)


def histogram_traces(bars: HistogramBars, qid: str) -> list[dict[str, Any]]:
    """The histogram's four fixed traces: FP32 bars, quantized bars, and the two clip lines."""
    lo, hi = bars.clip
    bar = {"type": "bar", "x": list(bars.centers), "opacity": 0.6, "width": bars.width}
    line = {
        "type": "scatter",
        "mode": "lines",
        "line": {"dash": "dash", "color": "#d62728"},
        "showlegend": False,
    }
    name = html.escape(qid)  # plotly renders tags in hover text
    return [
        {**bar, "y": list(bars.fp32), "name": "FP32", "marker": {"color": "#1f77b4"}},
        {**bar, "y": list(bars.quantized), "name": "quantized", "marker": {"color": "#ff7f0e"}},
        {
            **line,
            "x": [lo, lo],
            "y": [0, bars.top],
            "name": "clip low",
            "hovertemplate": f"clip low {lo:.4g}<extra>{name}</extra>",
        },
        {
            **line,
            "x": [hi, hi],
            "y": [0, bars.top],
            "name": "clip high",
            "hovertemplate": f"clip high {hi:.4g}<extra>{name}</extra>",
        },
    ]


# -- the mixed-precision front ---------------------------------------------------------------
COSTS: dict[str, tuple[str, str]] = {
    "weight_bytes": ("weight size", "weights (KiB)"),
    "bit_complexity": ("bit complexity", "bit complexity (MACs × bits)"),
    "bops": ("BOPs", "BOPs"),
}
"""Cost kind -> (menu label, axis title)."""


def cost_units(cost: str, value: float) -> float:
    """A front cost on the chart's axis: KiB for weight bytes, as is otherwise."""
    return value / KIB if cost == "weight_bytes" else value


def format_cost(cost: str, value: float) -> str:
    """``"12.5 KiB"`` or ``"3.2e+06 BOPs"``.

    Examples:
        >>> format_cost("weight_bytes", 2048), format_cost("bops", 3_200_000)
        ('2.0 KiB', '3.2e+06 BOPs')
    """
    if cost == "weight_bytes":
        return f"{value / KIB:.1f} KiB"
    return f"{value:.3g} {COSTS[cost][0]}"


def setup_mark(front: MixedPrecisionFront, setup: QuantizerSetup) -> tuple[float, float]:
    """``(cost, loss)`` of ``setup`` on ``front``'s scale (the searched quantizers only)."""
    searched = {q for g in front.search.groups for q in (*g.weights, *g.activations)}
    bits = {p.id: p.spec.bits for p in setup if p.id in searched}
    loss = sum(front.search.losses.get(q, {}).get(b, 0.0) for q, b in bits.items())
    return front.search.cost_of(bits), loss


def _mark(kind: str, label: str, at: tuple[float, float] | None, symbol: str, color: str) -> dict[str, Any]:
    x, y = ([cost_units(kind, at[0])], [at[1]]) if at is not None else ([], [])
    return {
        "type": "scatter",
        "mode": "markers",
        "x": x,
        "y": y,
        "name": label,
        "marker": {"symbol": symbol, "size": 12, "color": color},
        "hovertemplate": f"{label}: %{{x:.4g}}, loss %{{y:.4g}}<extra></extra>",
    }


def front_traces(front: MixedPrecisionFront, current: tuple[float, float]) -> list[dict[str, Any]]:
    """The chart's five fixed traces: the front, the current setup, uniform INT8 and INT4, the choice."""
    kind = front.cost

    def of(label: str) -> tuple[float, float] | None:
        m = front.marks.get(label)
        return None if m is None else (m.cost, m.loss)

    return [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "front (click to apply)",
            "x": [cost_units(kind, p.cost) for p in front.points],
            "y": [p.loss for p in front.points],
            "text": [f"{format_cost(kind, p.cost)}, predicted loss {p.loss:.4g}" for p in front.points],
            "hovertemplate": "%{text}<extra></extra>",
            "line": {"shape": "hv"},
        },
        _mark(kind, "current", current, "star", "#2ca02c"),
        _mark(kind, "uniform INT8", of("uniform 8-bit"), "square", "#7f7f7f"),
        _mark(kind, "uniform INT4", of("uniform 4-bit"), "diamond", "#9467bd"),
        _mark(kind, "within budget", None, "circle-open", "#d62728"),
    ]
