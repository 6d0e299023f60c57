"""Finding nodes by name and op, and the quantizers a bulk edit touches (pure).

A query matches a node when it is a case-insensitive substring of the node's
NNCF name or module FQN; ``re:<pattern>`` searches the name with a regular
expression instead (NNCF's ``{re}`` scopes use the same kind of pattern).
The op filter is ``category:<category>`` or ``op:<op>``.

Examples:
    >>> from nncf_explore.graph.ir import Graph, Node
    >>> from nncf_explore.graph.ops import OpCategory
    >>> g = Graph([Node(0, "Net/Conv2d[conv1]/conv2d_0", "conv2d", OpCategory.CONVOLUTION, "", "conv1", ""),
    ...            Node(1, "Net/ReLU[act]/relu_0", "relu", OpCategory.ACTIVATION, "", "act", "")], [])
    >>> match_nodes(g, "CONV", ""), match_nodes(g, "re:relu_\\\\d$", ""), match_nodes(g, "", "op:relu")
    ([0], [1], [1])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._points import PointIndex

Kind = Literal["weights", "activations", "all"]
ALL_OPS = ""


def op_filter_options(graph: Graph) -> list[tuple[str, str]]:
    """Dropdown ``(label, value)`` pairs: every category, then every op, of the graph."""
    categories = sorted({n.category.value for n in graph.nodes})
    ops = sorted({n.op for n in graph.nodes})
    return [
        ("all ops", ALL_OPS),
        *((f"[{c}]", f"category:{c}") for c in categories),
        *((op, f"op:{op}") for op in ops),
    ]


def match_nodes(graph: Graph, query: str, op_filter: str) -> list[int]:
    """Ids of nodes matching ``query`` and ``op_filter``; nothing when both are empty.

    Raises:
        ValueError: ``query`` is ``re:`` with an invalid pattern (the message says where).
    """
    query = query.strip()
    if not query and not op_filter:
        return []
    ids = [n.id for n in graph.nodes]
    if op_filter:
        field, _, value = op_filter.partition(":")
        if field == "category":
            ids = [i for i in ids if graph.nodes[i].category.value == value]
        else:
            ids = [i for i in ids if graph.nodes[i].op == value]
    if query.startswith("re:"):
        try:
            pattern = re.compile(query[3:])
        except re.error as exc:
            raise ValueError(f"invalid regular expression {query[3:]!r}: {exc}") from None
        return [i for i in ids if pattern.search(graph.nodes[i].name)]
    if query:
        folded = query.casefold()
        return [
            i
            for i in ids
            if folded in graph.nodes[i].name.casefold() or folded in graph.nodes[i].module.casefold()
        ]
    return ids


def quantizers_of(index: PointIndex, node_ids: Iterable[int], kind: Kind) -> list[str]:
    """Ids of the quantizers a bulk edit on ``node_ids`` touches.

    Weights are those attached to the nodes; activations are those attached to
    or directly feeding them, so "off on conv1" also removes conv1's input quantizer.
    """
    out: dict[str, None] = {}
    for i in node_ids:
        for qid in index.related.get(i, ()):
            is_weight = qid in index.weights
            if (kind == "all" or (kind == "weights") == is_weight) and (
                not is_weight or qid in index.attached[i]
            ):
                out[qid] = None
    return list(out)
