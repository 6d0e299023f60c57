"""The magnitude sparsity controller (NNCF's ``magnitude_sparsity`` algorithm)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nncf_explore.compression.controller import CompressionStage, ModelController
from nncf_explore.compression.interface import SPARSITY_MASKS, compression_interface
from nncf_explore.compression.schedulers import SparsityScheduler
from nncf_explore.compression.sparsity import (
    SparsityMasks,
    compute_masks,
    install_masks,
    section_weights,
)
from nncf_explore.compression.statistics import NNCFStatistics, SparsityStatistics
from nncf_explore.config.sections import resolve
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs

ALGORITHM = "magnitude_sparsity"


class MagnitudeSparsityController(ModelController):
    """Prunes the smallest weights to the scheduled level; masks live in ``_nncf.sparsity_masks``.

    Args:
        model: The compressed model.
        example_inputs: The tracing inputs.
        section: The config's ``magnitude_sparsity`` section.
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

        def get(path: str) -> Any:
            return resolve(section, path, algorithm=ALGORITHM)

        self.weights = section_weights(graph, section)
        self.importance = str(get("params.weight_importance"))
        self.mode = str(get("params.sparsity_level_setting_mode"))
        params = {name: model.get_parameter(name) for name in self.weights}
        install_masks(model, SparsityMasks(params, ALGORITHM), where)
        self.schedule = SparsityScheduler.from_section(
            self.set_sparsity_level, get, section.get("params", {})
        )
        self.scheduler = self.schedule

    @property
    def target_level(self) -> float:
        """The level the schedule ends at (``sparsity_target``; the last ``multistep`` level)."""
        return self.schedule.target

    @property
    def masks(self) -> SparsityMasks:
        """The mask buffers."""
        masks: SparsityMasks = getattr(compression_interface(self.model), SPARSITY_MASKS)
        return masks

    def set_sparsity_level(self, level: float) -> None:
        """Recompute the masks for ``level`` from the current weight magnitudes."""
        with torch.no_grad():
            params = {name: self.model.get_parameter(name) for name in self.weights}
            self.masks.update(compute_masks(params, level, self.importance, self.mode))
        compression_interface(self.model).weight_cache.clear()

    @property
    def sparsity_level(self) -> float:
        """Fraction of pruned elements over all sparsified weights."""
        masks = [self.masks.mask(name) for name in self.weights]
        total = sum(m.numel() for m in masks)
        return float(1.0 - sum(float(m.sum()) for m in masks) / max(total, 1))

    def compression_stage(self) -> CompressionStage:
        level = self.sparsity_level
        if level <= 0.0:
            return CompressionStage.UNCOMPRESSED
        if level + 1e-3 >= self.target_level:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        levels = {name: self.masks.level(name) for name in self.weights}
        return NNCFStatistics(
            magnitude_sparsity=SparsityStatistics(levels, self.target_level, self.sparsity_level)
        )

    def builder_state(self) -> dict[str, Any]:
        return {self.name: {"weights": sorted(self.weights)}}
