"""Search groups: quantizers whose bit widths are chosen together, and what each choice costs.

An activation quantizer ties the weights of the ops it feeds into one group:
the cost of an op (its bit complexity, its BOPs) depends on its weight's and
its input's bit widths together, so they cannot be chosen apart.  In a group

* ``strict`` (NNCF's ``bitwidth_assignment_mode``) gives every member one bit width;
* ``liberal`` lets each weight take its own, and each activation takes the
  narrowest width it allows that is at least the widest weight it feeds (an op
  then never computes below its weight's precision).

With the ``weight_bytes`` cost only weights are searched: activations cost no
storage, so every activation keeps its bits.  Activations that feed no weighted
op form no group and keep their bits under every cost.
Each group's options are all its assignments, with their cost and loss; the
exact search of :mod:`.budget` then picks one per group.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from nncf_explore.compression.precision.budget import Option, ParetoPoint
from nncf_explore.compression.precision.complexity import node_macs
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph

MAX_GROUP_ASSIGNMENTS = 4096
"""Assignments enumerated per liberal group; a larger group is searched as one width (strict)."""

FP_BITS = 32
"""Bits of an op input that no quantizer touches, for BOPs."""

CostKind = Literal["weight_bytes", "bit_complexity", "bops"]
COST_KINDS: tuple[CostKind, ...] = ("weight_bytes", "bit_complexity", "bops")
AllowedBits = Callable[[QuantizationPoint], Sequence[int]]


@dataclass(frozen=True)
class Group:
    """Quantizers whose bit widths are chosen together.

    Attributes:
        weights: Weight quantizer ids, in setup order.
        activations: Ids of the activation quantizers feeding their ops.
        tied: Whether every member takes one bit width.
    """

    weights: tuple[str, ...]
    activations: tuple[str, ...]
    tied: bool

    @property
    def name(self) -> str:
        """The group's name in the search: its first weight quantizer id."""
        return self.weights[0]


