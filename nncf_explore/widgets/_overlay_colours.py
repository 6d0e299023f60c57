"""Colouring nodes by a measure (SQNR, error vs FP32, Hessian trace...) instead of bit widths (pure).

The node trace keeps numeric colours through a colour scale, which plotly
validates in bulk; nodes without a value get the scale's minimum, where a
thin grey band sits below viridis, so they draw neutral grey while the colour
bar (its own trace, with the plain scale) shows only real values.

Viridis is perceptually uniform and readable with every common colour-vision
deficiency.  Bad values are always its dark end: ``higher_is_worse`` flips
the scale rather than the data, so the colour bar still reads low to high.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nncf_explore.widgets._scene import Scene

VIRIDIS = (
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e",
    "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
)  # fmt: skip
MISSING_COLOUR = "#a6a6a6"
_MISSING_BAND = 0.04  # the share of the node scale below the data, drawn grey


def item_values(scene: Scene, values: Mapping[str, float], higher_is_worse: bool) -> np.ndarray:
    """One value per visible item (NaN where none): a node's own, a group's worst member's."""
    by_id = {n.id: values[n.name] for n in scene.graph.nodes if n.name in values}
    worst = max if higher_is_worse else min
    out = np.full(len(scene.view.items), math.nan)
    for i, item in enumerate(scene.view.items):
        known = [float(by_id[m]) for m in item.members if m in by_id and math.isfinite(by_id[m])]
        if known:
            out[i] = worst(known)
    return out


def scale(higher_is_worse: bool) -> list[list[float | str]]:
    """Viridis from bad (dark) to good (bright), as a plotly colour scale over low..high values.

    Examples:
        >>> scale(False)[0], scale(True)[0]
        ([0.0, '#440154'], [0.0, '#fde725'])
    """
    colours = VIRIDIS[::-1] if higher_is_worse else VIRIDIS
    return [[i / (len(colours) - 1), c] for i, c in enumerate(colours)]


def value_range(vals: np.ndarray) -> tuple[float, float]:
    """The range of the finite values, widened to be non-empty.

    Examples:
        >>> value_range(np.array([2.0, float("nan"), 5.0]))
        (2.0, 5.0)
        >>> value_range(np.array([3.0]))
        (2.5, 3.5)
    """
    finite = vals[np.isfinite(vals)]
    if not len(finite):
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12:
        pad = max(abs(low) * 0.05, 0.5)
        return low - pad, high + pad
    return low, high


def node_marker(vals: np.ndarray, higher_is_worse: bool) -> dict[str, Any]:
    """The node trace's marker for an overlay: values on viridis, missing ones grey.

    Examples:
        >>> m = node_marker(np.array([0.0, float("nan"), 10.0]), higher_is_worse=False)
        >>> float(m["color"][1]) == m["cmin"] < 0.0, m["colorscale"][0][1] == MISSING_COLOUR
        (True, True)
    """
    low, high = value_range(vals)
    cmin = low - (high - low) * _MISSING_BAND / (1 - _MISSING_BAND)
    band = [[0.0, MISSING_COLOUR], [_MISSING_BAND * 0.999, MISSING_COLOUR]]
    stops = [[_MISSING_BAND + (1 - _MISSING_BAND) * float(t), c] for t, c in scale(higher_is_worse)]
    return {
        "color": np.where(np.isfinite(vals), vals, cmin),
        "colorscale": band + stops,
        "cmin": cmin,
        "cmax": high,
    }


def colorbar_update(vals: np.ndarray | None, title: str, higher_is_worse: bool) -> dict[str, Any]:
    """The colour bar trace: shown with the overlay's range and title, or hidden (``vals`` None)."""
    if vals is None:
        return {"marker": {"showscale": False}, "visible": False}
    low, high = value_range(vals)
    note = " (lower is better)" if higher_is_worse else " (higher is better)"
    return {
        "visible": True,
        "marker": {
            "showscale": True,
            "color": np.array([low, high]),
            "cmin": low,
            "cmax": high,
            "colorscale": scale(higher_is_worse),
            "colorbar": {"title": {"text": title + note, "side": "right"}},
        },
    }
