"""Range initialisation over a data loader: collect statistics without quantizers, then set ranges.

NNCF semantics (reference doc §2.4, §4.1 step 8, §8 item 6): statistics come
from the model *without* quantizers, in eval mode under ``torch.no_grad()``, for
``ceil(num_init_samples / batch_size)`` batches; weights are measured directly.
Each quantizer's ``apply_minmax_init(min, max)`` then sets its range.  Under
``torch.distributed`` the collectors are reduced across ranks, so every rank
gets the same ranges.

Collection also records, at little cost, the statistics that the other mode
and the other granularity of each activation quantizer would need
(``alternatives=True``), so that :func:`~nncf_explore.compression.model.apply_setup`
can re-derive ranges after an edit without running data again.  The
value-storing ``threesigma`` and ``percentile`` statistics are the exception:
their memory would double.  The collectors themselves live in :mod:`.range_init`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.init_data import model_device, run_init_batches
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.quantization.range_init import StatisticCollector, make_collector
from nncf_explore.compression.quantization.range_settings import (
    RangeConfig,
    RangeInitSettings,
    RangeStatistics,
    StatKey,
    point_groups,
    resolve_range_settings,
)
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.quantization.spec import MAX_BITS
from nncf_explore.compression.runtime import ModelTracker, original_forward, run_root
from nncf_explore.errors import RangeInitError
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs, flatten_leaves, tensor_leaves
from nncf_explore.graph.trace import eval_no_grad, is_recorded_call
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper

SAFE_RANGE_LIMIT = float(torch.finfo(torch.float32).max) / 2 ** (MAX_BITS + 2)
"""Largest range end a quantizer gets: its float32 math multiplies range ends by up to ``2**MAX_BITS``."""


@dataclass
class _Sink:
    collector: StatisticCollector
    budget: int
    qids: tuple[str, ...]
    # Statistics of other granularities are collected for later edits; where a tensor has no
    # channel axis to speak of (attention internals are sequence-first), they are dropped.
    optional: bool = False
    failed: bool = False


class _StatisticsTracker(ModelTracker):
    """Feeds the tensors at quantizer positions into collectors while the FP32 model runs."""

    def __init__(
        self,
        model: nn.Module,
        sinks: Mapping[tuple[str, int | None], list[_Sink]],
        wrap_inputs_fn: InputsWrapper | None,
        wrap_outputs_fn: OutputsWrapper | None,
    ) -> None:
        super().__init__(model, wrap_inputs_fn, wrap_outputs_fn)
        self._constants = self._constant_ids()
        self.pre: dict[str, list[tuple[int, list[_Sink]]]] = {}
        self.post: dict[str, list[_Sink]] = {}
        for (node, port), node_sinks in sinks.items():
            if port is None:
                self.post[node] = node_sinks
            else:
                self.pre.setdefault(node, []).append((port, node_sinks))
        self.samples_before = 0
        self.batch_index = 0

    def _feed(self, sinks: list[_Sink], value: Any) -> None:
        tensor = next(tensor_leaves(value), None)
        if tensor is None or not any(self.samples_before < sink.budget for sink in sinks):
            return
        self._check_finite(sinks[0].qids, tensor)
        for sink in sinks:
            if self.samples_before < sink.budget:
                try:
                    sink.collector.register(tensor)
                except ValueError:
                    if not sink.optional:
                        raise
                    sink.failed, sink.budget = True, 0

    def _check_finite(self, qids: tuple[str, ...], tensor: Tensor) -> None:
        # Refused rather than skipped: one NaN in the data spreads to every later layer, so any
        # range measured past it would be meaningless, and skipping would hide the bad batch.
        if not tensor.is_floating_point():
            return
        bad = int((~torch.isfinite(tensor.detach())).sum())
        if bad:
            raise RangeInitError(
                f"range init: batch {self.batch_index} of the init data loader (counting from 0) gives "
                f"{bad} non-finite value(s) (NaN or inf) of {tensor.numel()} at the input of quantizer "
                f"{qids[0]!r}, the first quantizer to see them. If it quantizes a model input, the "
                "data holds NaN/inf: clean or filter the dataset (e.g. torch.nan_to_num, or drop "
                "such samples); otherwise the model produces them from this batch: check the input "
                "normalisation, or exclude that layer with ignored_scopes"
            )

    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        leaves = flatten_leaves(args, kwargs)
        if not is_recorded_call(leaves, self._constants):
            return func(*args, **kwargs)
        name = self.next_name(op)
        for port, sinks in self.pre.get(name, ()):
            self._feed(sinks, leaves[port])  # before the call: in-place ops overwrite their input
        output = func(*args, **kwargs)
        post = self.post.get(name)
        if post:
            self._feed(post, output)
        return output

    def mark_io(self, op: str, tensor: Tensor) -> Tensor:
        if not isinstance(tensor, Tensor) or (op == "nncf_model_output" and id(tensor) in self._constants):
            return tensor
        sinks = self.post.get(self.next_io_name(op))
        if sinks:
            with self.paused():
                self._feed(sinks, tensor)
        return tensor


def collect_range_statistics(
    model: nn.Module,
    graph: Graph,
    points: Iterable[QuantizationPoint],
    loader: Iterable[Any],
    range_config: RangeConfig | None = None,
    *,
    num_init_samples: int | None = None,
    wrap_inputs_fn: InputsWrapper | None = None,
    wrap_outputs_fn: OutputsWrapper | None = None,
    alternatives: bool = True,
    progress: bool = True,
) -> RangeStatistics:
    """Run ``model`` without quantizers over ``loader`` and collect activation range statistics.

    Args:
        model: The FP32 model, or a compressed model (its original forward runs,
            so no quantizer fires); eval mode and ``no_grad`` are applied and undone.
        graph: The graph the points refer to (node names must match the run).
        points: Quantization points (a :class:`QuantizerSetup` works); weights are skipped.
        loader: Items ``(inputs, target)``, or a loader with ``get_inputs(batch)``.
        range_config: ``initializer.range`` (object or per-layer list); None: defaults.
        num_init_samples: Overrides every entry's sample count.
        wrap_inputs_fn: As given to the tracer.
        wrap_outputs_fn: As given to the tracer.
        alternatives: Also collect other-mode / other-granularity statistics for later edits.
        progress: Show a progress bar.

    Returns:
        Statistics for every activation quantizer whose position the data reached.
    """
    points = list(points)
    settings = _settings(points, range_config, graph, num_init_samples)
    collectors: dict[StatKey, StatisticCollector] = {}
    sinks: dict[tuple[str, int | None], list[_Sink]] = {}
    for group in point_groups(p for p in points if p.kind == "activation"):
        group_settings = settings[group[0].id]
        if group_settings.num_init_samples <= 0:
            continue
        key = StatKey.for_points(_canonical(graph, group), group_settings)
        keys = key.alternatives(group[0].channel_shape) if alternatives else {key}
        for k in keys - collectors.keys():
            collectors[k] = k.collector()
            for position in k.positions:
                qids = tuple(p.id for p in group)
                sink = _Sink(collectors[k], group_settings.num_init_samples, qids, optional=k != key)
                sinks.setdefault(position, []).append(sink)
    budget = max((s.budget for node_sinks in sinks.values() for s in node_sinks), default=0)
    if budget > 0:
        tracker = _StatisticsTracker(model, sinks, wrap_inputs_fn, wrap_outputs_fn)
        _run_loader(model, graph, loader, tracker, budget, progress)
    failed = {id(s.collector) for node_sinks in sinks.values() for s in node_sinks if s.failed}
    return _results({k: c for k, c in collectors.items() if id(c) not in failed})


def _settings(
    points: list[QuantizationPoint],
    range_config: RangeConfig | None,
    graph: Graph,
    num_init_samples: int | None,
) -> dict[str, RangeInitSettings]:
    settings = resolve_range_settings(points, range_config, graph)
    if num_init_samples is None:
        return settings
    return {k: replace(s, num_init_samples=num_init_samples) for k, s in settings.items()}


def _canonical(graph: Graph, points: list[QuantizationPoint]) -> list[QuantizationPoint]:
    return [p.replace(target_node=graph.node(p.target_node).name) for p in points]


def traced_input_shapes(graph: Graph) -> str:
    """The shapes of the model inputs ``graph`` was traced with, for error messages.

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> traced_input_shapes(trace_model(torch.nn.Linear(4, 2), {"sample_size": [1, 4]}))
        'traced with [1, 4]'
    """
    shapes = [str(list(edges[0].shape)) for node in graph.input_nodes if (edges := graph.out_edges(node.id))]
    return "traced with " + ", ".join(shapes) if shapes else ""


def _run_loader(
    model: nn.Module,
    graph: Graph,
    loader: Iterable[Any],
    tracker: _StatisticsTracker,
    budget: int,
    progress: bool,
) -> None:
    forward = original_forward(model)

    def step(args: Args, kwargs: Kwargs, size: int) -> None:
        with tracker:
            run_root(tracker, model, forward, args, kwargs)
        tracker.samples_before += size
        tracker.batch_index += 1

    with eval_no_grad(model):
        run_init_batches(
            loader,
            budget,
            model_device(model),
            step,
            desc="range init",
            expected=traced_input_shapes(graph),
            error=RangeInitError,
            progress=progress,
        )


def _results(collectors: Mapping[StatKey, StatisticCollector]) -> RangeStatistics:
    stats = RangeStatistics()
    # Collective calls must happen in the same order on every rank.
    for key, collector in sorted(collectors.items(), key=lambda kv: repr(kv[0])):
        collector.reduce_across_ranks()
        if collector.num_samples_seen:
            low, high = collector.min_max()
            stats.values[key] = (low.detach().cpu(), high.detach().cpu())
    return stats


# -- initialisation ------------------------------------------------------------------------------


def weight_range(
    param: Tensor, point: QuantizationPoint, settings: RangeInitSettings
) -> tuple[Tensor, Tensor]:
    """``(min, max)`` of a weight, measured directly with the point's statistic."""
    collector = make_collector(
        settings.init_type,
        dict(settings.params),
        scale_shape=point.scale_shape,
        channel_axis=point.channel_axis if point.spec.per_channel else None,
        symmetric=point.spec.mode == "symmetric",
        is_weights=True,
    )
    collector.register(param.detach())
    return collector.min_max()


