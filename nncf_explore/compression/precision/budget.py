"""Choosing bit widths under a budget, exactly: the Pareto front of a multiple-choice knapsack.

Each *group* (a quantizer, or the quantizers that must share a bit width: a
unified-scale group, or a weight tied to its activation by the hardware) takes
one of its candidate bit widths, and each choice has a cost (bytes, BOPs, ...)
and a predicted loss (HAWQ's perturbation, or a measured metric drop).  The
front is built group by group: every partial assignment is a ``(cost, loss)``
point, and a point that another beats on both (no more cost, no more loss) can
never be part of an optimum, so it is dropped.  What is left after the last
group is the exact front over every budget at once; the best assignment under
one budget is the cheapest-loss point that fits.  A greedy exchange heuristic
can miss such points; this cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_FRONT = 200_000
"""Front size at which the search stops with an error instead of exhausting memory."""


Label = int | tuple[int, ...]
"""What an option assigns: one bit width, or one per member of a group that is searched as a whole."""


@dataclass(frozen=True)
class Option:
    """One candidate of one group: what it assigns, its cost and its predicted loss."""

    bits: Label
    cost: float
    loss: float


@dataclass(frozen=True)
class ParetoPoint:
    """One assignment on the front.

    Attributes:
        cost: Total cost of the assignment.
        loss: Total predicted loss.
        bits: Group name -> the chosen option's label.
    """

    cost: float
    loss: float
    bits: Mapping[str, Label]


@dataclass(frozen=True)
class _Partial:
    cost: float
    loss: float
    parent: _Partial | None
    bits: Label


def _prune(points: list[_Partial]) -> list[_Partial]:
    """Keep the points no other point beats on both cost and loss (ties: the first)."""
    points.sort(key=lambda p: (p.cost, p.loss))
    kept: list[_Partial] = []
    for p in points:
        if not kept or p.loss < kept[-1].loss:
            kept.append(p)
    return kept


def pareto_front(groups: Mapping[str, Sequence[Option]]) -> list[ParetoPoint]:
    """Every assignment that no other beats on both cost and loss, cheapest first.

    Args:
        groups: Group name -> its candidate options (at least one each).

    Returns:
        The front: cost increases and loss strictly decreases along it.

    Raises:
        ValueError: A group has no option, or the front grew past :data:`MAX_FRONT`.

    Examples:
        >>> front = pareto_front({
        ...     "a": [Option(4, cost=4, loss=3.0), Option(8, cost=8, loss=0.0)],
        ...     "b": [Option(4, cost=4, loss=1.0), Option(8, cost=8, loss=0.0)],
        ... })
        >>> [(p.cost, p.loss, dict(p.bits)) for p in front]
        [(8.0, 4.0, {'a': 4, 'b': 4}), (12.0, 1.0, {'a': 8, 'b': 4}), (16.0, 0.0, {'a': 8, 'b': 8})]
    """
    names = list(groups)
    front = [_Partial(0.0, 0.0, None, 0)]
    for name in names:
        options = groups[name]
        if not options:
            raise ValueError(f"group {name!r} has no candidate bit width; give it at least one")
        front = _prune(
            [_Partial(p.cost + o.cost, p.loss + o.loss, p, o.bits) for p in front for o in options]
        )
        if len(front) > MAX_FRONT:
            raise ValueError(
                f"the Pareto front grew past {MAX_FRONT} points after group {name!r}; merge groups that "
                "must share a bit width, or round the costs (for example to kilobytes) so that more "
                "assignments tie"
            )
    return [_point(p, names) for p in front]


def _point(partial: _Partial, names: Sequence[str]) -> ParetoPoint:
    chosen: list[Label] = []
    node: _Partial | None = partial
    while node is not None and node.parent is not None:
        chosen.append(node.bits)
        node = node.parent
    return ParetoPoint(partial.cost, partial.loss, dict(zip(names, reversed(chosen), strict=True)))


def best_under_budget(front: Sequence[ParetoPoint], budget: float) -> ParetoPoint:
    """The assignment of least loss whose cost is within ``budget``.

    Raises:
        ValueError: Even the cheapest assignment costs more than ``budget``; the message gives that cost.

    Examples:
        >>> front = pareto_front({"a": [Option(4, 4, 1.0), Option(8, 8, 0.0)]})
        >>> best_under_budget(front, 7).bits
        {'a': 4}
    """
    fitting = [p for p in front if p.cost <= budget]
    if not fitting:
        cheapest = min((p.cost for p in front), default=float("nan"))
        raise ValueError(
            f"no bit-width assignment fits a budget of {budget:g}: the cheapest costs {cheapest:g}; "
            "raise the budget or add lower candidate bit widths"
        )
    return min(fitting, key=lambda p: p.loss)
