"""One analysis API: every measure of one compressed model on one data set, cached per setup and state.

:class:`Sensitivity` computes each measure on first use and keeps it while the
model's quantizer setup and tensors stay as they were (``Tensor._version``
counts every in-place change: an optimizer step, a range re-init).  An edit in
the Explorer changes the setup, so what depends on it is measured again; the
Hessian traces depend only on the weights and survive edits.

Examples:
    >>> import torch
    >>> from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 4]}, "target_device": "TRIAL",
    ...                             "compression": {"algorithm": "quantization"}})
    >>> data = [(torch.randn(16, 4), torch.randint(0, 3, (16,)))]
    >>> _, qnet = create_compressed_model(net, register_default_init_args(cfg, data), dump_graphs=False)
    >>> s = Sensitivity(qnet, data, criterion=torch.nn.CrossEntropyLoss(), progress=False)
    >>> s.errors() is s.errors()  # cached
    True
    >>> sorted(s.node_values("sqnr_db")) == sorted({p.target_node for p in qnet.nncf.quantizer_setup})
    True
    >>> front = s.front([4, 8], iter_number=20)
    >>> front.points[0].cost < front.points[-1].cost
    True
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from torch import Tensor, nn

from nncf_explore.analysis.ablation import AblationRun, EvalFn, Mode
from nncf_explore.analysis.quant_error import QuantizationErrorReport, measure_quantization_error
from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.model import apply_setup
from nncf_explore.compression.precision.groups import CostKind
from nncf_explore.compression.precision.hessian import (
    Criterion,
    CriterionFn,
    HessianTraces,
    hessian_traces,
    weight_perturbations,
)
from nncf_explore.compression.precision.mixed_precision import (
    MixedPrecisionFront,
    mixed_precision_front,
    setup_with_bits,
)
from nncf_explore.compression.quantization.point_constraints import point_bits
from nncf_explore.compression.quantization.settings import resolve_settings
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph

T = TypeVar("T")
Measure = Literal["bits", "sqnr_db", "output_sqnr_db", "hessian_trace", "metric_drop"]
MEASURES: tuple[Measure, ...] = ("bits", "sqnr_db", "output_sqnr_db", "hessian_trace", "metric_drop")
"""What the Explorer's overlay can colour nodes by."""
LossKind = Literal["hawq", "ablation"]


