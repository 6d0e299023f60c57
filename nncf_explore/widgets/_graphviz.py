"""Layout by Graphviz ``dot`` in a subprocess, on DOT text built here (never parsed with pydot).

``dot`` can take minutes on dense graphs, so it always runs with the
``nslimit``/``mclimit`` flags and a timeout; callers fall back to the layered
engine on :class:`LayoutUnavailableError`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from nncf_explore.widgets._layered import Key, Layout, Point

DOT_FLAGS = ("-Gnslimit=1", "-Gnslimit1=1", "-Gmclimit=0.1")


class LayoutUnavailableError(RuntimeError):
    """Graphviz could not lay the graph out (missing, too slow or failed)."""


def dot_source(n: int, edges: Sequence[tuple[int, int]]) -> str:
    """DOT text for nodes ``0..n-1`` drawn as small unlabelled boxes.

    Examples:
        >>> print(dot_source(2, [(0, 1)]))
        digraph G {
        graph [rankdir=TB, nodesep=0.3, ranksep=0.4];
        node [shape=box, width=0.3, height=0.2, fixedsize=true, label=""];
        n0; n1;
        n0 -> n1;
        }
    """
    lines = [
        "digraph G {",
        "graph [rankdir=TB, nodesep=0.3, ranksep=0.4];",
        'node [shape=box, width=0.3, height=0.2, fixedsize=true, label=""];',
        " ".join(f"n{i};" for i in range(n)),
        *(f"n{a} -> n{b};" for a, b in edges),
        "}",
    ]
    return "\n".join(lines)


_DOT_UNIT = 0.6  # inches between ranks (height 0.2 + ranksep 0.4) and between nodes (0.3 + 0.3)


def _parse_plain(text: str, n: int) -> tuple[list[Point], dict[tuple[int, int], tuple[Point, ...]]]:
    points: dict[int, Point] = {}
    splines: dict[tuple[int, int], tuple[Point, ...]] = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            points[int(parts[1][1:])] = (float(parts[2]), float(parts[3]))
        elif parts and parts[0] == "edge":
            a, b, count = int(parts[1][1:]), int(parts[2][1:]), int(parts[3])
            coords = [(float(parts[4 + 2 * i]), float(parts[5 + 2 * i])) for i in range(count)]
            splines[(a, b)] = tuple(coords[3:-1:3])  # the on-curve points of the Bezier chain
    if len(points) != n:
        raise LayoutUnavailableError(f"dot returned {len(points)} of {n} nodes")
    top = max(y for _, y in points.values())

    def convert(p: Point) -> Point:
        return (p[0] / _DOT_UNIT, (top - p[1]) / _DOT_UNIT)

    return [convert(points[i]) for i in range(n)], {k: tuple(map(convert, v)) for k, v in splines.items()}


def dot_layout(
    keys: Sequence[Key],
    edges: Sequence[tuple[Key, Key]],
    *,
    timeout: float,
    dot: str | None = None,
) -> Layout:
    """Lay out with Graphviz ``dot`` in a subprocess.

    Raises:
        LayoutUnavailableError: ``dot`` is not installed, timed out or failed.
    """
    exe = dot or shutil.which("dot")
    if exe is None:
        raise LayoutUnavailableError("graphviz 'dot' is not installed")
    pos = {k: i for i, k in enumerate(keys)}
    pairs = sorted({(pos[a], pos[b]) for a, b in edges if a != b})
    try:
        done = subprocess.run(
            [exe, "-Tplain", *DOT_FLAGS],
            input=dot_source(len(keys), pairs),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LayoutUnavailableError(f"dot took longer than {timeout:g} s") from exc
    except OSError as exc:
        raise LayoutUnavailableError(f"could not run dot: {exc}") from exc
    if done.returncode != 0:
        raise LayoutUnavailableError(f"dot failed: {done.stderr.strip()[:200]}")
    points, splines = _parse_plain(done.stdout, len(keys))
    positions = {k: points[i] for i, k in enumerate(keys)}
    bends = {(keys[a], keys[b]): path for (a, b), path in splines.items() if path}
    return Layout(positions, bends, "dot")
