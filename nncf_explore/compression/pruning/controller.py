"""The filter pruning controller (NNCF's ``filter_pruning`` algorithm)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.controller import CompressionStage, ModelController
from nncf_explore.compression.interface import PRUNING_MASKS, compression_interface
from nncf_explore.compression.pruning.groups import PruningRules, analyse_channels
from nncf_explore.compression.pruning.masks import PruningMasks, masked_params
from nncf_explore.compression.pruning.ranking import (
    flops_and_params,
    group_importance,
    keep_flags,
    level_for_flops,
)
from nncf_explore.compression.pruning.schedule import PruningScheduler
from nncf_explore.compression.pruning.statistics import PrunedLayer, PruningStatistics
from nncf_explore.compression.statistics import NNCFStatistics
from nncf_explore.config.sections import resolve
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.scope import matches_any

ALGORITHM = "filter_pruning"
_LEGR_ONLY = ("legr_params", "save_ranking_coeffs_path", "load_ranking_coeffs_path")


def _check_ranking(section: Mapping[str, Any], where: str) -> None:
    params = section.get("params", {})
    if params.get("interlayer_ranking_type") == "learned_ranking":
        raise ConfigError(
            f"{where}.params.interlayer_ranking_type: 'learned_ranking' (LeGR) is not implemented by "
            "nncf_explore; remove it or set 'unweighted_ranking' (the default), and prune with "
            "'all_weights': true for a global ranking across layers, or with 'pruning_flops_target' "
            "to reach a FLOPs budget"
        )
    for key in _LEGR_ONLY:
        if key in params:
            warnings.warn(
                f"{where}.params.{key} only applies to interlayer_ranking_type 'learned_ranking' (LeGR), "
                "which nncf_explore does not implement; it is ignored (as NNCF ignores it with "
                "'unweighted_ranking'); remove it from the config",
                UserWarning,
                stacklevel=4,
            )


def _scopes(value: Any) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


class FilterPruningController(ModelController):
    """Masks the least important filters at the scheduled level; ``strip()`` then removes them.

    Args:
        model: The compressed model.
        example_inputs: The tracing inputs.
        section: The config's ``filter_pruning`` section.
        graph: The traced graph.
        restoring: Whether a ``compression_state`` is restored (the masks then come with the state dict).
        where: JSON path of the section, for error messages.
    """

    name = ALGORITHM

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Args, Kwargs],
        section: Mapping[str, Any],
        graph: Graph,
        *,
        restoring: bool = False,
        where: str = "compression",
    ) -> None:
        super().__init__(model, example_inputs)
        _check_ranking(section, where)

        def get(path: str) -> Any:
            return resolve(section, path, algorithm=ALGORITHM)

        self.graph = graph
        self.analysis = analyse_channels(graph, self._rules(section, get))
        self.prunable = [g.id for g in self.analysis.groups if g.prunable]
        self.importance = str(get("params.filter_importance"))
        self.all_weights = bool(get("params.all_weights"))
        flops_target = get("params.pruning_flops_target")
        self.target_is_flops = flops_target is not None
        params = masked_params(graph, self.analysis, self.prunable, bool(get("params.prune_batch_norms")))
        channels = {gid: self.analysis.groups[gid].channels for gid in self.prunable}
        interface = compression_interface(model)
        interface.add_module(PRUNING_MASKS, PruningMasks(channels, params, self.analysis))
        interface.invalidate_plan()
        self.full = flops_and_params(graph, self.analysis, {})
        self.schedule = PruningScheduler(
            self.set_pruning_level,
            schedule=str(get("params.schedule")),
            initial=float(get("pruning_init")),
            target=float(flops_target if self.target_is_flops else get("params.pruning_target")),
            steps=int(get("params.pruning_steps")),
            init_steps=int(get("params.num_init_steps")),
        )
        self.scheduler = self.schedule
        if not restoring:
            self.set_pruning_level(self.schedule.current_level, False)

    @staticmethod
    def _rules(section: Mapping[str, Any], get: Any) -> PruningRules:
        ignored = _scopes(section.get("ignored_scopes")) or []
        target = _scopes(section.get("target_scopes"))

        def excluded(name: str) -> bool:
            return matches_any(ignored, name) or (target is not None and not matches_any(target, name))

        return PruningRules(
            prune_first_conv=bool(get("params.prune_first_conv")),
            prune_downsample_convs=bool(get("params.prune_downsample_convs")),
            excluded=excluded,
        )

    @property
    def masks(self) -> PruningMasks:
        """The keep-flag buffers."""
        masks: PruningMasks = getattr(compression_interface(self.model), PRUNING_MASKS)
        return masks

    def _weights(self) -> dict[str, Tensor]:
        weights: dict[str, Tensor] = {}
        for gid in self.prunable:
            for name in self.analysis.groups[gid].sources:
                param = self.graph.node(name).weight
                if param is not None:
                    weights[name] = self.model.get_parameter(param)
        return weights

    def scores(self) -> dict[int, Tensor]:
        """Filter importance of every prunable group, from the current weights."""
        with torch.no_grad():
            weights = self._weights()
            return {
                gid: group_importance(self.analysis.groups[gid], weights, self.importance)
                for gid in self.prunable
            }

    def flags_at(self, level: float, scores: dict[int, Tensor] | None = None) -> dict[int, list[bool]]:
        """Keep flags of every prunable group at filter pruning ``level``."""
        return keep_flags(self.scores() if scores is None else scores, level, self.all_weights)

    def set_pruning_level(self, level: float, frozen: bool = False) -> None:
        """Re-rank the filters and mask them at ``level`` (a FLOPs share with ``pruning_flops_target``)."""
        scores = self.scores()
        if self.target_is_flops:
            level = level_for_flops(
                lambda lv: flops_and_params(self.graph, self.analysis, self.flags_at(lv, scores))[0],
                self.full[0],
                level,
            )
        self.masks.set_flags(self.flags_at(level, scores))
        compression_interface(self.model).weight_cache.clear()

    @property
    def pruning_level(self) -> float:
        """Share of the prunable filters (over every prunable convolution) that are masked."""
        flags = self.masks.flags()
        total = kept = 0
        for gid, keep in flags.items():
            members = len(self.analysis.groups[gid].sources)
            total += members * len(keep)
            kept += members * sum(keep)
        return 1.0 - kept / max(total, 1)

    def compression_stage(self) -> CompressionStage:
        if self.pruning_level <= 0.0:
            return CompressionStage.UNCOMPRESSED
        if self.schedule.frozen or self.schedule.current_level >= self.schedule.target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        flags = self.masks.flags()
        layers = []
        for gid in self.prunable:
            keep = flags[gid]
            for name in self.analysis.groups[gid].sources:
                shape = tuple(int(s) for s in self.graph.node(name).attrs.get("weight_shape", ()))
                layers.append(PrunedLayer(name, shape, (len(keep),), 1.0 - sum(keep) / len(keep)))
        after = flops_and_params(self.graph, self.analysis, flags)
        stats = PruningStatistics(
            tuple(layers),
            (self.full[0], after[0]),
            (self.full[1], after[1]),
            self.pruning_level,
            self.schedule.target,
            self.target_is_flops,
        )
        return NNCFStatistics(filter_pruning=stats)

    def builder_state(self) -> dict[str, Any]:
        groups = [list(self.analysis.groups[gid].sources) for gid in self.prunable]
        return {self.name: {"pruned_groups": groups}}