class Sensitivity:
    """Measures of a compressed model on one data set, cached per setup and tensor state.

    Args:
        model: A compressed model (from ``create_compressed_model``), after range init.
        loader: Items ``(inputs, target)`` or a loader with ``get_inputs``/``get_target``.
        criterion: The loss for HAWQ traces (``register_default_init_args(..., criterion=...)``).
        criterion_fn: ``criterion_fn(outputs, target, criterion)``; default ``criterion(outputs, target)``.
        eval_fn: ``eval_fn(model) -> float``, higher is better, for the metric ablation.
        num_samples: Samples for the quantization-error pass.
        progress: Show progress bars.
    """

    def __init__(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        criterion: Criterion | None = None,
        criterion_fn: CriterionFn | None = None,
        eval_fn: EvalFn | None = None,
        num_samples: int = 64,
        progress: bool = True,
    ) -> None:
        compression_interface(model)  # a clear error for an uncompressed model, now
        self.model, self.loader = model, loader
        self.criterion, self.criterion_fn, self.eval_fn = criterion, criterion_fn, eval_fn
        self.num_samples, self.progress = num_samples, progress
        self._cache: dict[Hashable, tuple[Hashable, Any]] = {}

    # -- cache keys --------------------------------------------------------------------------
    def _setup_key(self) -> str:
        return json.dumps(compression_interface(self.model).setup.to_dict(), sort_keys=True)

    def _tensor_key(self, *, weights_only: bool = False) -> tuple[int, ...]:
        tensors: list[Tensor] = [
            p for name, p in self.model.named_parameters() if not (weights_only and "_nncf" in name)
        ]
        if not weights_only:
            tensors += list(self.model.buffers())
        return tuple(t._version for t in tensors)

    def _cached(self, name: Hashable, key: Hashable, compute: Callable[[], T]) -> T:
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            value: T = hit[1]
            return value
        value = compute()
        self._cache[name] = (key, value)
        return value

    # -- measures ----------------------------------------------------------------------------
    def errors(self) -> QuantizationErrorReport:
        """Per-quantizer and per-node error against FP32 (see :mod:`.quant_error`)."""
        key = (self._setup_key(), self._tensor_key())
        return self._cached(
            "errors",
            key,
            lambda: measure_quantization_error(
                self.model, self.loader, num_samples=self.num_samples, progress=self.progress
            ),
        )

    def traces(
        self, *, num_data_points: int = 100, iter_number: int = 200, tolerance: float = 1e-4, seed: int = 0
    ) -> HessianTraces:
        """HAWQ's Hessian traces per weight quantizer; they depend only on the weights.

        Raises:
            ValueError: No ``criterion`` was given.
        """
        if self.criterion is None:
            raise ValueError(
                "Hessian traces need a loss: "
                "Sensitivity(model, loader, criterion=torch.nn.CrossEntropyLoss())"
            )
        criterion = self.criterion
        params = (num_data_points, iter_number, tolerance, seed)
        weights = [p.id for p in compression_interface(self.model).setup.weights]
        key = (tuple(weights), self._tensor_key(weights_only=True))
        return self._cached(
            ("traces", params),
            key,
            lambda: hessian_traces(
                self.model,
                self.loader,
                criterion,
                criterion_fn=self.criterion_fn,
                num_data_points=num_data_points,
                iter_number=iter_number,
                tolerance=tolerance,
                seed=seed,
                progress=self.progress,
            ),
        )

    def ablation(self, mode: Mode = "fp32", bits: int = 4) -> AblationRun:
        """The metric ablation run for ``mode`` (resumable: call ``.run()`` again to go on).

        Raises:
            ValueError: No ``eval_fn`` was given.
        """
        if self.eval_fn is None:
            raise ValueError(
                "the metric ablation needs eval_fn: Sensitivity(model, loader, eval_fn=my_accuracy)"
            )
        eval_fn = self.eval_fn
        key = (self._setup_key(), self._tensor_key())
        return self._cached(
            ("ablation", mode, bits), key, lambda: AblationRun(self.model, eval_fn, mode, bits)
        )

    def losses(
        self, candidates: Sequence[int], kind: LossKind = "hawq", **trace_args: Any
    ) -> dict[str, dict[int, float]]:
        """Quantizer id -> bits -> predicted loss: HAWQ perturbations, or measured metric drops.

        ``ablation`` runs (and caches) one ``bits`` ablation per candidate below 8 and
        counts a metric drop as loss (a rise counts 0).
        """
        if kind == "hawq":
            return weight_perturbations(self.model, self.traces(**trace_args), candidates)
        losses: dict[str, dict[int, float]] = {}
        for b in sorted(set(candidates)):
            run = self.ablation("bits", b)
            run.run(progress=self.progress)
            for qid, delta in run.deltas().items():
                losses.setdefault(qid, {})[b] = max(0.0, -delta)
        return losses

    def front(
        self,
        candidates: Sequence[int],
        *,
        cost: CostKind = "weight_bytes",
        loss: LossKind = "hawq",
        strict: bool = False,
        **trace_args: Any,
    ) -> MixedPrecisionFront:
        """The exact front of ``cost`` against predicted loss over ``candidates``."""
        interface = compression_interface(self.model)
        losses = self.losses(candidates, loss, **trace_args)
        return mixed_precision_front(
            interface.graph,
            interface.setup,
            losses,
            candidates,
            cost=cost,
            strict=strict,
            allowed=device_bits(interface.graph, interface.setup.target_device),
        )

    def choose(
        self, front: MixedPrecisionFront, budget: float, *, k: int = 5
    ) -> tuple[QuantizerSetup, float | None]:
        """The setup to apply within ``budget``: predicted by the front, confirmed by ``eval_fn``.

        Without ``eval_fn`` it is the front's point of least predicted loss.  With it, the
        ``k`` fitting front points of least predicted loss and every fitting reference mark
        (uniform INT8, INT4, the current setup) are evaluated on copies, and the best measured
        wins: a predicted loss is a model of the metric, and near a budget's edge the
        model's ranking can be wrong by a few points.

        Returns:
            ``(setup, metric)``; ``metric`` is None without ``eval_fn``.

        Raises:
            ValueError: Nothing fits ``budget`` (the message gives the cheapest cost).
        """
        best = front.best_under(budget)
        if self.eval_fn is None:
            return front.setup(best), None
        fitting = [p for p in front.points if p.cost <= budget][-k:]
        setups = [front.setup(p) for p in fitting]
        setups += [
            setup_with_bits(front.search.setup, dict(m.bits))
            for m in front.marks.values()
            if m.cost <= budget
        ]
        scored = []
        for setup in setups:
            variant = copy.deepcopy(self.model)
            apply_setup(variant, setup)
            scored.append((float(self.eval_fn(variant)), setup))
        metric, setup = max(scored, key=lambda item: item[0])
        return setup, metric

    # -- by node, for the overlay ------------------------------------------------------------
    def node_values(self, measure: Measure, **trace_args: Any) -> dict[str, float]:
        """Node name -> one number per node for ``measure`` (the worst of the node's quantizers).

        ``bits``: the narrowest bit width at the node; ``sqnr_db``: the lowest SQNR of its
        quantizers; ``output_sqnr_db``: its output against FP32; ``hessian_trace``: its
        weight's trace; ``metric_drop``: how much quantizing its quantizers costs the metric
        (the ``fp32`` ablation, run on first use).
        """
        setup = compression_interface(self.model).setup
        by_id: Mapping[str, float]
        if measure == "bits":
            by_id = {p.id: float(p.spec.bits) for p in setup}
            return _by_node(setup, by_id, min)
        if measure == "sqnr_db":
            return _by_node(setup, {q: e.sqnr_db for q, e in self.errors().tensors.items()}, min)
        if measure == "output_sqnr_db":
            return {n: e.sqnr_db for n, e in self.errors().nodes.items()}
        if measure == "hessian_trace":
            return _by_node(setup, dict(self.traces(**trace_args).traces), max)
        if measure == "metric_drop":
            run = self.ablation("fp32")
            run.run(progress=self.progress)
            return _by_node(setup, dict(run.deltas()), max)
        raise ValueError(f"measure {measure!r} is unknown; use one of {list(MEASURES)}")


def device_bits(graph: Graph, target_device: str) -> Callable[[QuantizationPoint], tuple[int, ...]]:
    """The bit widths each point may take on ``target_device`` (NNCF's hardware config at that point)."""
    section = {"algorithm": "quantization"}
    settings = resolve_settings({"target_device": target_device, "compression": section}, section)
    return lambda point: point_bits(point, graph, settings)


def _by_node(
    setup: Any, by_id: Mapping[str, float], pick: Callable[[list[float]], float]
) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for point in setup:
        if point.id in by_id:
            values.setdefault(point.target_node, []).append(by_id[point.id])
    return {node: pick(v) for node, v in values.items()}
