"""Which range statistic each quantizer gets, and the cache of collected statistics.

``initializer.range`` (reference doc §2.4) is one object for all quantizers or
a list of per-scope entries; :func:`resolve_range_settings` turns it into a
:class:`RangeInitSettings` per quantizer.  A :class:`StatKey` names one
collected statistic by where it was measured and how, so that
:class:`RangeStatistics` can serve later setup edits (another mode or
granularity) without running data again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from nncf_explore.compression.quantization.range_init import (
    RANGE_INIT_TYPES,
    StatisticCollector,
    make_collector,
)
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.config.fields import default_of
from nncf_explore.errors import ConfigError, did_you_mean
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.scope import matches_any

RangeConfig = Mapping[str, Any] | Sequence[Mapping[str, Any]]
"""``initializer.range`` of an NNCF config: one object, or a list of per-scope objects."""

_VALUE_STORING = frozenset({"threesigma", "percentile"})
_MODE_DEPENDENT = frozenset({"min_max", "mean_min_max", "mixed_min_max"})


def _range_default(key: str) -> Any:
    return default_of(f"initializer.range.{key}", algorithm="quantization")


# -- which statistic each quantizer gets ---------------------------------------------------------


@dataclass(frozen=True)
class RangeInitSettings:
    """The statistic for one quantizer: ``type``, its ``params`` and the sample budget."""

    init_type: str
    params: tuple[tuple[str, float], ...]
    num_init_samples: int

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], path: str) -> RangeInitSettings:
        """Settings from one ``initializer.range`` object, defaults from the field table."""
        init_type = str(entry.get("type", _range_default("type")))
        if init_type not in RANGE_INIT_TYPES:
            hint = did_you_mean(init_type, RANGE_INIT_TYPES)
            raise ConfigError(f"{path}.type: unknown range init type {init_type!r}{hint}")
        params = entry.get("params", {})
        return cls(
            init_type,
            tuple(sorted((str(k), float(v)) for k, v in params.items())),
            int(entry.get("num_init_samples", _range_default("num_init_samples"))),
        )


def default_range_settings() -> RangeInitSettings:
    """What NNCF uses when a loader is registered but ``initializer.range`` is absent."""
    return RangeInitSettings.from_entry({}, "initializer.range")


def resolve_range_settings(
    points: Iterable[QuantizationPoint], range_config: RangeConfig | None, graph: Graph | None = None
) -> dict[str, RangeInitSettings]:
    """The range-init settings of each point, by quantizer id.

    A global object applies to every point.  With the per-layer list form, an
    entry applies to a point when its ``target_quantizer_group`` (if set) is the
    point's group, some ``target_scopes`` pattern (if set) matches, and no
    ``ignored_scopes`` pattern does; patterns are tested against the quantizer id,
    the target node's name and the node's module scope.  Points no entry matches
    get the default settings.

    Raises:
        ConfigError: An entry has an unknown type, or two entries match one quantizer.
    """
    if range_config is None or isinstance(range_config, Mapping):
        settings = RangeInitSettings.from_entry(range_config or {}, "initializer.range")
        return {p.id: settings for p in points}
    entries = [RangeInitSettings.from_entry(e, f"initializer.range[{i}]") for i, e in enumerate(range_config)]
    result: dict[str, RangeInitSettings] = {}
    for point in points:
        names = [point.id, point.target_node]
        node = graph.find(point.target_node) if graph is not None else None
        if node is not None:
            names.append(node.scope)
        matched = [i for i, e in enumerate(range_config) if _entry_matches(e, point, names)]
        if len(matched) > 1:
            raise ConfigError(
                f"initializer.range[{matched[0]}] and initializer.range[{matched[1]}] both match quantizer "
                f"{point.id!r}; a quantizer may match one entry only, so narrow their target_scopes or "
                "add ignored_scopes"
            )
        result[point.id] = entries[matched[0]] if matched else default_range_settings()
    return result


def _entry_matches(entry: Mapping[str, Any], point: QuantizationPoint, names: list[str]) -> bool:
    group = entry.get("target_quantizer_group")
    if group is not None and group != ("weights" if point.kind == "weight" else "activations"):
        return False
    targets, ignored = entry.get("target_scopes"), entry.get("ignored_scopes")
    if targets is not None and not any(matches_any(targets, n) for n in names):
        return False
    return not any(matches_any(ignored, n) for n in names)


# -- the statistics cache ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatKey:
    """What a range statistic depends on: where it was measured and how.

    Attributes:
        positions: ``(node, input port or None)`` of every tensor feeding one
            quantizer (several for a unified group).
        settings: The statistic and its sample budget.
        scale_shape: Shape of the result (per tensor or per channel).
        channel_axis: Channel axis of the measured tensors, None per tensor.
        symmetric: Whether maxima are absolute; only the min/max statistics
            depend on it, the others always store True here so one entry serves both modes.
    """

    positions: tuple[tuple[str, int | None], ...]
    settings: RangeInitSettings
    scale_shape: tuple[int, ...]
    channel_axis: int | None
    symmetric: bool

    @classmethod
    def for_points(cls, points: Sequence[QuantizationPoint], settings: RangeInitSettings) -> StatKey:
        """The key of the statistic a quantizer serving ``points`` is initialised from."""
        first = points[0]
        positions = tuple(sorted((p.target_node, p.input_port) for p in points))
        symmetric = first.spec.mode == "symmetric" or settings.init_type not in _MODE_DEPENDENT
        axis = first.channel_axis if first.spec.per_channel else None
        return cls(positions, settings, tuple(first.scale_shape), axis, symmetric)

    def alternatives(self, channel_shape: tuple[int, ...]) -> set[StatKey]:
        """This key with the other mode and/or granularity, where collecting them is cheap."""
        modes = {self.symmetric, not self.symmetric} if self.settings.init_type in _MODE_DEPENDENT else {True}
        shapes = {(self.scale_shape, self.channel_axis)}
        if self.settings.init_type not in _VALUE_STORING and math.prod(channel_shape) > 1:
            axis = next(i for i, s in enumerate(channel_shape) if s != 1)
            shapes |= {((1,), None), (tuple(channel_shape), axis)}
        return {
            replace(self, symmetric=mode, scale_shape=shape, channel_axis=axis)
            for mode in modes
            for shape, axis in shapes
        }

    def collector(self) -> StatisticCollector:
        """A fresh collector computing this statistic."""
        s = self.settings
        return make_collector(
            s.init_type,
            dict(s.params),
            scale_shape=self.scale_shape,
            channel_axis=self.channel_axis,
            symmetric=self.symmetric,
        )


@dataclass
class RangeStatistics:
    """Collected activation ranges, ``StatKey -> (min, max)`` (CPU float32 tensors of ``scale_shape``)."""

    values: dict[StatKey, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def get(self, key: StatKey) -> tuple[Tensor, Tensor] | None:
        """The statistic for ``key``, if it was collected."""
        return self.values.get(key)

    def update(self, other: RangeStatistics) -> None:
        """Add (and overwrite with) ``other``'s statistics."""
        self.values.update(other.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, key: object) -> bool:
        return key in self.values


def point_groups(points: Iterable[QuantizationPoint]) -> list[list[QuantizationPoint]]:
    """Points grouped by quantizer: one group per unified scale, singletons otherwise, in setup order."""
    groups: dict[object, list[QuantizationPoint]] = {}
    for p in points:
        groups.setdefault(p.id if p.unified_group is None else ("group", p.unified_group), []).append(p)
    return list(groups.values())
