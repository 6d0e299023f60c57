"""The budget search beyond NNCF: the whole front of cost against predicted loss, and its setups.

Given candidate bit widths, a loss table (HAWQ perturbations, or measured metric
drops) and a cost (weight bytes, NNCF's bit complexity, or BOPs), the front
holds, for every budget at once, the assignment of least predicted loss.  A
point becomes a :class:`QuantizerSetup` with :meth:`MixedPrecisionFront.setup`,
and so an ordinary config with ``bitwidth_per_scope`` entries
(:func:`~nncf_explore.compression.quantization.config_gen.config_from_setup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from nncf_explore.compression.precision.budget import ParetoPoint, best_under_budget, pareto_front
from nncf_explore.compression.precision.groups import CostKind, GroupSearch
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph


def setup_with_bits(setup: QuantizerSetup, bits: Mapping[str, int]) -> QuantizerSetup:
    """``setup`` with the given quantizers at the given bit widths (NNCF's respec rules).

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> point = QuantizationPoint("weight", "N/linear_0", 1, QuantizerSpec(), weight_param="w")
        >>> s = QuantizerSetup((point,))
        >>> setup_with_bits(s, {"N/linear_0|WEIGHT": 4}).get("N/linear_0|WEIGHT").spec.bits
        4
    """
    for qid, b in bits.items():
        if setup.get(qid).spec.bits != b:
            setup = setup.replace_point(qid, spec={"bits": b})
    return setup


@dataclass(frozen=True)
class Mark:
    """A reference assignment beside the front (uniform INT8, uniform INT4, the current setup)."""

    label: str
    cost: float
    loss: float
    bits: Mapping[str, int]


@dataclass(frozen=True)
class MixedPrecisionFront:
    """The exact front and the reference marks, for one cost kind and loss table.

    Attributes:
        points: The front, cheapest first (each point's ``bits`` are per group; use :meth:`bits`).
        marks: Reference assignments by label (``"current"``, ``"uniform 8-bit"``, ...).
        cost: The cost kind.
    """

    points: tuple[ParetoPoint, ...]
    marks: Mapping[str, Mark]
    cost: CostKind
    search: GroupSearch

    def bits(self, point: ParetoPoint) -> dict[str, int]:
        """Quantizer id -> bit width of a front point."""
        return self.search.bits_of(point)

    def setup(self, point: ParetoPoint) -> QuantizerSetup:
        """The searched setup with a front point's bit widths applied."""
        return setup_with_bits(self.search.setup, self.bits(point))

    def best_under(self, budget: float) -> ParetoPoint:
        """The point of least predicted loss within ``budget`` (see :func:`best_under_budget`)."""
        return best_under_budget(self.points, budget)


def mixed_precision_front(
    graph: Graph,
    setup: QuantizerSetup,
    losses: Mapping[str, Mapping[int, float]],
    candidates: Sequence[int],
    *,
    cost: CostKind = "weight_bytes",
    strict: bool = False,
    allowed: Callable[[QuantizationPoint], Sequence[int]] | None = None,
) -> MixedPrecisionFront:
    """The front of ``cost`` against predicted loss over ``candidates``, with reference marks.

    Args:
        graph: The traced graph.
        setup: The setup to search (its activations that feed no weighted op keep their bits).
        losses: Quantizer id -> bits -> predicted loss; a missing entry counts 0.
        candidates: Bit widths to choose from.
        cost: ``weight_bytes``, ``bit_complexity`` or ``bops``.
        strict: Give every group one bit width (NNCF's ``strict``).
        allowed: Narrows ``candidates`` per quantizer (the hardware's bits); default: all.

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> from nncf_explore.compression.quantization.build import build_quantizer_setup
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> g = trace_model(net, {"sample_size": [1, 8]})
        >>> cfg = {"target_device": "TRIAL", "compression": {"algorithm": "quantization"}}
        >>> s = build_quantizer_setup(g, cfg)
        >>> loss = {"Sequential/Linear[0]/linear_0|WEIGHT": {4: 5.0, 8: 0.0},
        ...         "Sequential/Linear[2]/linear_0|WEIGHT": {4: 1.0, 8: 0.0}}
        >>> front = mixed_precision_front(g, s, loss, [4, 8])
        >>> [(p.cost, p.loss) for p in front.points]
        [(40.0, 6.0), (48.0, 5.0), (72.0, 1.0), (80.0, 0.0)]
        >>> front.marks["uniform 8-bit"].cost, front.marks["current"].loss
        (80.0, 0.0)
    """
    wanted = sorted(set(candidates))

    def narrowed(point: QuantizationPoint) -> tuple[int, ...]:
        offered = set(wanted if allowed is None else allowed(point))
        return tuple(b for b in wanted if b in offered)

    search = GroupSearch(graph, setup, losses, narrowed, cost=cost, strict=strict)
    points = tuple(pareto_front(search.options()))
    marks = {"current": _mark("current", search, {p.id: p.spec.bits for p in setup})}
    for b in (8, 4):
        if b in wanted:
            marks[f"uniform {b}-bit"] = _mark(f"uniform {b}-bit", search, {p.id: b for p in setup})
    return MixedPrecisionFront(points, marks, cost, search)


def _mark(label: str, search: GroupSearch, bits: Mapping[str, int]) -> Mark:
    grouped = {q for g in search.groups for q in (*g.weights, *g.activations)}
    chosen = {q: b for q, b in bits.items() if q in grouped}
    loss = sum(search.losses.get(q, {}).get(b, 0.0) for q, b in chosen.items())
    return Mark(label, search.cost_of(chosen), loss, chosen)
