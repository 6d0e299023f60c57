"""Dot dumps in NNCF's dialect.

Node ids and labels are ``"{id} {name}"``; edge labels are
``"{shape} \\n{out_port} -> {in_port}"``; integer-dtype edges are dashed.  ``:``
in names becomes ``^`` in ids (dot reads ``:`` as a port), the label keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pydot

from nncf_explore.files import write_text_atomic

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
    """Write ``graph`` as a dot file with :func:`nncf_explore.files.write_text_atomic`.

    A crash never leaves half a file, missing directories are created, and a new file gets
    ``0o666`` minus the umask.

    Raises:
        FileWriteError: The file cannot be written; the message names ``path`` and the fix.
    """
    write_text_atomic(path, to_pydot(graph, annotations).to_string())
