"""The compression algorithms other than quantization, by NNCF name: one builder each.

``create_compressed_model`` builds quantization itself (placement, range init and
HAWQ need the trace first) and every other section of the ``compression`` list
through this table, in the list's order.  A builder gets everything an algorithm
may need and returns its controller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nncf_explore.compression.controller import ModelController
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs


@dataclass(frozen=True)
class BuildContext:
    """What an algorithm builder receives.

    Attributes:
        compressed: The compressed model (a copy of the user's model, with ``_nncf``).
        original: The user's FP32 model, untouched (a knowledge-distillation teacher copies it).
        config: The whole config (registered init args included).
        section: This algorithm's section of the ``compression`` list.
        example_inputs: The tracing inputs.
        graph: The traced graph.
        restoring: Whether a ``compression_state`` is being restored (skip initialisation then).
    """

    compressed: nn.Module
    original: nn.Module
    config: NNCFConfig
    section: Mapping[str, Any]
    example_inputs: tuple[Args, Kwargs]
    graph: Graph
    restoring: bool


Builder = Callable[[BuildContext], ModelController]


def _magnitude_sparsity(ctx: BuildContext) -> ModelController:
    from nncf_explore.compression.sparsity_controller import MagnitudeSparsityController

    return MagnitudeSparsityController(ctx.compressed, ctx.example_inputs, ctx.section, ctx.graph)


BUILDERS: Mapping[str, Builder] = {
    "magnitude_sparsity": _magnitude_sparsity,
}
"""NNCF algorithm name -> builder; quantization is built by ``create_compressed_model`` itself."""
