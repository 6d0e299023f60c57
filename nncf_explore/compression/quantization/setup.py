"""The quantizer setup: every quantization point of a model, as pure data.

It sits between the config and the compressed model.  ``config + graph ->
setup`` is placement (:mod:`.placement`); ``setup -> compressed model`` builds
quantizer modules; ``setup -> config`` (:func:`config_from_setup`) writes an
NNCF-compatible config that places exactly this setup again.  The Explorer
edits setups, never models, which is why the three steps are separate.

Quantizer ids follow NNCF: ``<node>|WEIGHT``, ``<node>|OUTPUT`` (after the
node), ``<node>|INPUT<port>`` (before one input of the node).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.errors import ConfigError, did_you_mean

PointKind = Literal["weight", "activation"]


def quantizer_id(kind: PointKind, node: str, input_port: int | None) -> str:
    """NNCF's quantizer id.

    Examples:
        >>> quantizer_id("activation", "Net/relu_0", None)
        'Net/relu_0|OUTPUT'
        >>> quantizer_id("activation", "Net/Linear[fc]/linear_0", 0)
        'Net/Linear[fc]/linear_0|INPUT0'
    """
    if kind == "weight":
        return f"{node}|WEIGHT"
    return f"{node}|OUTPUT" if input_port is None else f"{node}|INPUT{input_port}"


@dataclass(frozen=True)
class QuantizationPoint:
    """One quantizer: where it sits and how it quantizes.

    Attributes:
        kind: ``"weight"`` quantizes a parameter; ``"activation"`` a tensor between ops.
        target_node: Name of the node the quantizer is attached to.
        input_port: For activations, the input port of ``target_node`` it sits
            before, or None when it sits after ``target_node``'s output.
        spec: Bits, mode, granularity, signedness, narrow/half range.
        scale_shape: Shape of the scale (``(1,)`` per tensor; ``(C, 1, 1, 1)``
            per output channel of a conv weight; ``(1, C, 1, 1)`` per channel of an activation).
        channel_axis: Axis the scale runs along when per channel.
        channel_shape: The scale shape this point would have per channel (kept
            so that switching granularity needs no graph), ``(1,)`` if it has no channels.
        weight_param: For weights, the fully qualified parameter name.
        directly_quantized_ops: Names of the ops whose inputs this quantizer feeds.
        unified_group: Points with the same group number share one quantizer (one scale).
    """

    kind: PointKind
    target_node: str
    input_port: int | None
    spec: QuantizerSpec
    scale_shape: tuple[int, ...] = (1,)
    channel_axis: int | None = None
    channel_shape: tuple[int, ...] = (1,)
    weight_param: str | None = None
    directly_quantized_ops: tuple[str, ...] = ()
    unified_group: int | None = None

    @property
    def id(self) -> str:
        """The NNCF quantizer id."""
        return quantizer_id(self.kind, self.target_node, None if self.kind == "weight" else self.input_port)

    def replace(self, **changes: Any) -> QuantizationPoint:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def respec(self, **changes: Any) -> QuantizationPoint:
        """This point with spec fields changed, the way placement would have made it.

        Weights keep NNCF's rules: the overflow fix (half range) and narrow range
        apply to 8 bits only.  Switching granularity switches the scale shape.
        Every editor of setups (the Explorer, :func:`config_from_setup`) uses this,
        so edited setups and configs agree.

        Examples:
            >>> p = QuantizationPoint("weight", "N/linear_0", 1, QuantizerSpec(narrow_range=True))
            >>> p.respec(bits=4).spec.narrow_range
            False
        """
        if self.kind == "weight":
            # Half range (the overflow fix) applies to 8-bit weights only, and narrow
            # range to 8-bit weights without it (reference §5.4); a width change
            # therefore settles both.  They are settled before the spec is built,
            # which checks them (a half-range 2-bit spec would be invalid).
            bits = changes.get("bits", self.spec.bits)
            half = changes.get("half_range", self.spec.half_range) and bits == 8
            changes = {**changes, "half_range": half, "narrow_range": bits == 8 and not half}
        spec = dataclasses.replace(self.spec, **changes)
        per_channel = spec.per_channel and self.channel_shape != (1,)
        spec = dataclasses.replace(spec, per_channel=per_channel)
        axis = self.channel_axis
        if axis is None:
            axis = next(
                (i for i, s in enumerate(self.channel_shape) if s != 1), 1 if self.kind == "activation" else 0
            )
        return self.replace(
            spec=spec,
            scale_shape=self.channel_shape if per_channel else (1,),
            channel_axis=axis if per_channel else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target_node": self.target_node,
            "input_port": self.input_port,
            "spec": self.spec.to_dict(),
            "scale_shape": list(self.scale_shape),
            "channel_axis": self.channel_axis,
            "channel_shape": list(self.channel_shape),
            "weight_param": self.weight_param,
            "directly_quantized_ops": list(self.directly_quantized_ops),
            "unified_group": self.unified_group,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizationPoint:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            target_node=data["target_node"],
            input_port=data.get("input_port"),
            spec=QuantizerSpec.from_dict(data["spec"]),
            scale_shape=tuple(data.get("scale_shape", (1,))),
            channel_axis=data.get("channel_axis"),
            channel_shape=tuple(data.get("channel_shape", (1,))),
            weight_param=data.get("weight_param"),
            directly_quantized_ops=tuple(data.get("directly_quantized_ops", ())),
            unified_group=data.get("unified_group"),
        )


@dataclass(frozen=True)
class QuantizerSetup:
    """All quantization points of a model, weights first, then activations in graph order."""

    points: tuple[QuantizationPoint, ...] = ()
    target_device: str = "ANY"
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {p.id: i for i, p in enumerate(self.points)}
        if len(index) != len(self.points):
            raise ValueError("quantizer setup has duplicate quantizer ids")
        self._index.update(index)

    def __iter__(self) -> Iterator[QuantizationPoint]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def __contains__(self, qid: object) -> bool:
        return qid in self._index

    @property
    def weights(self) -> list[QuantizationPoint]:
        """The weight quantization points."""
        return [p for p in self.points if p.kind == "weight"]

    @property
    def activations(self) -> list[QuantizationPoint]:
        """The activation quantization points."""
        return [p for p in self.points if p.kind == "activation"]

    def get(self, qid: str) -> QuantizationPoint:
        """The point with this quantizer id; a :class:`ConfigError` with a suggestion if absent."""
        if qid not in self._index:
            raise ConfigError(f"no quantizer {qid!r} in the setup{did_you_mean(qid, self._index)}")
        return self.points[self._index[qid]]

    def group_members(self, qid: str) -> list[QuantizationPoint]:
        """The point and every point sharing its unified scale."""
        point = self.get(qid)
        if point.unified_group is None:
            return [point]
        return [p for p in self.points if p.unified_group == point.unified_group]

    def with_points(self, points: Iterable[QuantizationPoint]) -> QuantizerSetup:
        """A setup with these points, keeping this one's device."""
        return QuantizerSetup(tuple(points), self.target_device)

    def replace_point(self, qid: str, **changes: Any) -> QuantizerSetup:
        """A setup with one point's fields changed.

        ``spec`` may be a dict of spec changes, applied with :meth:`QuantizationPoint.respec`.
        """
        spec_changes = changes.pop("spec", None)
        point = self.get(qid)
        if isinstance(spec_changes, Mapping):
            point = point.respec(**spec_changes)
        elif spec_changes is not None:
            changes["spec"] = spec_changes
        new = point.replace(**changes)
        return self.with_points(new if p.id == qid else p for p in self.points)

    def without(self, qids: Iterable[str]) -> QuantizerSetup:
        """A setup without these points."""
        drop = set(qids)
        for qid in drop:
            self.get(qid)
        return self.with_points(p for p in self.points if p.id not in drop)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (used in compression state and exports)."""
        return {"target_device": self.target_device, "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizerSetup:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(QuantizationPoint.from_dict(p) for p in data["points"]),
            str(data.get("target_device", "ANY")),
        )
