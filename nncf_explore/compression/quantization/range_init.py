"""Range-initialisation statistics: min/max estimates that `apply_minmax_init` turns into ranges.

Each registered tensor is split into *units* (the whole tensor, or each sample when
``per_sample``) and reduced over every dimension except the channel axis. Then
(reference doc §2.4): ``min_max`` takes global extremes; ``mean_min_max`` the mean of
unit extremes; ``mixed_min_max`` (per-tensor activations, per sample) min-of-mins
(symmetric) or mean-of-mins (asymmetric) and mean-of-maxes, else plain min/max;
``threesigma`` median ± 3·MAD of all values; ``percentile`` percentiles of all values;
``mean_percentile`` the mean of unit percentiles. Symmetric min/max types use abs-max.

Memory: min/max and mean collectors keep O(channels) state. ``threesigma`` and
``percentile`` keep a uniform random sample of at most ``max_stored_values`` values
(bottom-k of random keys; exact below the cap), plus keys for one registered tensor.

Examples:
    >>> c = make_collector("mean_min_max")
    >>> c.register(torch.tensor([[-1.0, 2.0]]))
    >>> c.register(torch.tensor([[-3.0, 0.0]]))
    >>> c.min_max()
    (tensor([-2.]), tensor([2.5000]))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from nncf_explore.config.fields import default_of
from nncf_explore.errors import did_you_mean

RangeInitType = Literal[
    "min_max", "mixed_min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile"
]
RANGE_INIT_TYPES: tuple[str, ...] = get_args(RangeInitType)
FLOAT32_MAX = float(torch.finfo(torch.float32).max)
DEFAULT_MAX_STORED_VALUES = 2**18
"""Per collector: 1 MiB of float32 values plus 1 MiB of sampling keys."""


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def quantile(values: Tensor, fractions: Sequence[float], dim: int) -> Tensor:
    """Linear-interpolation quantiles (numpy's default) in float64, stacked on a new dim 0.

    Uses ``kthvalue`` rather than `torch.quantile`, which refuses inputs above 16M values.

    Examples:
        >>> quantile(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), [0.5, 0.9], dim=1)
        tensor([[2.5000],
                [3.7000]], dtype=torch.float64)
    """
    n = values.shape[dim]
    out = []
    for fraction in fractions:
        position = fraction * (n - 1)
        below = math.floor(position)
        low = values.kthvalue(below + 1, dim).values.double()
        high = values.kthvalue(min(below + 2, n), dim).values.double()
        out.append(low + (high - low) * (position - below))
    return torch.stack(out)


def _all_gather_columns(t: Tensor) -> Tensor:
    """Concatenate every rank's ``[C, m_rank]`` tensor along dim 1, in rank order."""
    size = torch.tensor([t.shape[1]], device=t.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    padded = F.pad(t, (0, max(lengths) - t.shape[1]))
    parts = [torch.empty_like(padded) for _ in lengths]
    dist.all_gather(parts, padded)
    return torch.cat([p[:, :length] for p, length in zip(parts, lengths, strict=True)], dim=1)


class StatisticCollector(ABC):
    """Collects per-channel statistics of a quantizer's input, batch by batch (see `make_collector`)."""

    def __init__(self, scale_shape: Sequence[int], channel_axis: int | None, per_sample: bool) -> None:
        if per_sample and channel_axis == 0:
            raise ValueError("per_sample needs dim 0 as the batch axis, but channel_axis is 0")
        self.scale_shape = tuple(scale_shape)
        self.channel_axis = channel_axis
        self.per_sample = per_sample
        self.num_samples_seen = 0
        """Sum of the dim-0 sizes of the registered tensors (the batch sizes for activations)."""
        self.channels = math.prod(self.scale_shape)
        self._device = torch.device("cpu")

    def register(self, x: Tensor) -> None:
        """Add one batch of activations (or one weight tensor)."""
        with torch.no_grad():
            if x.dtype == torch.float64:
                # Finite doubles beyond float32's range would become inf here.
                x = x.detach().clamp(-FLOAT32_MAX, FLOAT32_MAX)
            x = x.detach().float().reshape(x.shape or (1,))
            self.num_samples_seen += x.shape[0]
            self._device = x.device
            if x.numel():
                self._update(self._units(x))

    def _units(self, x: Tensor) -> Tensor:
        """``[units, values, channels]`` view of ``x``."""
        if self.channel_axis is not None:
            if x.shape[self.channel_axis] != self.channels:
                raise ValueError(
                    f"tensor of shape {tuple(x.shape)} has {x.shape[self.channel_axis]} channels on axis "
                    f"{self.channel_axis}, but scale_shape {self.scale_shape} has {self.channels}"
                )
            x = x.movedim(self.channel_axis, -1)
        return x.reshape(x.shape[0] if self.per_sample else 1, -1, self.channels)

    def min_max(self) -> tuple[Tensor, Tensor]:
        """The ``(min, max)`` estimates, float32 tensors of ``scale_shape``, finite for finite inputs.

        Statistics are computed in float64 and clamped into float32's range: ``median + 3·MAD`` or a
        mean of huge values may exceed it, and an inf range would make every later output NaN.
        """
        if not self.num_samples_seen:
            raise ValueError("no statistics collected: call register() with the quantizer's inputs first")
        low, high = (t.double().clamp(-FLOAT32_MAX, FLOAT32_MAX).float() for t in self._result())
        return low.reshape(self.scale_shape), high.reshape(self.scale_shape)

    def reduce_across_ranks(self) -> None:
        """Make every rank's `min_max` identical (collective; a no-op without torch.distributed)."""
        if not _distributed():
            return
        count = torch.tensor([self.num_samples_seen], dtype=torch.float64, device=self._device)
        dist.all_reduce(count)
        self.num_samples_seen = int(count.item())
        self._reduce()

    @abstractmethod
    def _update(self, units: Tensor) -> None: ...

    @abstractmethod
    def _result(self) -> tuple[Tensor, Tensor]: ...

    @abstractmethod
    def _reduce(self) -> None: ...


class MinMaxCollector(StatisticCollector):
    """Per-unit min and (abs-)max, aggregated as extremes or as means; O(channels) memory."""

    def __init__(
        self,
        scale_shape: Sequence[int],
        channel_axis: int | None,
        per_sample: bool,
        *,
        abs_max: bool,
        mean_of_mins: bool,
        mean_of_maxes: bool,
    ) -> None:
        super().__init__(scale_shape, channel_axis, per_sample)
        self.abs_max, self.mean_of_mins, self.mean_of_maxes = abs_max, mean_of_mins, mean_of_maxes
        self._min = torch.full((self.channels,), torch.inf, dtype=torch.float64)
        self._max = torch.full((self.channels,), -torch.inf, dtype=torch.float64)
        self._sums = torch.zeros(3, self.channels, dtype=torch.float64)  # unit mins, unit maxes, units

    def _unit_stats(self, units: Tensor) -> tuple[Tensor, Tensor]:
        return units.amin(dim=1), (units.abs() if self.abs_max else units).amax(dim=1)

    def _update(self, units: Tensor) -> None:
        mins, maxes = (t.double() for t in self._unit_stats(units))
        self._min = torch.minimum(self._min.to(units.device), mins.amin(dim=0))
        self._max = torch.maximum(self._max.to(units.device), maxes.amax(dim=0))
        self._sums = self._sums.to(units.device)
        self._sums[0] += mins.sum(dim=0)
        self._sums[1] += maxes.sum(dim=0)
        self._sums[2] += units.shape[0]

    def _result(self) -> tuple[Tensor, Tensor]:
        sum_mins, sum_maxes, count = self._sums
        low = sum_mins / count if self.mean_of_mins else self._min
        return low, sum_maxes / count if self.mean_of_maxes else self._max

    def _reduce(self) -> None:
        dist.all_reduce(self._min, op=dist.ReduceOp.MIN)
        dist.all_reduce(self._max, op=dist.ReduceOp.MAX)
        dist.all_reduce(self._sums)


class MeanPercentileCollector(MinMaxCollector):
    """Mean over units of the unit ``percentiles`` (min, max); O(channels) memory."""

    def __init__(
        self,
        scale_shape: Sequence[int],
        channel_axis: int | None,
        per_sample: bool,
        percentiles: Sequence[float],
    ) -> None:
        super().__init__(
            scale_shape, channel_axis, per_sample, abs_max=False, mean_of_mins=True, mean_of_maxes=True
        )
        self.fractions = [p / 100 for p in percentiles]

    def _unit_stats(self, units: Tensor) -> tuple[Tensor, Tensor]:
        low, high = quantile(units, self.fractions, dim=1)
        return low, high


class _StoredValuesCollector(StatisticCollector):
    """Keeps a uniform sample of at most ``max_values`` values (bottom-k of uniform random keys)."""

    def __init__(
        self,
        scale_shape: Sequence[int],
        channel_axis: int | None,
        *,
        percentiles: Sequence[float] = (),
        max_values: int = DEFAULT_MAX_STORED_VALUES,
        seed: int = 0,
    ) -> None:
        super().__init__(scale_shape, channel_axis, per_sample=False)
        self.fractions = [p / 100 for p in percentiles]
        self.capacity = max(1, max_values // self.channels)
        rank = dist.get_rank() if _distributed() else 0
        self._generator = torch.Generator().manual_seed(seed + rank)
        self._values = self._keys = torch.empty(self.channels, 0)

    def _update(self, units: Tensor) -> None:
        values = units.reshape(-1, self.channels).T
        keys = torch.rand(values.shape, generator=self._generator).to(values.device)
        old_values, old_keys = self._values.to(values.device), self._keys.to(values.device)
        self._keep(torch.cat([old_values, values], 1), torch.cat([old_keys, keys], 1))

    def _keep(self, values: Tensor, keys: Tensor) -> None:
        if values.shape[1] > self.capacity:
            chosen = keys.topk(self.capacity, dim=1, largest=False).indices
            values, keys = values.gather(1, chosen), keys.gather(1, chosen)
        self._values, self._keys = values, keys

    def _reduce(self) -> None:
        keys = self._keys.to(self._values.device)
        self._keep(_all_gather_columns(self._values), _all_gather_columns(keys))


class PercentileCollector(_StoredValuesCollector):
    """``percentiles`` (min, max) of all (sampled) values."""

    def _result(self) -> tuple[Tensor, Tensor]:
        low, high = quantile(self._values, self.fractions, dim=1)
        return low, high


class ThreeSigmaCollector(_StoredValuesCollector):
    """``median ± 3·MAD`` (median absolute deviation, unscaled) of all (sampled) values."""

    def _result(self) -> tuple[Tensor, Tensor]:
        median = quantile(self._values, [0.5], dim=1)[0]
        # In float64: the deviation of values near float32's limits would overflow in float32.
        mad = quantile((self._values.double() - median[:, None]).abs(), [0.5], dim=1)[0]
        return median - 3 * mad, median + 3 * mad


def _percentiles(params: Mapping[str, float]) -> tuple[float, float]:
    names = ("min_percentile", "max_percentile")
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"unknown range-init params {unknown}; expected {list(names)}")
    low, high = (
        float(params.get(n, default_of(f"initializer.range.params.{n}", algorithm="quantization")))
        for n in names
    )
    if not 0 <= low <= high <= 100:
        raise ValueError(f"need 0 <= min_percentile <= max_percentile <= 100, got {low} and {high}")
    return low, high


def make_collector(
    init_type: str,
    params: Mapping[str, float] | None = None,
    *,
    scale_shape: Sequence[int] = (1,),
    channel_axis: int | None = None,
    symmetric: bool = True,
    is_weights: bool = False,
    per_sample: bool | None = None,
    max_stored_values: int = DEFAULT_MAX_STORED_VALUES,
    seed: int = 0,
) -> StatisticCollector:
    """The collector for a range-init ``type`` and ``params`` of an NNCF config.

    Args:
        init_type: one of `RANGE_INIT_TYPES`.
        params: ``min_percentile`` / ``max_percentile`` (used by the percentile types).
        scale_shape: the quantizer's ``scale_shape``.
        channel_axis: channel axis of the registered tensors, ``None`` for per-tensor.
        symmetric: the quantizer's mode; min/max collectors then use abs-max for max.
        is_weights: the collector sees a weight rather than activations.
        per_sample: units are samples; by default only for ``mixed_min_max`` on
            per-tensor activations, as in NNCF. Ignored by the whole-set statistics
            (``threesigma``, ``percentile``).
        max_stored_values: sample cap of ``threesigma`` and ``percentile``.
        seed: seed of that sampling (offset by the rank under torch.distributed).

    Examples:
        >>> c = make_collector("mixed_min_max", symmetric=False)
        >>> c.register(torch.tensor([[0.0, 4.0], [-2.0, 2.0]]))
        >>> c.min_max()
        (tensor([-1.]), tensor([3.]))
    """
    if init_type not in RANGE_INIT_TYPES:
        raise ValueError(f"unknown range init type {init_type!r}{did_you_mean(init_type, RANGE_INIT_TYPES)}")
    percentiles = _percentiles(params or {})
    per_tensor_activations = not is_weights and channel_axis is None
    if per_sample is None:
        per_sample = init_type == "mixed_min_max" and per_tensor_activations
    if init_type in ("threesigma", "percentile"):
        cls = ThreeSigmaCollector if init_type == "threesigma" else PercentileCollector
        return cls(
            scale_shape, channel_axis, percentiles=percentiles, max_values=max_stored_values, seed=seed
        )
    if init_type == "mean_percentile":
        return MeanPercentileCollector(scale_shape, channel_axis, per_sample, percentiles)
    mean_mins, mean_maxes = {
        "min_max": (False, False),
        "mean_min_max": (True, True),
        "mixed_min_max": (per_tensor_activations and not symmetric, per_tensor_activations),
    }[init_type]
    return MinMaxCollector(
        scale_shape,
        channel_axis,
        per_sample,
        abs_max=symmetric,
        mean_of_mins=mean_mins,
        mean_of_maxes=mean_maxes,
    )
