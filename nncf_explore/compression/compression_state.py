"""Reading a ``compression_state`` back: every field checked against the config and the traced graph.

A state is JSON that decides what gets built, exactly like a config, and it comes from files
that users edit, merge and truncate.  So it gets the config's treatment: each value is checked
where it is read, against the same field rules as the config (bit widths against the target
device, modes against the field table's enum) and against the graph it is applied to (nodes,
ports, weights, tensor shapes).  Every problem is a :class:`CompressionStateError` that names the
path in the state, e.g. ``compression_state.builder_state.quantization.quantizer_setup.points[3].spec.bits``,
and the fix; nothing from inside fails later at the first forward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NoReturn, get_args

from torch import Tensor, nn

from nncf_explore.compression.quantization.controller import BUILDER_STATE_VERSION
from nncf_explore.compression.quantization.point_constraints import check_point
from nncf_explore.compression.quantization.settings import QuantizationSettings, check_bits
from nncf_explore.compression.quantization.setup import PointKind, QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec, check_scale_shape
from nncf_explore.config.fields import spec_at
from nncf_explore.config.validate import find_issues
from nncf_explore.errors import CompressionStateError, ConfigError, did_you_mean
from nncf_explore.graph.ir import Edge, Graph, Node

ROOT = "compression_state"
_AS_SAVED = (
    "pass the compression_state exactly as ctrl.get_compression_state() returned it (saved with the "
    "model's state_dict, e.g. in one torch.save checkpoint)"
)
_POINT_KEYS = frozenset(f.name for f in dataclasses.fields(QuantizationPoint)) | {"id"}
_SPEC_KEYS = frozenset(f.name for f in dataclasses.fields(QuantizerSpec))
# Spec fields that the config's field table also defines, under `weights` / `activations`.
_SPEC_FIELDS_IN_CONFIG = ("bits", "mode", "signed", "per_channel", "logarithm_scale")


def _fail(where: str, problem: str, fix: str = _AS_SAVED) -> NoReturn:
    raise CompressionStateError(f"{where}: {problem}; {fix}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(where, f"expected an object, got {type(value).__name__} {value!r:.80}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: Any, where: str) -> int | None:
    if value is not None and not _is_int(value):
        _fail(where, f"expected an integer or null, got {value!r:.80}")
    return None if value is None else int(value)


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value or not all(_is_int(d) and d > 0 for d in value):
        _fail(where, f"expected a non-empty list of positive integers, got {value!r:.80}")
    return tuple(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        _fail(where, f"expected a list of strings, got {value!r:.80}")
    return tuple(value)


def _known_keys(data: Mapping[str, Any], known: Collection[str], where: str) -> None:
    for key in data:
        if key not in known:
            hint = did_you_mean(str(key), known)
            _fail(f"{where}.{key}", f"unknown key{hint} (allowed: {', '.join(sorted(known))})")


# -- the whole state --------------------------------------------------------------------------------


def check_compression_state(compression_state: Any, algorithms: Sequence[str]) -> Mapping[str, Any]:
    """Check the layout of ``compression_state`` for a config with these ``algorithms``; its builder_state.

    Raises:
        CompressionStateError: It is not a state (a checkpoint, say), or it holds algorithms the
            config does not have, or its ``ctrl_state`` is malformed.

    Examples:
        >>> state = {"builder_state": {"quantization": {}}, "ctrl_state": {}}
        >>> check_compression_state(state, ["magnitude_sparsity"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nncf_explore.errors.CompressionStateError: compression_state.builder_state.quantization: ...
    """
    if not isinstance(compression_state, Mapping) or "builder_state" not in compression_state:
        _not_a_state(compression_state)
    builder = _mapping(compression_state["builder_state"], f"{ROOT}.builder_state")
    if "quantization" in algorithms and "quantization" not in builder:
        raise CompressionStateError(
            f"compression_state has no builder_state.quantization entry (it holds {sorted(builder)}): it "
            "was saved with another config; pass the compression_state saved with this config"
        )
    _known_algorithms(builder, algorithms, f"{ROOT}.builder_state")
    for name in builder:
        _mapping(builder[name], f"{ROOT}.builder_state.{name}")
    if "ctrl_state" in compression_state:
        _check_ctrl_state(compression_state["ctrl_state"], algorithms)
    return builder


def _not_a_state(compression_state: Any) -> NoReturn:
    looks_like = (
        "a checkpoint or model state_dict"
        if isinstance(compression_state, Mapping)
        and (
            "state_dict" in compression_state
            or any(isinstance(v, Tensor) for v in compression_state.values())
        )
        else f"a {type(compression_state).__name__} without a 'builder_state' key"
    )
    raise CompressionStateError(
        f"compression_state is {looks_like}, not the output of ctrl.get_compression_state(); pass "
        "checkpoint['compression_state'] here and load checkpoint['state_dict'] with "
        "model.load_state_dict() afterwards"
    )


def _known_algorithms(entries: Mapping[str, Any], algorithms: Sequence[str], where: str) -> None:
    for name in entries:
        if name not in algorithms:
            configured = ", ".join(repr(a) for a in algorithms) or "none"
            _fail(
                f"{where}.{name}",
                f"the state holds {name!r}, but the config's algorithms are {configured}"
                f"{did_you_mean(str(name), algorithms)}",
                f"add the {name!r} section to the config's compression, or pass the compression_state "
                "saved with this config",
            )


def _check_ctrl_state(ctrl_state: Any, algorithms: Sequence[str]) -> None:
    where = f"{ROOT}.ctrl_state"
    entries = _mapping(ctrl_state, where)
    _known_algorithms(entries, algorithms, where)
    for name, value in entries.items():
        entry = _mapping(value, f"{where}.{name}")
        scheduler = _mapping(entry.get("scheduler_state"), f"{where}.{name}.scheduler_state")
        for counter in ("current_step", "current_epoch"):
            if not _is_int(scheduler.get(counter)):
                _fail(
                    f"{where}.{name}.scheduler_state.{counter}",
                    f"expected an integer, got {scheduler.get(counter)!r:.80}",
                )
        if "compression_stage" in entry and not _is_int(entry["compression_stage"]):
            _fail(
                f"{where}.{name}.compression_stage",
                f"expected an integer, got {entry['compression_stage']!r:.80}",
            )


# -- the quantizer setup ----------------------------------------------------------------------------


def setup_from_state(
    state: Mapping[str, Any], graph: Graph, model: nn.Module, settings: QuantizationSettings
) -> QuantizerSetup:
    """The quantizer setup of ``builder_state.quantization``, checked against ``graph`` and ``settings``.

    Raises:
        CompressionStateError: A field is missing, of the wrong type, outside the config's rules, or
            does not fit the graph; the message names its path in the state and the fix.
    """
    where = f"{ROOT}.builder_state.quantization"
    if state.get("version") != BUILDER_STATE_VERSION:
        _fail(
            f"{where}.version",
            f"version is {state.get('version')!r}; this nncf_explore reads version {BUILDER_STATE_VERSION} "
            "(NNCF's own states are not readable)",
            "create the model without compression_state and load the weights only",
        )
    data = _mapping(state.get("quantizer_setup"), f"{where}.quantizer_setup")
    where = f"{where}.quantizer_setup"
    _known_keys(data, ("points", "target_device"), where)
    device = data.get("target_device", "ANY")
    for issue in find_issues(device, spec_at("target_device"), f"{where}.target_device"):
        _fail(issue.path, issue.message)
    points = data.get("points")
    if not isinstance(points, list):
        _fail(f"{where}.points", f"expected a list of quantization points, got {points!r:.80}")
    checker = _PointChecker(graph, model, settings)
    parsed = [checker.point(p, f"{where}.points[{i}]") for i, p in enumerate(points)]
    seen: dict[str, int] = {}
    for i, point in enumerate(parsed):
        if point.id in seen:
            _fail(f"{where}.points[{i}]", f"quantizer {point.id!r} is also points[{seen[point.id]}]")
        seen[point.id] = i
    return QuantizerSetup(tuple(parsed), str(device))


class _PointChecker:
    """Turns one saved point into a :class:`QuantizationPoint`, or fails naming the field."""

    def __init__(self, graph: Graph, model: nn.Module, settings: QuantizationSettings) -> None:
        self.graph, self.model, self.settings = graph, model, settings

    def point(self, data: Any, where: str) -> QuantizationPoint:
        data = _mapping(data, where)
        _known_keys(data, _POINT_KEYS, where)
        for key in ("kind", "target_node", "spec"):
            if key not in data:
                _fail(f"{where}.{key}", "missing")
        kind = self._kind(data["kind"], f"{where}.kind")
        node = self._node(data["target_node"], f"{where}.target_node")
        spec = self._spec(data["spec"], kind, f"{where}.spec")
        point = QuantizationPoint(
            kind=kind,
            target_node=node.name,
            input_port=_int_or_none(data.get("input_port"), f"{where}.input_port"),
            spec=spec,
            scale_shape=_shape(data.get("scale_shape", [1]), f"{where}.scale_shape"),
            channel_axis=_int_or_none(data.get("channel_axis"), f"{where}.channel_axis"),
            channel_shape=_shape(data.get("channel_shape", [1]), f"{where}.channel_shape"),
            weight_param=data.get("weight_param"),
            directly_quantized_ops=self._ops(data.get("directly_quantized_ops", []), where),
            unified_group=_int_or_none(data.get("unified_group"), f"{where}.unified_group"),
        )
        shape = (
            self._weight_shape(point, node, where) if kind == "weight" else self._tensor(point, node, where)
        )
        self._fits(point, shape, where)
        try:  # the device's rule at this point (NPU: 4-bit activations only before some ops)
            check_point(point, self.graph, self.settings)
        except ConfigError as exc:
            raise CompressionStateError(
                f"{where}.spec.bits: {exc}; or pass the config (its target_device) that the state was "
                "saved with"
            ) from None
        if "id" in data and data["id"] != point.id:
            _fail(
                f"{where}.id",
                f"{data['id']!r:.120} does not match the point's fields, which give {point.id!r}",
            )
        return point

    def _kind(self, value: Any, where: str) -> PointKind:
        kinds: tuple[str, ...] = get_args(PointKind)
        if value not in kinds:
            _fail(
                where,
                f"{value!r:.80} is not one of {', '.join(map(repr, kinds))}{did_you_mean(str(value), kinds)}",
            )
        kind: PointKind = value
        return kind

    def _node(self, value: Any, where: str) -> Node:
        node = self.graph.find(value) if isinstance(value, str) else None
        if node is None:
            hint = did_you_mean(str(value), (n.name for n in self.graph.nodes))
            _fail(
                where,
                f"this model's graph has no node {value!r:.200}{hint}",
                "the state was saved for another model or other input_info: create the model without "
                "compression_state, or with the model and config it was saved with",
            )
        return node

    def _ops(self, value: Any, where: str) -> tuple[str, ...]:
        names = _strings(value, f"{where}.directly_quantized_ops")
        for i, name in enumerate(names):
            self._node(name, f"{where}.directly_quantized_ops[{i}]")
        return names

    def _spec(self, value: Any, kind: PointKind, where: str) -> QuantizerSpec:
        data = _mapping(value, where)
        _known_keys(data, _SPEC_KEYS, where)
        group = "weights" if kind == "weight" else "activations"
        for key in _SPEC_FIELDS_IN_CONFIG:
            # null signedness is "decided by range init", which the config says by leaving it out.
            if key in data and not (key == "signed" and data[key] is None):
                field = spec_at(key, algorithm="quantization", under=group)
                for issue in find_issues(data[key], field, f"{where}.{key}"):
                    _fail(issue.path, issue.message)
        for key in ("narrow_range", "half_range"):
            if key in data and not isinstance(data[key], bool):
                _fail(f"{where}.{key}", f"expected true or false, got {data[key]!r:.80}")
        if "bits" in data:
            _check_device_bits(data["bits"], self.settings, f"{where}.bits")
        try:
            return QuantizerSpec(**data)
        except (TypeError, ValueError) as exc:
            _fail(where, str(exc))

    def _tensor(self, point: QuantizationPoint, node: Node, where: str) -> tuple[int, ...]:
        edge = self._edge(point, node, where)
        if edge is None:
            return ()
        if edge.is_integer:
            _fail(
                f"{where}.target_node",
                f"the tensor at {point.id!r} is {edge.dtype}: integer tensors are not quantized",
                "remove this point, or move it onto a floating-point tensor",
            )
        return edge.shape

    def _edge(self, point: QuantizationPoint, node: Node, where: str) -> Edge | None:
        if point.input_port is None:
            edges = self.graph.out_edges(node.id)
            return edges[0] if edges else None
        edges = self.graph.in_edges(node.id)
        for edge in edges:
            if edge.in_port == point.input_port:
                return edge
        ports = sorted({e.in_port for e in edges})
        _fail(
            f"{where}.input_port",
            f"node {node.name!r} has no tensor input {point.input_port} (its tensor inputs: {ports})",
            "use one of those ports, or null for the node's output",
        )

    def _weight_shape(self, point: QuantizationPoint, node: Node, where: str) -> tuple[int, ...]:
        params = sorted(set(node.params.values()))
        if not params:
            weighted = [n.name for n in self.graph.nodes if n.weight is not None]
            _fail(
                f"{where}.target_node",
                f"a weight quantizer needs a node with a weight, and {node.name!r} ({node.op}) has "
                f"none{did_you_mean(node.name, weighted) or f' (nodes with a weight: {weighted[:3]})'}",
                "move it back onto the node of its weight, or make it an activation quantizer",
            )
        if point.weight_param not in params:
            _fail(
                f"{where}.weight_param",
                f"{point.weight_param!r:.200} is not a weight of node {node.name!r} (it uses {params})"
                f"{did_you_mean(str(point.weight_param), params)}",
            )
        param: Tensor = self.model.get_parameter(point.weight_param)
        return tuple(param.shape)

    def _fits(self, point: QuantizationPoint, shape: tuple[int, ...], where: str) -> None:
        try:
            check_scale_shape(point.spec, point.scale_shape, point.channel_axis)
        except ValueError as exc:
            _fail(f"{where}.scale_shape", str(exc))
        for name, value in (("scale_shape", point.scale_shape), ("channel_shape", point.channel_shape)):
            if shape and not _broadcasts(value, shape):
                _fail(
                    f"{where}.{name}",
                    f"{list(value)} does not fit the quantized tensor of shape {list(shape)} at "
                    f"{point.id!r}: it needs one entry per dimension, each 1 or the tensor's size "
                    "(or just [1])",
                )


def _broadcasts(scale: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    if scale == (1,):
        return True
    return len(scale) == len(shape) and all(s in (1, d) for s, d in zip(scale, shape, strict=True))


def _check_device_bits(bits: Any, settings: QuantizationSettings, where: str) -> None:
    try:
        check_bits(int(bits), settings, where)
    except ConfigError as exc:
        raise CompressionStateError(
            f"{exc}; or pass the config (its target_device) that the state was saved with"
        ) from None
