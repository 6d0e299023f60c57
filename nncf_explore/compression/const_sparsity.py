"""Constant sparsity (NNCF's ``const_sparsity``): keep the zeros a model already has while fine-tuning.

The masks are taken once, from the weights' zeros when the algorithm is built
(a model sparsified elsewhere; a ``compression_state`` restore then loads the
saved masks with the state dict).  They never change, and the masked weight is
what the weight quantizer sees, so a zero weight stays zero however it is trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nncf_explore.compression.controller import ModelController
from nncf_explore.compression.interface import SPARSITY_MASKS, compression_interface
from nncf_explore.compression.quantization.scope_checks import section_path
from nncf_explore.compression.sparsity import SparsityMasks, install_masks, section_weights
from nncf_explore.compression.statistics import NNCFStatistics, SparsityStatistics
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs

if TYPE_CHECKING:
    from nncf_explore.compression.algorithms import BuildContext

ALGORITHM = "const_sparsity"


class ConstSparsityController(ModelController):
    """Fixed masks from the zeros of the weights in scope.

    Args:
        model: The compressed model.
        example_inputs: The tracing inputs.
        section: The config's ``const_sparsity`` section (scopes only).
        graph: The traced graph.
        where: The section's JSON path, for messages.
    """

    name = ALGORITHM

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Args, Kwargs],
        section: Mapping[str, Any],
        graph: Graph,
        where: str = "compression",
    ) -> None:
        super().__init__(model, example_inputs)
        self.weights = section_weights(graph, section)
        params = {name: model.get_parameter(name) for name in self.weights}
        masks = SparsityMasks(params, ALGORITHM)
        with torch.no_grad():
            masks.update({name: (p != 0).to(p.dtype) for name, p in params.items()})
        install_masks(model, masks, where)

    @property
    def masks(self) -> SparsityMasks:
        """The mask buffers."""
        masks: SparsityMasks = getattr(compression_interface(self.model), SPARSITY_MASKS)
        return masks

    @property
    def sparsity_level(self) -> float:
        """Fraction of masked elements over all weights in scope."""
        masks = [self.masks.mask(name) for name in self.weights]
        total = sum(m.numel() for m in masks)
        return float(1.0 - sum(float(m.sum()) for m in masks) / max(total, 1))

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        levels = {name: self.masks.level(name) for name in self.weights}
        level = self.sparsity_level
        stats = SparsityStatistics(levels, level, level, algorithm="const sparsity")
        return NNCFStatistics(const_sparsity=stats)

    def builder_state(self) -> dict[str, Any]:
        return {self.name: {"weights": sorted(self.weights)}}


def build(ctx: BuildContext) -> ConstSparsityController:
    """The ``const_sparsity`` builder of :data:`~nncf_explore.compression.algorithms.BUILDERS`."""
    where = section_path(ctx.config, ctx.section)
    return ConstSparsityController(ctx.compressed, ctx.example_inputs, ctx.section, ctx.graph, where)
