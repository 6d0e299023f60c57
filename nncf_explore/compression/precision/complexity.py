"""Bit complexity, NNCF's measure for mixed precision: FLOPs × bits over the weighted ops.

A weighted op computes at the wider of its weight's and its input's bit width,
so its contribution is ``FLOPs × max(weight bits, input bits)``; an op whose
input is not quantized counts its weight bits.  NNCF's HAWQ
``compression_ratio`` is the all-INT8 bit complexity over the mixed one.
FLOPs are multiply-accumulates, counted from the traced shapes (the batch of
``input_info`` included: it scales every op alike, so ratios do not see it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.graph.ir import Graph, Node

_TRANSPOSED = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def _shape_out(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return next((e.shape for e in graph.out_edges(node.id) if e.out_port == 0), None)


def _shape_in(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return next((e.shape for e in graph.in_edges(node.id) if e.in_port == 0), None)


def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of a weighted op: output elements × weight elements per output.

    Embedding lookups compute nothing and count 0.  A transposed convolution is
    counted from its input, the side its weight's first axis runs along.
    """
    weight = node.attrs.get("weight_shape")
    if not weight or node.op.startswith("embedding"):
        return 0
    per_element = math.prod(int(s) for s in weight[1:])
    shape = _shape_in(graph, node) if node.op in _TRANSPOSED else _shape_out(graph, node)
    return math.prod(shape) * per_element if shape else 0


def op_input_bits(setup: QuantizerSetup) -> dict[str, int]:
    """Op name -> the widest bit width among the activation quantizers feeding it."""
    bits: dict[str, int] = {}
    for point in setup.activations:
        for op in point.directly_quantized_ops:
            bits[op] = max(bits.get(op, 0), point.spec.bits)
    return bits


def weight_op_costs(graph: Graph, setup: QuantizerSetup) -> dict[str, tuple[int, int]]:
    """Weight quantizer id -> ``(MACs of its op, bits of the op's input quantizer or 0)``."""
    feeding = op_input_bits(setup)
    costs: dict[str, tuple[int, int]] = {}
    for point in setup.weights:
        node = graph.node(point.target_node)
        costs[point.id] = (node_macs(graph, node), feeding.get(node.name, 0))
    return costs


def bit_complexity(
    graph: Graph,
    setup: QuantizerSetup,
    weight_bits: Mapping[str, int] | None = None,
    *,
    input_bits: int | None = None,
) -> int:
    """``Σ MACs × max(weight bits, input bits)`` over the setup's weight quantizers.

    Args:
        graph: The traced graph.
        setup: The quantizer setup.
        weight_bits: Weight quantizer id -> bits, overriding the setup's.
        input_bits: Bits of every quantized op input, overriding the setup's (8: the all-INT8 reference).

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> from nncf_explore.compression.quantization.build import build_quantizer_setup
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        >>> g = trace_model(net, {"sample_size": [2, 4]})
        >>> s = build_quantizer_setup(g, {"compression": {"algorithm": "quantization"}})
        >>> bit_complexity(g, s)  # 2 x 3 outputs x 4 inputs x 8 bits
        192
        >>> bit_complexity(g, s, {"Sequential/Linear[0]/linear_0|WEIGHT": 4})  # the 8-bit input still wins
        192
    """
    overrides = weight_bits or {}
    total = 0
    for qid, (macs, feeding) in weight_op_costs(graph, setup).items():
        bits = overrides.get(qid, setup.get(qid).spec.bits)
        widest_input = input_bits if input_bits is not None and feeding else feeding
        total += macs * max(bits, widest_input)
    return total
