"""Quantizer placement: config + graph -> :class:`QuantizerSetup`, following NNCF's rules.

Weights: one quantizer per weighted op (conv, linear, embedding, matmul with a
parameter), per output channel on hardware configs.  Activations: each op whose
inputs are quantizable asks for a quantizer on each floating-point input; the
requests then move upstream through quantization-agnostic ops (max-pool,
reshapes, dropout...), merge where all consumers of a tensor asked for
compatible quantizers, are cloned onto concat inputs, and settle after the op
that produced the tensor (``<node>|OUTPUT``), or before their consumer
(``<node>|INPUT<port>``) where a sibling consumer stays in floating point.
Fused patterns (conv-BN-ReLU, add-ReLU, ...) get no quantizer inside.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from nncf_explore.compression.quantization.fusion import fused_groups
from nncf_explore.compression.quantization.hardware import (
    CONCAT_OPS,
    LINEAR_OPS,
    QConfig,
    Trait,
    activation_qconfigs,
    trait_of,
    uses_unified_input_scales,
)
from nncf_explore.compression.quantization.settings import QuantizationSettings
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.graph.ir import Edge, Graph, Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.graph.scope import matches_any

# Agnostic ops that keep the channel axis, so per-channel requests may pass.
_CHANNEL_PRESERVING = frozenset(
    [
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "adaptive_max_pool2d",
        "dropout",
        "dropout2d",
        "feature_dropout",
        "pad",
        "contiguous",
        "clone",
        "detach",
        "to",
    ]
)


@dataclass
class _Request:
    qconfigs: tuple[QConfig, ...]
    consumers: tuple[str, ...]
    unify: int | None = None


def activation_allowed(node: Node, settings: QuantizationSettings) -> bool:
    """Whether activation scopes let ``node`` have input quantizers."""
    group = settings.activations
    if group.target_scopes is not None and not matches_any(group.target_scopes, node.name):
        return False
    return not matches_any(group.ignored_scopes, node.name)


def _constrain(qconfigs: Iterable[QConfig], settings: QuantizationSettings) -> tuple[QConfig, ...]:
    group = settings.activations
    kept = tuple(
        QConfig(q.mode, q.per_channel, group.bits)
        for q in qconfigs
        if q.mode == group.mode and (group.per_channel is None or q.per_channel == group.per_channel)
    )
    return kept or (QConfig(group.mode, bool(group.per_channel), group.bits),)


class _Placer:
    def __init__(self, graph: Graph, settings: QuantizationSettings) -> None:
        self.graph = graph
        self.settings = settings
        self.group_of = fused_groups(graph)
        self.requests: dict[tuple[int, int], _Request] = {}  # (consumer id, port) -> request
        self.points: list[tuple[int, int | None, _Request]] = []  # (node id, port or None, request)
        self._unify_ids = itertools.count()
        # A merged request joins the unified groups of all its parts (NNCF merges the groups too);
        # a group's other members may already be settled, so group ids are resolved at the end.
        self._same_group: dict[int, int] = {}

    def leader(self, node: Node) -> Node:
        return self.graph.nodes[self.group_of[node.id][0]]

    def trait(self, node: Node) -> Trait:
        if not activation_allowed(node, self.settings):
            return Trait.NON_QUANTIZABLE
        return trait_of(node, self.settings.hardware)

    # -- requests ----------------------------------------------------------------
    def make_requests(self) -> None:
        for node in self.graph.nodes:
            wants = node.category is OpCategory.OUTPUT and self.settings.quantize_outputs
            group = self.group_of[node.id]
            if node.id == group[0] and node.category is not OpCategory.OUTPUT:
                wants = self.trait(node) is Trait.INPUTS_QUANTIZABLE
            if not wants:
                continue
            qconfigs = _constrain(activation_qconfigs(node, self.settings.hardware), self.settings)
            member_ids = set(group)
            # npu.json gives element-wise ops one scale for all inputs, so both sides share a grid.
            unify = next(self._unify_ids) if uses_unified_input_scales(node, self.settings.hardware) else None
            for member in group:
                for edge in self.graph.in_edges(member):
                    if edge.src in member_ids or edge.is_integer:
                        continue
                    self.requests[(edge.dst, edge.in_port)] = _Request(qconfigs, (node.name,), unify)
        self._link_unified_scale_ops()

    def _link_unified_scale_ops(self) -> None:
        from nncf_explore.errors import ConfigError

        for ops in self.settings.unified_scale_ops:
            matched = [key for key in self.requests if matches_any(ops, self.graph.nodes[key[0]].name)]
            if not matched:
                raise ConfigError(
                    f"compression.activations.unified_scale_ops: no quantizable op input matches {list(ops)}"
                )
            tag = next(self._unify_ids)
            for key in matched:
                self.requests[key].unify = tag

    # -- propagation -------------------------------------------------------------
    def propagate(self) -> None:
        for producer in reversed(self.graph.nodes):
            by_port: dict[int, list[Edge]] = {}
            for edge in self.graph.out_edges(producer.id):
                by_port.setdefault(edge.out_port, []).append(edge)
            for edges in by_port.values():
                self._settle_tensor(producer, edges)

    def _settle_tensor(self, producer: Node, edges: list[Edge]) -> None:
        pending = [self.requests.pop((e.dst, e.in_port), None) for e in edges]
        present = [r for r in pending if r is not None]
        if not present:
            return
        merged = _merge(present) if len(present) == len(edges) else None
        if merged is None:
            for edge, request in zip(edges, pending, strict=True):
                if request is not None:
                    self.points.append((edge.dst, edge.in_port, request))
            return
        self._join_groups(present, merged)
        self._move_up(producer, merged)

    def _join_groups(self, parts: list[_Request], merged: _Request) -> None:
        if merged.unify is None:
            return
        target = self._group(merged.unify)
        for part in parts:
            if part.unify is not None and self._group(part.unify) != target:
                self._same_group[self._group(part.unify)] = target

    def _move_up(self, producer: Node, request: _Request) -> None:
        trait = self.trait(producer)
        if trait is Trait.OUTPUT_AS_WEIGHTS:
            return  # an embedding's output rows are its (quantized) weight rows: nothing more to quantize
        single_group = len(self.group_of[producer.id]) == 1
        inputs = [e for e in self.graph.in_edges(producer.id) if not e.is_integer]
        per_tensor = all(not q.per_channel for q in request.qconfigs)
        passes_channels = per_tensor or producer.op in _CHANNEL_PRESERVING
        if single_group and trait is Trait.AGNOSTIC and inputs and inputs[0].in_port == 0 and passes_channels:
            self.requests[(producer.id, 0)] = request
            return
        if single_group and trait is Trait.CONCAT and producer.op in CONCAT_OPS and inputs:
            self._split_over_concat(producer, request, inputs)
            return
        self.points.append((producer.id, None, request))

    def _split_over_concat(self, concat: Node, request: _Request, inputs: list[Edge]) -> None:
        producers = [self.leader(self.graph.nodes[e.src]) for e in inputs]
        unify = request.unify
        if self.settings.hardware is not None and all(p.op in LINEAR_OPS for p in producers):
            unify = next(self._unify_ids) if unify is None else unify
        per_tensor = tuple(q for q in request.qconfigs if not q.per_channel) or request.qconfigs
        for edge in inputs:
            self.requests[(concat.id, edge.in_port)] = _Request(per_tensor, request.consumers, unify)

    def _group(self, tag: int) -> int:
        while tag in self._same_group:
            tag = self._same_group[tag]
        return tag

    # -- result --------------------------------------------------------------------
    def activation_points(self) -> list[QuantizationPoint]:
        points: list[QuantizationPoint] = []
        for node_id, port, request in sorted(self.points, key=lambda p: (p[0], -1 if p[1] is None else p[1])):
            node = self.graph.nodes[node_id]
            if port is None and node.category is OpCategory.INPUT and not self.settings.quantize_inputs:
                continue
            points.append(self._activation_point(node, port, request))
        return points

    def _activation_point(self, node: Node, port: int | None, request: _Request) -> QuantizationPoint:
        qconfig = request.qconfigs[0]
        edges = (
            self.graph.out_edges(node.id)
            if port is None
            else [e for e in self.graph.in_edges(node.id) if e.in_port == port]
        )
        shape = edges[0].shape if edges else ()
        channel_shape = tuple(s if i == 1 else 1 for i, s in enumerate(shape)) if len(shape) > 1 else (1,)
        per_channel = qconfig.per_channel and len(shape) > 1
        spec = QuantizerSpec(
            bits=qconfig.bits,
            mode="symmetric" if qconfig.mode == "symmetric" else "asymmetric",
            per_channel=per_channel,
            signed=self.settings.activations.signed,
            logarithm_scale=self.settings.activations.logarithm_scale,
        )
        return QuantizationPoint(
            kind="activation",
            target_node=node.name,
            input_port=port,
            spec=spec,
            scale_shape=channel_shape if per_channel else (1,),
            channel_axis=1 if per_channel else None,
            channel_shape=channel_shape,
            directly_quantized_ops=tuple(sorted(set(request.consumers))),
            unified_group=None if request.unify is None else self._group(request.unify),
        )


def _merge(requests: list[_Request]) -> _Request | None:
    common = [q for q in requests[0].qconfigs if all(q in r.qconfigs for r in requests[1:])]
    if not common:
        return None
    unify = next((r.unify for r in requests if r.unify is not None), None)
    consumers = tuple(c for r in requests for c in r.consumers)
    return _Request(tuple(common), consumers, unify)


def place_activation_quantizers(graph: Graph, settings: QuantizationSettings) -> list[QuantizationPoint]:
    """Activation quantization points of ``graph`` under ``settings``, in graph order."""
    placer = _Placer(graph, settings)
    placer.make_requests()
    placer.propagate()
    return placer.activation_points()
