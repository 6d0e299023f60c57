"""Choosing a layout engine, with a cache keyed by the graph's structure (pure; no plotly).

The layered engine (:mod:`._layered`) is the default; Graphviz ``dot``
(:mod:`._graphviz`) is optional and runs only below :data:`DOT_MAX_NODES`
nodes, falling back to the layered engine when it is missing, slow or fails.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

from nncf_explore.widgets._graphviz import LayoutUnavailableError, dot_layout
from nncf_explore.widgets._layered import Key, Layout, layered_layout

Engine = Literal["auto", "layered", "dot"]

DOT_MAX_NODES = 300
DOT_TIMEOUT_S = 3.0
_CACHE_SIZE = 32

_cache: OrderedDict[str, Layout] = OrderedDict()


def fingerprint(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]]) -> str:
    """A digest of the graph's structure: equal for equal node and edge lists."""
    digest = hashlib.sha1(repr((tuple(keys), tuple(edges))).encode(), usedforsecurity=False)
    return digest.hexdigest()


def compute_layout(
    keys: Sequence[Key],
    edges: Sequence[tuple[Key, Key]],
    engine: Engine = "layered",
) -> Layout:
    """The layout of a graph with the chosen engine, cached by the graph's fingerprint.

    ``"layered"`` is the default: on traced networks it keeps the main chain
    straight where ``dot`` zig-zags, and it never waits on a subprocess.
    ``"auto"`` uses ``dot`` for graphs of at most :data:`DOT_MAX_NODES` nodes
    when it is installed, and the layered engine otherwise; ``"dot"`` falls
    back to the layered engine (with :attr:`Layout.note` saying why) when dot
    is unavailable.
    """
    key = f"{engine}:{fingerprint(keys, edges)}"
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    layout = _compute(keys, edges, engine)
    _cache[key] = layout
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return layout


def _compute(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]], engine: Engine) -> Layout:
    want_dot = engine == "dot" or (
        engine == "auto" and len(keys) <= DOT_MAX_NODES and shutil.which("dot") is not None
    )
    if not want_dot:
        return layered_layout(keys, edges)
    started = time.perf_counter()
    try:
        return dot_layout(keys, edges, timeout=DOT_TIMEOUT_S)
    except LayoutUnavailableError as exc:
        note = f"{exc}; used the layered layout ({time.perf_counter() - started:.1f} s lost)"
        fallback = layered_layout(keys, edges)
        return Layout(fallback.positions, fallback.bends, "layered", note)


def clear_cache() -> None:
    """Forget every cached layout."""
    _cache.clear()
