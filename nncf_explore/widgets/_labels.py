"""Node labels: what a user recognises, and which of them fit on screen (pure; plotly is not imported).

A label names a node by its module path and op (``layer1.0.conv1`` over
``conv2d · W4 · A8``), the way Netron labels its boxes.  Only labels that fit
are drawn, recomputed whenever the view moves (:func:`visible_labels`), the
way Model Explorer shows more detail as the user zooms in: a 5,000-node graph
shows none when it is all on screen and readable ones when zoomed in, and the
label trace never holds more than :data:`LABEL_CAP` points, so relabelling
costs the same at any graph size.

All text from the model is HTML-escaped: plotly renders a subset of HTML in
trace text, and module names are the user's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nncf_explore.graph.ir import Node
from nncf_explore.graph.ops import OpCategory

LABEL_FONT_PX = 11
"""Label font size; below 11 px labels were unreadable (issue 12)."""
CHAR_PX = 0.62 * LABEL_FONT_PX
"""Width of an average character of the label font, for fitting labels without a browser."""
LABEL_OFFSET_PX = 20
"""Gap between a node's centre and its label: clears the widest ring drawn around a node."""
LINE_PX = 16
"""Vertical room one label line needs."""
LABEL_CAP = 150
"""At most this many labels at once, whatever the zoom."""

_TAG = re.compile(r"<[^>]+>")
Labels = Sequence[str] | np.ndarray
"""One label per item: a list, or the object array :class:`~._styles.Styles` holds."""


def badge(weight_bits: Sequence[int], activation_bits: Sequence[int]) -> str:
    """The bit badge of a node: its enabled weight and activation bit widths.

    Examples:
        >>> badge([4], [8, 8])
        'W4 · A8'
        >>> badge([4, 8], [])
        'W4/8'
        >>> badge([], [])
        ''
    """
    parts = []
    for kind, bits in (("W", weight_bits), ("A", activation_bits)):
        if bits:
            parts.append(kind + "/".join(str(b) for b in sorted(set(bits))))
    return " · ".join(parts)


def node_title(node: Node) -> str:
    """What a node is called on screen: its module path, or its op outside any module.

    Examples:
        >>> n = Node(3, "Net/Sequential[layer1]/Conv2d[conv1]/conv2d_0", "conv2d",
        ...          OpCategory.CONVOLUTION, "Net/Sequential[layer1]/Conv2d[conv1]", "layer1.conv1", "Conv2d")
        >>> node_title(n)
        'layer1.conv1'
        >>> node_title(Node(0, "/nncf_model_input_0", "nncf_model_input", OpCategory.INPUT, "", "", ""))
        'nncf_model_input_0'
    """
    if node.category in (OpCategory.INPUT, OpCategory.OUTPUT) or not node.module:
        return node.name.rsplit("/", 1)[-1]
    return node.module


def label_text(title: str, detail: str, tag: str) -> str:
    """A two-line label, everything escaped: the title in bold, then the detail and the badge.

    Examples:
        >>> label_text("layer1.0.conv1", "conv2d", "W4 · A8")
        '<b>layer1.0.conv1</b><br>conv2d · W4 · A8'
        >>> label_text("<img src=x>", "relu", "")
        '<b>&lt;img src=x&gt;</b><br>relu'
    """
    second = " · ".join(p for p in (html.escape(detail), html.escape(tag)) if p)
    return f"<b>{html.escape(title)}</b>" + (f"<br>{second}" if second else "")


def one_line(label: str) -> str:
    """The label on one line, for views too dense for two.

    Examples:
        >>> one_line('<b>conv1</b><br>conv2d · W8')
        '<b>conv1</b> · conv2d · W8'
    """
    return label.replace("<br>", " · ")


def plain(label: str) -> str:
    """The label as plain one-line text, for WebGL traces, which draw text verbatim on a canvas.

    A canvas never parses HTML, so the unescaped name is safe there (and
    entities would show literally).

    Examples:
        >>> plain('<b>a&lt;b</b><br>relu · A8')
        'a<b · relu · A8'
    """
    return html.unescape(_TAG.sub("", one_line(label)))


def text_width_px(label: str) -> float:
    """Estimated width in pixels of the widest line of a label.

    Examples:
        >>> text_width_px("<b>ab</b><br>abcd") == 4 * CHAR_PX
        True
    """
    return max(len(html.unescape(_TAG.sub("", line))) for line in label.split("<br>")) * CHAR_PX