def _checked_weight(model: nn.Module, point: QuantizationPoint) -> Tensor:
    assert point.weight_param is not None
    param = model.get_parameter(point.weight_param)
    bad = int((~torch.isfinite(param.detach())).sum())
    if bad:
        raise RangeInitError(
            f"range init: weight {point.weight_param!r} of quantizer {point.id!r} holds {bad} non-finite "
            "value(s) (NaN or inf); load finite weights (a diverged checkpoint?) before compressing"
        )
    return param


def safe_range(low: Tensor, high: Tensor) -> tuple[Tensor, Tensor, bool]:
    """``(low, high)`` clamped to ``±SAFE_RANGE_LIMIT``, and whether anything was clamped.

    Examples:
        >>> safe_range(torch.tensor([-1.0]), torch.tensor([3e38]))[1:]
        (tensor([1.2981e+33]), True)
    """
    clamped = bool((low.abs() > SAFE_RANGE_LIMIT).any() or (high.abs() > SAFE_RANGE_LIMIT).any())
    if not clamped:
        return low, high, False
    return (
        low.clamp(-SAFE_RANGE_LIMIT, SAFE_RANGE_LIMIT),
        high.clamp(-SAFE_RANGE_LIMIT, SAFE_RANGE_LIMIT),
        True,
    )


