"""Which bit widths one quantization point may take on its device, and the error when it may not.

The hardware tables (:mod:`.hardware`) say what each op allows; this module
reads a point's kind, op or fed ops, mode and granularity from the setup and
the graph.  The check of every built setup (group bits, ``scope_overrides``,
``bitwidth_per_scope``), the Explorer's bit menus and HAWQ's candidates all ask
here, so they cannot disagree.
"""

from __future__ import annotations

from nncf_explore.compression.quantization.hardware import (
    TRIAL_BITS,
    activation_bits,
    device_bits,
    weight_bits,
)
from nncf_explore.compression.quantization.settings import QuantizationSettings, hardware_hint, range_text
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph, Node


def _fed_ops(point: QuantizationPoint, graph: Graph) -> list[Node]:
    names = point.directly_quantized_ops or (point.target_node,)
    return [node for node in (graph.find(name) for name in names) if node is not None]


def point_bits(point: QuantizationPoint, graph: Graph, settings: QuantizationSettings) -> tuple[int, ...]:
    """Bit widths ``point`` may take on the device, given its mode and granularity (ascending).

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> from nncf_explore.compression.quantization.build import build_quantizer_setup
        >>> from nncf_explore.compression.quantization.settings import resolve_settings
        >>> g = trace_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1)), {"sample_size": [1, 3, 4, 4]})
        >>> config = {"target_device": "NPU", "compression": {"algorithm": "quantization"}}
        >>> settings = resolve_settings(config, config["compression"])
        >>> [(p.id, point_bits(p, g, settings)) for p in build_quantizer_setup(g, config)]
        [('Sequential/Conv2d[0]/conv2d_0|WEIGHT', (2, 4, 8)), ('/nncf_model_input_0|OUTPUT', (4, 8))]
    """
    if point.kind == "weight":
        node = graph.find(point.target_node)
        return (
            device_bits(settings.hardware, "weight")
            if node is None
            else weight_bits(node, settings.hardware, point.spec.mode)
        )
    return activation_bits(_fed_ops(point, graph), settings.hardware, point.spec.mode, point.spec.per_channel)


def _point_rule(point: QuantizationPoint, graph: Graph, settings: QuantizationSettings) -> str:
    """What ``point`` is to the hardware config and the widths that allows, naming the op(s)."""
    bits = range_text(point_bits(point, graph, settings))
    if point.kind == "weight":
        return f"the {point.spec.mode} weight of {point.target_node!r} may have {bits} bits"
    granularity = "per-channel" if point.spec.per_channel else "per-tensor"
    ops = ", ".join(f"{n.name!r} ({n.category.value.replace('_', ' ')})" for n in _fed_ops(point, graph))
    fed = ops or repr(point.target_node)
    return f"a {granularity} {point.spec.mode} activation feeding {fed} may have {bits} bits"


def point_restriction(point: QuantizationPoint, graph: Graph, settings: QuantizationSettings) -> str | None:
    """Why ``point`` has fewer widths than ``TRIAL`` offers, naming the op; None on ``TRIAL``."""
    if settings.hardware is None:
        return None
    return f"{hardware_hint(settings.target_device)}. Here, {_point_rule(point, graph, settings)}"


def check_point(point: QuantizationPoint, graph: Graph, settings: QuantizationSettings) -> None:
    """Raise a :class:`ConfigError` naming the quantizer and the op if the device refuses its bits."""
    if point.spec.bits in point_bits(point, graph, settings):
        return
    if settings.hardware is None:
        raise ConfigError(
            f"quantizer {point.id!r}: {point.spec.bits} bits is out of range; use {range_text(TRIAL_BITS)}"
        )
    raise ConfigError(
        f"quantizer {point.id!r}: {point.spec.bits} bits is not allowed: "
        f"{point_restriction(point, graph, settings)}"
    )
