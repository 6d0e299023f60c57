"""Fused patterns: op chains that run as one kernel, so no quantizer goes between them.

NNCF's hardware patterns, as a small grammar: a chain starts at a linear op
(conv, linear, matmul), an arithmetic op, a batch norm, an activation or a group
norm, and takes followers while each link is the only consumer of the previous
op: linear → [BN] → [activation], linear → activation → BN, linear → arithmetic,
arithmetic → [BN] → [activation], arithmetic → activation → BN, BN → activation,
activation → BN, group norm → ReLU.
"""

from __future__ import annotations

from collections.abc import Mapping

from nncf_explore.compression.quantization.hardware import (
    ARITHMETIC,
    BATCH_NORM,
    FUSABLE_ACTIVATIONS,
    LINEAR_OPS,
)
from nncf_explore.graph.ir import Graph, Node


def _kind(node: Node) -> str:
    if node.op in LINEAR_OPS:
        return "linear"
    if node.op in ARITHMETIC:
        return "arith"
    if node.op in BATCH_NORM:
        return "bn"
    if node.op in FUSABLE_ACTIVATIONS:
        return "relu" if node.op.startswith("relu") else "act"
    if node.op == "group_norm":
        return "gn"
    return ""


# (kind sequence so far) -> kinds that may follow
_FOLLOWERS: Mapping[tuple[str, ...], frozenset[str]] = {
    ("linear",): frozenset({"bn", "act", "relu", "arith"}),
    ("linear", "bn"): frozenset({"act", "relu"}),
    ("linear", "act"): frozenset({"bn"}),
    ("arith",): frozenset({"bn", "act", "relu"}),
    ("arith", "bn"): frozenset({"act", "relu"}),
    ("arith", "act"): frozenset({"bn"}),
    ("bn",): frozenset({"act", "relu"}),
    ("act",): frozenset({"bn"}),
    ("gn",): frozenset({"relu"}),
}


def _normalized(kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("act" if k == "relu" else k for k in kinds)


def _next_in_chain(graph: Graph, node: Node) -> Node | None:
    consumers = graph.successors(node.id)
    edges = graph.out_edges(node.id)
    if len(consumers) != 1 or len(edges) != 1:
        return None
    return consumers[0]


def fused_groups(graph: Graph) -> dict[int, tuple[int, ...]]:
    """Map each node id to its fused group's member ids (the leader first).

    Nodes outside any pattern form a group of one.
    """
    groups: dict[int, tuple[int, ...]] = {}
    for node in graph.nodes:
        if node.id in groups:
            continue
        members = [node.id]
        kinds: tuple[str, ...] = (_kind(node),)
        current = node
        while True:
            allowed = _FOLLOWERS.get(_normalized(kinds), frozenset())
            nxt = _next_in_chain(graph, current) if allowed else None
            if nxt is None or nxt.id in groups or _kind(nxt) not in allowed:
                break
            members.append(nxt.id)
            kinds = (*kinds, _kind(nxt))
            current = nxt
        group = tuple(members)
        for member in group:
            groups[member] = group
    return groups