@dataclass(frozen=True)
class ViewBox:
    """What the plot shows: axis ranges in data units and the plot area's size in pixels."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width_px: float
    height_px: float

    @property
    def px_per_x(self) -> float:
        """Pixels per data unit along x."""
        return self.width_px / max(abs(self.x_range[1] - self.x_range[0]), 1e-9)

    @property
    def px_per_y(self) -> float:
        """Pixels per layer."""
        return self.height_px / max(abs(self.y_range[1] - self.y_range[0]), 1e-9)


def _gaps_right(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per item, the distance to the next item to its right in the same layer (inf if none)."""
    order = np.lexsort((x, y))
    gaps = np.full(len(x), np.inf)
    same_row = y[order][1:] == y[order][:-1]
    gaps[order[:-1][same_row]] = (x[order][1:] - x[order][:-1])[same_row]
    return gaps


def visible_labels(
    x: np.ndarray,
    y: np.ndarray,
    labels: Labels,
    view: ViewBox,
    cap: int = LABEL_CAP,
    markup: bool = True,
) -> tuple[np.ndarray, bool]:
    """Which labels to draw in ``view``, and whether on two lines.

    A label is drawn when its item is inside the view and the label, starting
    :data:`LABEL_OFFSET_PX` right of the item, ends before the next item of its
    layer; layers must be :data:`LINE_PX` apart per line.  Of more than ``cap``
    candidates, those nearest the view's centre are kept.

    Args:
        x: Item x positions.
        y: Item y positions (layers).
        labels: Two-line labels in plotly's HTML subset, one per item.
        view: What the plot shows.
        cap: At most this many labels.
        markup: False for WebGL traces, which draw one line of plain text.

    Returns:
        Positions into ``labels``, and True for two-line labels.

    Examples:
        >>> x, y = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
        >>> wide = ViewBox((-1.0, 5.0), (2.0, -1.0), 600, 300)  # 100 px per unit, 100 px per layer
        >>> visible_labels(x, y, ["ab", "cd", "ef"], wide)
        (array([0, 1, 2]), True)
        >>> visible_labels(x, y, ["a much longer label", "cd", "ef"], wide)[0]  # 0 would run into 1
        array([1, 2])
        >>> visible_labels(x, y, ["ab", "cd", "ef"], ViewBox((-1.0, 5.0), (2.0, -1.0), 600, 30))[0]
        array([], dtype=int64)
    """
    per_layer = view.px_per_y
    none = np.zeros(0, dtype=np.int64)
    if per_layer < LINE_PX or not len(x):
        return none, False
    two_lines = markup and per_layer >= 2 * LINE_PX + 2
    (x0, x1), (y0, y1) = sorted(view.x_range), sorted(view.y_range)
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    room = _gaps_right(x, y)[inside] * view.px_per_x - LABEL_OFFSET_PX - CHAR_PX
    texts = [str(labels[int(i)]) for i in inside]
    widths = np.array([text_width_px(t if two_lines else one_line(t)) for t in texts], dtype=np.float64)
    fits = inside[widths <= room] if len(inside) else none
    if len(fits) > cap:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dist = ((x[fits] - cx) * view.px_per_x) ** 2 + ((y[fits] - cy) * per_layer) ** 2
        fits = np.sort(fits[np.argsort(dist, kind="stable")[:cap]])
    return fits.astype(np.int64), two_lines


def label_update(
    x: np.ndarray,
    y: np.ndarray,
    labels: Labels,
    view: ViewBox,
    cap: int = LABEL_CAP,
    markup: bool = True,
) -> dict[str, np.ndarray]:
    """The label trace's ``x``, ``y`` and ``text`` for ``view`` (see :func:`visible_labels`)."""
    shown, two_lines = visible_labels(x, y, labels, view, cap, markup)
    chosen = [str(labels[int(i)]) for i in shown]
    shape = plain if not markup else (lambda t: t) if two_lines else one_line
    text = [shape(t) for t in chosen]
    return {
        "x": x[shown] + LABEL_OFFSET_PX / view.px_per_x,
        "y": y[shown],
        "text": np.array(text, dtype=object),
    }