def _apply(quantizer: BaseQuantizer, qid: str, low: Tensor, high: Tensor, clamped: list[str] | None) -> None:
    low, high, was_clamped = safe_range(low, high)
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise RangeInitError(
            f"range init: the statistics of quantizer {qid!r} are not finite (min={low.tolist()}, "
            f"max={high.tolist()}); check the init data for NaN/inf"
        )
    if was_clamped:
        if clamped is None:
            warn_clamped([qid])
        else:
            clamped.append(qid)
    quantizer.apply_minmax_init(low, high)
    if not all(torch.isfinite(t).all() for t in quantizer.quantization_range()):
        raise RangeInitError(
            f"range init: quantizer {qid!r} got a non-finite range from min={low.tolist()}, "
            f"max={high.tolist()}; check the init data for extreme values"
        )


def init_from_statistics(
    model: nn.Module,
    graph: Graph,
    points: Sequence[QuantizationPoint],
    quantizer: BaseQuantizer,
    stats: RangeStatistics,
    settings: RangeInitSettings,
    clamped: list[str] | None = None,
) -> bool:
    """Set ``quantizer``'s range (it serves ``points``) from ``stats`` or, for weights, the weight.

    Range ends beyond :data:`SAFE_RANGE_LIMIT` are clamped to it, so the quantizer stays finite:
    their ids go to ``clamped`` (the caller warns once), or without a list a warning says so.

    Returns:
        Whether a statistic was available and applied.

    Raises:
        RangeInitError: The weight or the statistic is not finite.
    """
    if settings.num_init_samples <= 0:
        return False
    first = points[0]
    if first.kind == "weight":
        low, high = weight_range(_checked_weight(model, first), first, settings)
        _apply(quantizer, first.id, low, high, clamped)
        return True
    found = stats.get(StatKey.for_points(_canonical(graph, list(points)), settings))
    if found is None:
        return False
    _apply(quantizer, first.id, *found, clamped)
    return True


