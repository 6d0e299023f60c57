"""The layered engine: a small Sugiyama layout for traced networks (pure).

Longest-path layering, dummy vertices on edges spanning a few layers (so skip
connections bend around the main chain instead of crossing its nodes),
barycentre sweeps to order each layer, and x coordinates placed by isotonic
regression so chains stay straight.  It lays out 2,000 nodes in well under a
second in plain Python.

Coordinates are in "layer" units: y is the layer (it grows along edges; the
figure flips the axis so the graph reads top-down) and neighbouring nodes in
a layer are at least 1 apart in x.

Examples:
    >>> lay = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    >>> [lay.positions[k][1] for k in "abc"]
    [0.0, 1.0, 2.0]
    >>> lay.bends[("a", "c")]  # the skip edge bends around b
    ((1.0, 1.0),)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

Key = Hashable
Point = tuple[float, float]

# Dummy chains on edges longer than this would multiply the vertex count on
# graphs where one tensor (a mask, an embedding) feeds every layer.
MAX_DUMMY_SPAN = 40


@dataclass(frozen=True)
class Layout:
    """Node positions and the bend points of routed edges.

    Attributes:
        positions: ``(x, y)`` per key.
        bends: Intermediate points of an edge ``(src, dst)`` between its ends,
            stored once per node pair (a back edge of a cycle is found under
            ``(dst, src)``); edges not listed are straight.
        engine: ``"layered"`` or ``"dot"``, whichever produced the layout.
        note: Why the requested engine was not used, or ``""``.
    """

    positions: dict[Key, Point]
    bends: dict[tuple[Key, Key], tuple[Point, ...]] = field(default_factory=dict)
    engine: str = "layered"
    note: str = ""

    def path(self, src: Key, dst: Key) -> list[Point]:
        """The polyline of edge ``src -> dst``, from ``src`` to ``dst``."""
        middle = self.bends.get((src, dst))
        if middle is None:
            middle = tuple(reversed(self.bends.get((dst, src), ())))
        return [self.positions[src], *middle, self.positions[dst]]


# -- the layered engine -------------------------------------------------------------


@dataclass
class _Work:
    """Mutable state of one layered layout: real vertices first, then dummies."""

    n_real: int
    layer: list[int]
    up: list[list[int]]  # neighbours in earlier layers
    down: list[list[int]]  # neighbours in later layers
    chains: dict[tuple[int, int], list[int]] = field(default_factory=dict)


def _forward_edges(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]]) -> list[tuple[int, int]]:
    # Edges against the key order are back edges of a cycle (collapsed groups
    # can form cycles); reversing them breaks every cycle.
    pos = {k: i for i, k in enumerate(keys)}
    pairs = {(pos[a], pos[b]) if pos[a] < pos[b] else (pos[b], pos[a]) for a, b in edges if a != b}
    return sorted(pairs)


def _layers(n: int, edges: list[tuple[int, int]]) -> list[int]:
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    layer = [0] * n
    for v in range(n):  # every edge goes forward in index order
        if preds[v]:
            layer[v] = max(layer[p] for p in preds[v]) + 1
    for v in range(n):
        # A second input (a mask, a constant) sits just above its first consumer.
        if not preds[v] and succs[v]:
            layer[v] = max(layer[v], min(layer[s] for s in succs[v]) - 1)
    return layer


def _build_work(n: int, edges: list[tuple[int, int]]) -> _Work:
    layer = _layers(n, edges)
    work = _Work(n, layer, [[] for _ in range(n)], [[] for _ in range(n)])
    for a, b in edges:
        span = layer[b] - layer[a]
        prev = a
        chain: list[int] = []
        if 1 < span <= MAX_DUMMY_SPAN:
            for step in range(1, span):
                d = len(work.layer)
                work.layer.append(layer[a] + step)
                work.up.append([])
                work.down.append([])
                chain.append(d)
            work.chains[(a, b)] = chain
        for v in [*chain, b]:
            work.up[v].append(prev)
            work.down[prev].append(v)
            prev = v
    return work


def _isotonic_place(targets: list[float], weights: list[float]) -> list[float]:
    """Positions closest to ``targets`` (weighted least squares) keeping order and gaps of at least 1."""
    # With y_i = x_i - i the gap constraint becomes "y non-decreasing": pool
    # adjacent violators into blocks sitting at their weighted mean.
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for i, (t, w) in enumerate(zip(targets, weights, strict=True)):
        blocks.append([(t - i) * w, w, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w_, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w_
            blocks[-1][2] += c
    out: list[float] = []
    for s, w_, c in blocks:
        out.extend([s / w_] * int(c))
    return [y + i for i, y in enumerate(out)]


# Dummies give way to real nodes, so a chain stays straight and its skip
# connections swing out around it.
_DUMMY_WEIGHT = 0.01


def _centre(v: int, neighbours: list[int], x: list[float], n_real: int) -> float:
    if not neighbours:
        return x[v]
    if v >= n_real:
        return sum(x[u] for u in neighbours) / len(neighbours)
    weights = [1.0 if u < n_real else _DUMMY_WEIGHT for u in neighbours]
    return sum(w * x[u] for w, u in zip(weights, neighbours, strict=True)) / sum(weights)


def _sweep(work: _Work, rows: list[list[int]], x: list[float], downward: bool) -> None:
    neighbours = work.up if downward else work.down
    order = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
    for r in order:
        row = rows[r]
        centre = [_centre(v, neighbours[v], x, work.n_real) for v in row]
        ranked = sorted(range(len(row)), key=lambda i: (centre[i], x[row[i]]))
        row[:] = [row[i] for i in ranked]
        weights = [1.0 if v < work.n_real else _DUMMY_WEIGHT for v in row]
        placed = _isotonic_place([centre[i] for i in ranked], weights)
        for v, xv in zip(row, placed, strict=True):
            x[v] = xv


def _snap(v: float) -> float:
    # A tenth of the node spacing is invisible; snapping hides float noise so
    # layouts compare equal across platforms (and turns -0.0 into 0.0).
    return round(v, 1) + 0.0


def layered_layout(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]], *, sweeps: int = 3) -> Layout:
    """Lay out a graph top-down in layers.

    Args:
        keys: The nodes, best in topological order (trace order is); edges
            against this order are treated as reversed, which breaks cycles.
        edges: ``(src, dst)`` pairs; duplicates and self loops are ignored.
        sweeps: Down-and-up barycentre passes; more reduce crossings a little.

    Returns:
        A deterministic :class:`Layout`: the same input always gives the same positions.
    """
    n = len(keys)
    forward = _forward_edges(keys, edges)
    work = _build_work(n, forward)
    depth = max(work.layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for v, lv in enumerate(work.layer):
        rows[lv].append(v)
    x = [0.0] * len(work.layer)
    for row in rows:
        for i, v in enumerate(row):
            x[v] = i - (len(row) - 1) / 2
    for _ in range(sweeps):
        _sweep(work, rows, x, downward=True)
        _sweep(work, rows, x, downward=False)
    positions: dict[Key, Point] = {k: (_snap(x[i]), float(work.layer[i])) for i, k in enumerate(keys)}
    bends = {
        (keys[a], keys[b]): tuple((_snap(x[d]), float(work.layer[d])) for d in chain)
        for (a, b), chain in work.chains.items()
    }
    return Layout(positions, bends, "layered")