def quantizer_groups(setup: QuantizerSetup, *, strict: bool) -> list[Group]:
    """Groups of weight quantizers linked by activation quantizers that feed their ops.

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> w = [QuantizationPoint("weight", f"N/conv2d_{i}", 1, QuantizerSpec()) for i in range(3)]
        >>> a = QuantizationPoint("activation", "N/relu_0", None, QuantizerSpec(),
        ...                       directly_quantized_ops=("N/conv2d_1", "N/conv2d_2"))
        >>> [g.weights for g in quantizer_groups(QuantizerSetup((*w, a)), strict=True)]
        [('N/conv2d_0|WEIGHT',), ('N/conv2d_1|WEIGHT', 'N/conv2d_2|WEIGHT')]
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    weights_at: dict[str, list[str]] = {}
    for w in setup.weights:
        weights_at.setdefault(w.target_node, []).append(w.id)
        find(w.id)
    feeding: list[str] = []
    for a in setup.activations:
        fed = [wid for op in a.directly_quantized_ops for wid in weights_at.get(op, ())]
        if fed:
            feeding.append(a.id)
        for wid in fed:
            parent[find(a.id)] = find(wid)
    # Unified-scale members share one quantizer, so one bit width: a group takes them all.
    unified: dict[int, list[str]] = {}
    for a in setup.activations:
        if a.unified_group is not None:
            unified.setdefault(a.unified_group, []).append(a.id)
    for ids in unified.values():
        if any(i in feeding for i in ids):
            for i in ids:
                parent[find(i)] = find(ids[0])
                if i not in feeding:
                    feeding.append(i)
    members: dict[str, list[str]] = {}
    for qid in [w.id for w in setup.weights] + feeding:
        members.setdefault(find(qid), []).append(qid)
    weight_ids = {w.id for w in setup.weights}
    return [
        Group(tuple(m for m in g if m in weight_ids), tuple(m for m in g if m not in weight_ids), strict)
        for g in members.values()
    ]


def _unified_members(setup: QuantizerSetup, ids: Sequence[str]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for qid in ids:
        group = setup.get(qid).unified_group
        if group is not None:
            groups.setdefault(group, []).append(qid)
    return groups


@dataclass(frozen=True)
class _Op:
    weight: str
    macs: int
    numel: int
    inputs: tuple[str, ...]  # activation quantizers of the group feeding this op


class GroupSearch:
    """Options of every group of a setup, for one cost kind and one loss table.

    Args:
        graph: The traced graph (shapes for MACs and weight sizes).
        setup: The setup whose quantizers are searched.
        losses: Quantizer id -> bits -> predicted loss (missing: 0).
        allowed: The bit widths each quantizer may take.
        cost: ``weight_bytes``, ``bit_complexity`` (NNCF's FLOPs × bits) or ``bops`` (MACs × w × a).
        strict: NNCF's ``bitwidth_assignment_mode == "strict"``.
    """

    def __init__(
        self,
        graph: Graph,
        setup: QuantizerSetup,
        losses: Mapping[str, Mapping[int, float]],
        allowed: AllowedBits,
        *,
        cost: CostKind,
        strict: bool = False,
    ) -> None:
        if cost not in COST_KINDS:
            raise ValueError(f"cost {cost!r} is unknown; use one of {list(COST_KINDS)}")
        self.setup, self.losses, self.allowed, self.cost_kind = setup, losses, allowed, cost
        self.groups = [g for g in quantizer_groups(setup, strict=strict) if g.weights]
        self._ops: dict[str, list[_Op]] = {}
        for group in self.groups:
            feeds = {a: set(setup.get(a).directly_quantized_ops) for a in group.activations}
            ops = []
            for w in group.weights:
                node = graph.node(setup.get(w).target_node)
                shape = node.attrs.get("weight_shape") or ()
                inputs = tuple(a for a, names in feeds.items() if node.name in names)
                ops.append(_Op(w, node_macs(graph, node), math.prod(shape), inputs))
            self._ops[group.name] = ops

    @property
    def searches_activations(self) -> bool:
        """Whether activation bits are chosen (every cost but ``weight_bytes``)."""
        return self.cost_kind != "weight_bytes"

    def _activation_bits(self, group: Group, weights: Mapping[str, int]) -> dict[str, int]:
        bits: dict[str, int] = {}
        if not self.searches_activations:
            return bits
        for a in group.activations:
            fed = [weights[op.weight] for op in self._ops[group.name] if a in op.inputs]
            widest = max(fed, default=self.setup.get(a).spec.bits)
            offered = sorted(self.allowed(self.setup.get(a)))
            bits[a] = next((b for b in offered if b >= widest), offered[-1] if offered else widest)
        for ids in _unified_members(self.setup, group.activations).values():
            widest = max(bits[i] for i in ids)
            bits.update(dict.fromkeys(ids, widest))
        return bits

    def _cost(self, group: Group, bits: Mapping[str, int]) -> float:
        total = 0.0
        for op in self._ops[group.name]:
            w = bits[op.weight]
            a = max((bits.get(i, self.setup.get(i).spec.bits) for i in op.inputs), default=0)
            if self.cost_kind == "weight_bytes":
                total += (op.numel * w + 7) // 8
            elif self.cost_kind == "bit_complexity":
                total += op.macs * max(w, a)
            else:
                total += op.macs * w * (a or FP_BITS)
        return total

    def assignments(self, group: Group) -> list[dict[str, int]]:
        """Every assignment of the group's members that the search may pick."""
        choices = [tuple(self.allowed(self.setup.get(w))) for w in group.weights]
        if group.tied or math.prod(len(c) for c in choices) > MAX_GROUP_ASSIGNMENTS:
            common = set(choices[0]).intersection(*choices[1:])
            members = group.weights
            if self.searches_activations:
                members += group.activations
                for a in group.activations:
                    common &= set(self.allowed(self.setup.get(a)))
            return [dict.fromkeys(members, b) for b in sorted(common)]
        result = []
        for combo in itertools.product(*choices):
            weights = dict(zip(group.weights, combo, strict=True))
            result.append({**weights, **self._activation_bits(group, weights)})
        return result

    def options(self) -> dict[str, list[Option]]:
        """Group name -> its options (label: the weights' bits in group order)."""
        table: dict[str, list[Option]] = {}
        for group in self.groups:
            opts = []
            for bits in self.assignments(group):
                loss = sum(self.losses.get(q, {}).get(b, 0.0) for q, b in bits.items())
                label = tuple(bits[w] for w in group.weights)
                opts.append(Option(label, self._cost(group, bits), loss))
            table[group.name] = opts
        return table

    def bits_of(self, point: ParetoPoint) -> dict[str, int]:
        """Quantizer id -> bit width of a front point (weights and their groups' activations)."""
        result: dict[str, int] = {}
        for group in self.groups:
            label = point.bits[group.name]
            weights = dict(zip(group.weights, label if isinstance(label, tuple) else (label,), strict=True))
            chosen = next(a for a in self.assignments(group) if all(a[w] == b for w, b in weights.items()))
            result.update(chosen)
        return result

    def cost_of(self, bits: Mapping[str, int]) -> float:
        """The total cost of an assignment (quantizers missing from ``bits`` keep the setup's)."""
        full = {p.id: bits.get(p.id, p.spec.bits) for p in self.setup}
        return sum(self._cost(g, full) for g in self.groups)
