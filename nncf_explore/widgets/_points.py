"""Where quantization points sit in the graph, and what state each node is in (pure).

:class:`PointIndex` is built once per default setup (it only moves when
``target_device`` changes); :class:`QuantState` pairs it with the current
setup and is cheap to rebuild after every edit.  A point is *on* when the
current setup holds it and *off* when only the default setup does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph

BIT_WIDTHS = (2, 3, 4, 5, 6, 7, 8)
"""Bit widths with a colour state of their own (every width NNCF's manual precision accepts)."""
STATES = ("no weights", "not quantized", *(f"{b}-bit" for b in BIT_WIDTHS), "other bits", "mixed")
"""Colour states of nodes and quantizer markers; a figure colours by position in this tuple."""
NO_WEIGHTS, OFF = 0, 1
BITS4, BITS8 = STATES.index("4-bit"), STATES.index("8-bit")
OTHER_BITS, MIXED = STATES.index("other bits"), STATES.index("mixed")


def bits_state(bits: Iterable[int]) -> int:
    """The state of a set of enabled bit widths: one width (2 to 8 each its own), other or mixed.

    Examples:
        >>> [STATES[bits_state(b)] for b in ([8], [4, 4], [6], [16], [4, 8], [])]
        ['8-bit', '4-bit', '6-bit', 'other bits', 'mixed', 'not quantized']
    """
    distinct = set(bits)
    if not distinct:
        return OFF
    if len(distinct) > 1:
        return MIXED
    only = distinct.pop()
    return STATES.index(f"{only}-bit") if only in BIT_WIDTHS else OTHER_BITS


class PointIndex:
    """The points of a default setup by node id.

    Attributes:
        default: The setup listing every placeable point.
        attached: Per node id, ids of points whose ``target_node`` is that node.
        related: Per node id, ids of points attached to it or feeding it directly.
        group_of: Per point id, the ids sharing its unified scale (itself included).
        weights: Ids of the weight points.
    """

    def __init__(self, graph: Graph, default: QuantizerSetup) -> None:
        self.default = default
        ids = {n.name: n.id for n in graph.nodes}
        self.attached: dict[int, list[str]] = {}
        self.related: dict[int, list[str]] = {}
        groups: dict[int, list[str]] = {}
        for p in default:
            target = ids.get(p.target_node)
            if target is not None:
                self.attached.setdefault(target, []).append(p.id)
                self.related.setdefault(target, []).append(p.id)
            for op in p.directly_quantized_ops:
                consumer = ids.get(op)
                if consumer is not None and consumer != target:
                    self.related.setdefault(consumer, []).append(p.id)
            if p.unified_group is not None:
                groups.setdefault(p.unified_group, []).append(p.id)
        self.weights = frozenset(p.id for p in default if p.kind == "weight")
        self.group_of: dict[str, tuple[str, ...]] = {
            qid: tuple(members) for members in groups.values() for qid in members
        }

    def with_group(self, qids: Iterable[str]) -> list[str]:
        """``qids`` plus every point sharing a unified scale with one of them, in first-seen order."""
        out: dict[str, None] = {}
        for qid in qids:
            out.update(dict.fromkeys(self.group_of.get(qid, (qid,))))
        return list(out)


@dataclass(frozen=True)
class QuantState:
    """A :class:`PointIndex` with the current setup: which points are on, with which spec."""

    index: PointIndex
    current: QuantizerSetup

    def is_on(self, qid: str) -> bool:
        """Whether the current setup holds this point."""
        return qid in self.current

    def point(self, qid: str) -> QuantizationPoint:
        """The current point when on, else the default one."""
        return self.current.get(qid) if qid in self.current else self.index.default.get(qid)

    def points(self, qids: Iterable[str]) -> list[QuantizationPoint]:
        """:meth:`point` of each id."""
        return [self.point(q) for q in qids]

    def node_state(self, node_ids: Sequence[int]) -> int:
        """The colour state of nodes (one node, or a group's members) by their weight quantizers."""
        weights = [q for i in node_ids for q in self.index.attached.get(i, ()) if q in self.index.weights]
        if not weights:
            return NO_WEIGHTS
        return bits_state(self.current.get(q).spec.bits for q in weights if q in self.current)

    def point_state(self, qid: str) -> int:
        """The colour state of one quantizer."""
        return bits_state([self.current.get(qid).spec.bits] if qid in self.current else [])

    def summary(self, node_ids: Sequence[int]) -> str:
        """Aggregate state of nodes, e.g. ``"12/14 quantized, W4×3 W8×9 A8×5"``."""
        qids = [q for i in node_ids for q in self.index.attached.get(i, ())]
        if not qids:
            return "nothing to quantize"
        on = [self.current.get(q) for q in qids if q in self.current]
        counts = Counter(("W" if p.kind == "weight" else "A", p.spec.bits) for p in on)
        parts = " ".join(f"{kind}{bits}×{n}" for (kind, bits), n in sorted(counts.items(), key=_bits_order))
        return f"{len(on)}/{len(qids)} quantized" + (f", {parts}" if parts else "")


def _bits_order(item: tuple[tuple[str, int], int]) -> tuple[int, int]:
    (kind, bits), _ = item
    return (0 if kind == "W" else 1, bits)
