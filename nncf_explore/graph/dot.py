"""Dot dumps in NNCF's dialect.

Node ids and labels are ``"{id} {name}"``; edge labels are
``"{shape} \\n{out_port} -> {in_port}"``; integer-dtype edges are dashed.  ``:``
in names becomes ``^`` in ids (dot reads ``:`` as a port), the label keeps it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pydot

if TYPE_CHECKING:
    from nncf_explore.graph.ir import Graph


def _quote(text: str) -> str:
    # Only quotes are escaped: a backslash sequence such as "\n" is dot's own line break.
    return '"' + text.replace('"', '\\"') + '"'


def to_pydot(graph: Graph, annotations: Mapping[int, str] | None = None) -> pydot.Dot:
    """The graph as a ``pydot.Dot``; ``annotations`` add a line to chosen nodes' labels."""
    dot = pydot.Dot(graph_type="digraph", strict=True)
    for node in graph.nodes:
        key = f"{node.id} {node.name}"
        label = key if not annotations or node.id not in annotations else f"{key}\\n{annotations[node.id]}"
        dot.add_node(pydot.Node(_quote(key.replace(":", "^")), label=_quote(label), id=node.id, type=node.op))
    for edge in graph.edges:
        src, dst = graph.nodes[edge.src], graph.nodes[edge.dst]
        dot.add_edge(
            pydot.Edge(
                _quote(f"{src.id} {src.name}".replace(":", "^")),
                _quote(f"{dst.id} {dst.name}".replace(":", "^")),
                label=_quote(f"{list(edge.shape)} \\n{edge.out_port} -> {edge.in_port}"),
                style="dashed" if edge.is_integer else "solid",
            )
        )
    return dot


def write_dot(
    graph: Graph, path: str | os.PathLike[str], annotations: Mapping[int, str] | None = None
) -> None:
    """Write ``graph`` as a dot file, atomically (a crash never leaves half a file)."""
    text = to_pydot(graph, annotations).to_string()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".dot")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
