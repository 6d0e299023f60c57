"""Weight quantization points: one per weighted op, shared parameters quantized once."""

from __future__ import annotations

from dataclasses import replace

from nncf_explore.compression.quantization.hardware import WEIGHT_OP_AXES, uses_overflow_fix
from nncf_explore.compression.quantization.settings import QuantizationSettings
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.quantization.spec import QuantizationMode, QuantizerSpec
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.graph.scope import matches_any

WEIGHTED_CATEGORIES = frozenset(
    {
        OpCategory.CONVOLUTION,
        OpCategory.DEPTHWISE_CONVOLUTION,
        OpCategory.LINEAR,
        OpCategory.MATMUL,
        OpCategory.EMBEDDING,
    }
)


def weight_skip_reason(node: Node, settings: QuantizationSettings) -> str | None:
    """Why a weighted node gets no weight quantizer, or None if it gets one."""
    group = settings.weights
    if node.category is OpCategory.RECURRENT:
        return "recurrent op (LSTM/GRU): its weights enter one fused kernel; they stay in floating point"
    if node.category not in WEIGHTED_CATEGORIES:
        return "normalisation weights are not quantized (as in NNCF)"
    if matches_any(settings.global_ignored_scopes, node.name) or matches_any(
        settings.global_ignored_scopes, node.scope
    ):
        return "matched by the top-level ignored_scopes"
    if settings.global_target_scopes is not None and not (
        matches_any(settings.global_target_scopes, node.name)
        or matches_any(settings.global_target_scopes, node.scope)
    ):
        return "not matched by the top-level target_scopes"
    qid = f"{node.name}|WEIGHT"
    if matches_any(group.ignored_scopes, node.name) or matches_any(group.ignored_scopes, qid):
        return "matched by ignored_scopes"
    if group.target_scopes is not None and not (
        matches_any(group.target_scopes, node.name) or matches_any(group.target_scopes, qid)
    ):
        return "not matched by target_scopes"
    return None


def _first_conv(graph: Graph) -> str | None:
    for node in graph.nodes:
        if node.op in ("conv2d", "conv3d"):
            return node.name
    return None


def _weight_spec(node: Node, settings: QuantizationSettings, first_conv: str | None) -> QuantizerSpec:
    group = settings.weights
    per_channel = group.per_channel if group.per_channel is not None else settings.hardware is not None
    fix = settings.overflow_fix
    # NNCF applies the overflow fix for the CPU config only (ANY, CPU, CPU_SPR): GPU and NPU
    # weights stay narrow-range 8-bit.
    half = (
        uses_overflow_fix(settings.hardware)
        and group.bits == 8
        and (fix == "enable" or (fix == "first_layer_only" and node.name == first_conv))
    )
    signed = group.signed
    if signed is None and settings.hardware is not None and group.mode == "symmetric":
        signed = True  # every hardware config forces signed symmetric weights
    mode: QuantizationMode = "asymmetric" if group.mode == "asymmetric" else "symmetric"
    return QuantizerSpec(
        bits=group.bits,
        mode=mode,
        per_channel=per_channel,
        signed=signed,
        narrow_range=group.bits == 8 and not half,
        half_range=half,
        logarithm_scale=group.logarithm_scale,
    )


def weight_scale_shape(node: Node) -> tuple[tuple[int, ...], int | None]:
    """Per-channel scale shape and channel axis of a weight quantizer on ``node``."""
    shape = tuple(node.attrs.get("weight_shape", ()))
    if len(shape) < 2:
        return (1,), None
    axis = WEIGHT_OP_AXES.get(node.op)
    if axis is None:  # a matmul operand: output features are the last dim of the right operand
        axis = len(shape) - 1 if node.attrs.get("weight_port") == 1 else len(shape) - 2
    return tuple(s if i == axis else 1 for i, s in enumerate(shape)), axis


def place_weight_quantizers(graph: Graph, settings: QuantizationSettings) -> list[QuantizationPoint]:
    """Weight points in graph order; a parameter used by several ops is quantized once."""
    first_conv = _first_conv(graph)
    points: list[QuantizationPoint] = []
    by_param: dict[str, int] = {}
    for node in graph.nodes:
        param = node.weight
        if param is None or weight_skip_reason(node, settings) is not None:
            continue
        if param in by_param:
            index = by_param[param]
            shared = points[index]
            points[index] = shared.replace(directly_quantized_ops=(*shared.directly_quantized_ops, node.name))
            continue
        spec = _weight_spec(node, settings, first_conv)
        channel_shape, axis = weight_scale_shape(node)
        per_channel = spec.per_channel and axis is not None
        by_param[param] = len(points)
        points.append(
            QuantizationPoint(
                kind="weight",
                target_node=node.name,
                input_port=node.attrs.get("weight_port"),
                spec=spec if per_channel == spec.per_channel else replace(spec, per_channel=per_channel),
                scale_shape=channel_shape if per_channel else (1,),
                channel_axis=axis if per_channel else None,
                channel_shape=channel_shape,
                weight_param=param,
                directly_quantized_ops=(node.name,),
            )
        )
    return points