def initialize_ranges(
    model: nn.Module,
    graph: Graph,
    quantizers: Sequence[tuple[Sequence[QuantizationPoint], BaseQuantizer]],
    loader: Iterable[Any] | None,
    range_config: RangeConfig | None = None,
    *,
    stats: RangeStatistics | None = None,
    num_init_samples: int | None = None,
    **collect_kwargs: Any,
) -> RangeStatistics:
    """Range-initialise quantizers: collect statistics over ``loader``, then ``apply_minmax_init``.

    Args:
        model: FP32 or compressed model; see :func:`collect_range_statistics`.
        graph: The traced graph.
        quantizers: ``(points served, quantizer module)`` pairs.
        loader: Init data; None warns which quantizers keep their initial ranges (NNCF: scale 1,
            unsigned activations).
        range_config: ``initializer.range``.
        stats: A cache to add the new statistics to (returned); a new one if None.
        num_init_samples: Overrides every entry's sample count.
        **collect_kwargs: Passed on to :func:`collect_range_statistics`.

    Returns:
        The statistics cache.
    """
    stats = stats if stats is not None else RangeStatistics()
    all_points = [p for points, _ in quantizers for p in points]
    if loader is None:
        warn_uninitialized([points[0].id for points, _ in quantizers], "no init data loader was given")
        return stats
    stats.update(
        collect_range_statistics(
            model,
            graph,
            all_points,
            loader,
            range_config,
            num_init_samples=num_init_samples,
            **collect_kwargs,
        )
    )
    settings = _settings(all_points, range_config, graph, num_init_samples)
    clamped: list[str] = []
    missed = [
        points[0].id
        for points, quantizer in quantizers
        if settings[points[0].id].num_init_samples > 0
        and not init_from_statistics(model, graph, points, quantizer, stats, settings[points[0].id], clamped)
    ]
    warn_clamped(clamped)
    if missed:
        warn_uninitialized(missed, "the init data never reached them (data-dependent control flow?)")
    return stats


class RangeInitWarning(UserWarning):
    """Some quantizers keep their initial ranges."""


def _shown(qids: Sequence[str]) -> str:
    return ", ".join(repr(q) for q in qids[:5]) + (f" and {len(qids) - 5} more" if len(qids) > 5 else "")


def warn_clamped(qids: Sequence[str]) -> None:
    """Warn once that ``qids`` got ranges clamped to ``±SAFE_RANGE_LIMIT``."""
    if not qids:
        return
    warnings.warn(
        f"{len(qids)} quantizer(s) measured range ends beyond ±{SAFE_RANGE_LIMIT:.3g}, clamped there so "
        f"that quantization stays finite: {_shown(qids)}. Such a range rounds every ordinary value to "
        "zero: the init data (or the weights) hold extreme outliers; clean them, or exclude those "
        "layers with ignored_scopes",
        RangeInitWarning,
        stacklevel=3,
    )


def warn_uninitialized(qids: Sequence[str], reason: str) -> None:
    """Warn that ``qids`` keep NNCF's initial ranges (symmetric: scale 1, unsigned unless forced)."""
    if not qids:
        return
    warnings.warn(
        f"{len(qids)} quantizer(s) were not range-initialised because {reason}: {_shown(qids)}. They keep "
        "the initial range (symmetric: scale 1.0 and unsigned, i.e. [0, 1], unless signed is forced; "
        "asymmetric: [0, 1]), which clips most activations. Register a data loader "
        "(register_default_init_args) or pass one to range initialisation.",
        RangeInitWarning,
        stacklevel=3,
    )


def nominal_range(quantizer: BaseQuantizer) -> tuple[Tensor, Tensor]:
    """The ``(min, max)`` a quantizer's parameters stand for (what ``apply_minmax_init`` would take back).

    Examples:
        >>> from nncf_explore.compression.quantization.quantizers import make_quantizer
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> q = make_quantizer(QuantizerSpec(signed=True), (1,), None)
        >>> nominal_range(q)
        (tensor([-1.]), tensor([1.]))
    """
    state = quantizer.state_dict()
    if "scale" in state:
        scale = state["scale"].abs()
        return (-scale if quantizer.signed else torch.zeros_like(scale)), scale
    low = state["input_low"]
    return low, low + state["input_range"].abs()


def carry_over_range(old: BaseQuantizer, new: BaseQuantizer) -> bool:
    """Initialise ``new`` from ``old``'s current range, reduced or broadcast to ``new``'s granularity.

    Returns:
        False when the channel counts differ and neither side is per tensor.
    """
    low, high = (t.reshape(-1) for t in nominal_range(old))
    size = math.prod(new.scale_shape)
    if size == 1 and low.numel() > 1:
        low, high = low.min().reshape(1), high.max().reshape(1)
    elif low.numel() == 1 and size > 1:
        low, high = low.expand(size), high.expand(size)
    elif low.numel() != size:
        return False
    new.apply_minmax_init(low, high)
    return True
