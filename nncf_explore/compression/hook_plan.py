"""Where a compressed model's quantizers fire: a :class:`HookPlan`, built from a setup and the graph.

The plan is keyed by node name, the name every op gets at run time from the
same naming as the trace (:mod:`nncf_explore.compression.runtime`), so one
dictionary lookup per op finds its quantizers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import nn

from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.graph.ir import Graph


@dataclass(frozen=True)
class HookPlan:
    """Where quantizers fire, keyed by node name so each op costs one dict lookup.

    Attributes:
        pre: Node name -> ``(input port, quantizer)`` pairs applied before the op.
        post: Node name -> quantizer applied to the op's output port 0 (graph
            inputs and outputs included: ``/nncf_model_input_0``).
        weights: Parameter FQN -> its weight quantizer.
        graph_names: Every node name of the trace, to notice untraced ops.
        hooked: Node names that carry an activation quantizer -> that quantizer's id.
    """

    pre: Mapping[str, tuple[tuple[int, nn.Module], ...]]
    post: Mapping[str, nn.Module]
    weights: Mapping[str, nn.Module]
    graph_names: frozenset[str]
    hooked: Mapping[str, str]


def build_hook_plan(graph: Graph, quantizers: Iterable[tuple[QuantizationPoint, nn.Module]]) -> HookPlan:
    """The plan that applies each point's quantizer module at the point's position in ``graph``.

    Raises:
        GraphError: A point names a node that is not in the graph (with a suggestion).
        ValueError: A weight point lacks ``weight_param``, or two weight points share a parameter.
    """
    pre: dict[str, list[tuple[int, nn.Module]]] = {}
    post: dict[str, nn.Module] = {}
    weights: dict[str, nn.Module] = {}
    weight_owner: dict[str, str] = {}
    hooked: dict[str, str] = {}
    for point, quantizer in quantizers:
        node = graph.node(point.target_node).name
        if point.kind == "weight":
            if point.weight_param is None:
                raise ValueError(f"weight quantizer {point.id!r} has no weight_param; placement must set it")
            if point.weight_param in weight_owner:
                raise ValueError(
                    f"weight quantizers {weight_owner[point.weight_param]!r} and {point.id!r} both quantize "
                    f"parameter {point.weight_param!r}; a shared weight is quantized once, so keep one"
                )
            weight_owner[point.weight_param] = point.id
            weights[point.weight_param] = quantizer
            continue
        hooked.setdefault(node, point.id)
        if point.input_port is None:
            post[node] = quantizer
        else:
            pre.setdefault(node, []).append((point.input_port, quantizer))
    return HookPlan(
        pre={k: tuple(v) for k, v in pre.items()},
        post=post,
        weights=weights,
        graph_names=frozenset(n.name for n in graph.nodes),
        hooked=hooked,
    )
