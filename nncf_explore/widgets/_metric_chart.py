"""The metric chart's data: a size-vs-metric scatter with reference lines (pure, no widgets).

One point per evaluated setup: evaluating a setup again (after undo and redo)
replaces its point instead of adding a twin, so the chart shows setups, not the
edit order.

Examples:
    >>> pts = [MetricPoint(2048, 0.9, "opened", "a"), MetricPoint(1024, 0.8, "bits=4: conv", "b")]
    >>> pts = record(pts, MetricPoint(2048, 0.91, "undo", "a"))
    >>> [(p.label, p.value) for p in pts]
    [('undo', 0.91), ('bits=4: conv', 0.8)]
    >>> padded_range([5.0])
    [4.5, 5.5]
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KIB = 1024


@dataclass(frozen=True)
class MetricPoint:
    """One evaluation: weight memory, metric value, the edit it followed, and the setup's identity."""

    memory_bytes: int
    value: float
    label: str
    key: str = ""


def record(points: Sequence[MetricPoint], point: MetricPoint) -> list[MetricPoint]:
    """``points`` with ``point`` added, replacing an earlier evaluation of the same setup (same key)."""
    kept = [p for p in points if not (point.key and p.key == point.key)]
    at = next((i for i, p in enumerate(points) if point.key and p.key == point.key), len(kept))
    kept.insert(at, point)
    return kept


def padded_range(values: Sequence[float], fraction: float = 0.1) -> list[float]:
    """An axis range around ``values`` with margins; a single value gets ±10% (or ±0.5 at 0)."""
    low, high = min(values), max(values)
    span = high - low
    pad = span * fraction if span > 0 else (abs(low) * fraction or 0.5)
    return [low - pad, high + pad]


def metric_traces(
    points: Sequence[MetricPoint], current: str, fp32_bytes: int, int8_bytes: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chart's four fixed traces (evaluations, the current one, FP32 and INT8 lines) and its axes."""
    xs = [p.memory_bytes / KIB for p in points]
    ys = [p.value for p in points]
    labels = [html.escape(p.label) for p in points]  # plotly renders tags in text
    now = [p for p in points if p.key == current] or list(points[-1:])
    y_range = padded_range(ys)
    x_range = padded_range([*xs, fp32_bytes / KIB, int8_bytes / KIB])
    hover = "%{text}<br>%{x:.1f} KiB<br>metric %{y:.4g}<extra></extra>"

    def line(name: str, size: int, dash: str) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": [size / KIB] * 2,
            "y": y_range,
            "line": {"dash": dash, "color": "#7f7f7f"},
            "hovertemplate": f"{name}: {size / KIB:.1f} KiB<extra></extra>",
        }

    traces = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "evaluated",
            "x": xs,
            "y": ys,
            "text": labels,
            "textposition": "top center",
            "textfont": {"size": 9},
            "hovertemplate": hover,
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "current",
            "x": [p.memory_bytes / KIB for p in now],
            "y": [p.value for p in now],
            "text": [html.escape(p.label) for p in now],
            "hovertemplate": hover,
            "marker": {"symbol": "star", "size": 14, "color": "#2ca02c"},
        },
        line("FP32", fp32_bytes, "dot"),
        line("uniform INT8", int8_bytes, "dash"),
    ]
    axes = {
        "xaxis": {"title": {"text": "weights (KiB)"}, "range": x_range},
        "yaxis": {"title": {"text": "metric"}, "range": y_range},
    }
    return traces, axes
