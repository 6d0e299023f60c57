"""NNCF's HAWQ precision initializer: bit widths from Hessian traces under a bit-complexity budget.

The steps, with the choices made where NNCF's documented behaviour leaves room
(they are listed in the user guide's decisions table):

1. Hessian traces of the weights (:mod:`.hessian`), or traces loaded from
   ``traces_per_layer_path``.
2. For every weight quantizer and candidate bit width, HAWQ's perturbation
   ``tr(H)/n · ‖Q_b(W) − W‖²``.
3. Quantizers are grouped as :mod:`.groups` describes (``strict`` and
   ``liberal`` are NNCF's ``bitwidth_assignment_mode``).
4. The group options go to the exact search of :mod:`.budget` with cost =
   bit complexity (:mod:`.complexity`), and the assignment of least total
   perturbation whose ``INT8 complexity / complexity ≥ compression_ratio`` wins.
   NNCF searched only the assignments that keep bit widths ordered by trace;
   those are among the ones searched here, so the result is never worse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from nncf_explore.compression.precision.budget import ParetoPoint, best_under_budget, pareto_front
from nncf_explore.compression.precision.complexity import bit_complexity
from nncf_explore.compression.precision.groups import AllowedBits, GroupSearch
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.graph.ir import Graph


@dataclass(frozen=True)
class HawqResult:
    """What HAWQ chose, and the front it chose from.

    Attributes:
        bits: Quantizer id -> bit width (weights, and the activations of their groups).
        front: The whole front of bit complexity against predicted loss.
        chosen: The front's point that was applied.
        int8_complexity: The all-INT8 bit complexity.
    """

    bits: Mapping[str, int]
    front: tuple[ParetoPoint, ...]
    chosen: ParetoPoint
    int8_complexity: float

    @property
    def compression_ratio(self) -> float:
        """INT8 bit complexity over the chosen one (NNCF's ``compression_ratio``)."""
        return self.int8_complexity / self.chosen.cost if self.chosen.cost else math.inf


def hawq_assignment(
    graph: Graph,
    setup: QuantizerSetup,
    perturbations: Mapping[str, Mapping[int, float]],
    *,
    compression_ratio: float,
    strict: bool,
    allowed: AllowedBits,
) -> HawqResult:
    """Choose bit widths of least total perturbation with at least ``compression_ratio``.

    Args:
        graph: The traced graph (for FLOPs).
        setup: The base setup (every quantizer at its configured bits).
        perturbations: Weight quantizer id -> bits -> predicted loss.
        compression_ratio: Minimum INT8-over-mixed bit complexity.
        strict: ``bitwidth_assignment_mode == "strict"``.
        allowed: The bit widths a quantizer may take (config ``bits`` ∩ hardware).

    Raises:
        ValueError: No assignment reaches ``compression_ratio``; the message gives the highest one.
    """
    search = GroupSearch(graph, setup, perturbations, allowed, cost="bit_complexity", strict=strict)
    int8 = float(bit_complexity(graph, setup, dict.fromkeys((p.id for p in setup.weights), 8), input_bits=8))
    front = pareto_front(search.options())
    try:
        chosen = best_under_budget(front, int8 / compression_ratio)
    except ValueError:
        best = int8 / front[0].cost if front and front[0].cost else math.inf
        raise ValueError(
            f"initializer.precision.compression_ratio: no assignment of the candidate bit widths reaches "
            f"{compression_ratio:g}; the highest possible is {best:.3f}. Lower compression_ratio or add "
            "lower bit widths to initializer.precision.bits"
        ) from None
    return HawqResult(search.bits_of(chosen), tuple(front), chosen, int8)
