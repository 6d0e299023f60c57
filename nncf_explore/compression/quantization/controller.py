"""The quantization controller: NNCF's quantization controller members, plus live setup changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nncf_explore.compression.controller import CompressionStage, ModelController
from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.model import nncf_interface
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.quantization.settings import QuantizationSettings
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.weights import WEIGHTED_CATEGORIES, weight_skip_reason
from nncf_explore.compression.schedulers import StagedQuantizationScheduler
from nncf_explore.compression.statistics import NNCFStatistics, QuantizationStatistics, UnquantizedWeight
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.ops import OpCategory

BUILDER_STATE_VERSION = 1


@dataclass(frozen=True, eq=False)
class WeightQuantizerInfo:
    """A weight quantizer, as NNCF's ``ctrl.weight_quantizers`` values describe it.

    Attributes:
        quantizer_module_ref: The quantizer module (``info.quantizer_module_ref.num_bits``).
        quantized_module: The module that owns the quantized weight.
        affected_insertions: Where it acts: its quantization point (NNCF: target points).
    """

    quantizer_module_ref: BaseQuantizer
    quantized_module: nn.Module
    affected_insertions: tuple[QuantizationPoint, ...]


@dataclass(frozen=True, eq=False)
class NonWeightQuantizerInfo:
    """An activation quantizer, as NNCF's ``ctrl.non_weight_quantizers`` values describe it.

    Attributes:
        quantizer_module_ref: The quantizer module, shared by the members of a unified-scale group.
        affected_insertions: Every point the module quantizes (several for a unified group).
    """

    quantizer_module_ref: BaseQuantizer
    affected_insertions: tuple[QuantizationPoint, ...]


class QuantizationController(ModelController):
    """Controls the quantizers of a compressed model.

    Args:
        model: The compressed model.
        example_inputs: The tracing inputs.
        settings: The resolved quantization settings.
        section: The config's quantization section (for range init and ``params``).
        init_loader: The range-init loader registered with ``register_default_init_args``, if any.
    """

    name = "quantization"

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Args, Kwargs],
        settings: QuantizationSettings,
        section: Mapping[str, Any],
        init_loader: Iterable[Any] | None = None,
    ) -> None:
        super().__init__(model, example_inputs)
        self.settings = settings
        self.section = section
        self.init_loader = init_loader
        params = section.get("params")
        if params is not None:
            self.scheduler = StagedQuantizationScheduler(
                self._set_stage,
                activations_start_epoch=int(params.get("activations_quant_start_epoch", 1)),
                weights_start_epoch=int(params.get("weights_quant_start_epoch", 1)),
                on_enable=self.init_range if init_loader is not None else None,
            )

    # -- quantizers ---------------------------------------------------------------------------
    @property
    def setup(self) -> QuantizerSetup:
        """The current quantizer setup."""
        return compression_interface(self.model).setup

    @property
    def weight_quantizers(self) -> dict[str, WeightQuantizerInfo]:
        """Weight quantizers by quantizer id, as NNCF's info objects (``.quantizer_module_ref``)."""
        interface = compression_interface(self.model)
        return {
            p.id: WeightQuantizerInfo(
                interface.quantizer(p.id), self.model.get_submodule(_owner(p.weight_param)), (p,)
            )
            for p in self.setup.weights
        }

    @property
    def non_weight_quantizers(self) -> dict[str, NonWeightQuantizerInfo]:
        """Activation quantizers by quantizer id, as NNCF's info objects (``.quantizer_module_ref``).

        The members of a unified-scale group share one module, and each lists the whole group.
        """
        interface, setup = compression_interface(self.model), self.setup
        return {
            p.id: NonWeightQuantizerInfo(interface.quantizer(p.id), tuple(setup.group_members(p.id)))
            for p in setup.activations
        }

    @property
    def all_quantizations(self) -> dict[str, BaseQuantizer]:
        """Every quantizer module by id (NNCF's ``all_quantizations``: modules, not info objects)."""
        return nncf_interface(self.model).quantizers()

    def quantizer(self, qid: str) -> BaseQuantizer:
        """The module of quantizer ``qid``; a :class:`~nncf_explore.errors.ConfigError` suggests ids."""
        self.setup.get(qid)  # names the closest ids when qid is unknown
        return nncf_interface(self.model).get_quantizer(qid)

    def _modules(self, weights: bool) -> list[BaseQuantizer]:
        interface = compression_interface(self.model)
        return [
            interface.quantizer(p.id) for p in (self.setup.weights if weights else self.setup.activations)
        ]

    def _switch(self, quantizers: Iterable[BaseQuantizer], on: bool) -> None:
        for quantizer in {id(q): q for q in quantizers}.values():
            if on:
                quantizer.enable()
                quantizer.enable_gradients()
            else:
                quantizer.disable()
                quantizer.disable_gradients()
        compression_interface(self.model).weight_cache.clear()

    def enable_activation_quantization(self) -> None:
        """Switch activation quantizers on (and unfreeze their parameters)."""
        self._switch(self._modules(weights=False), True)

    def disable_activation_quantization(self) -> None:
        """Switch activation quantizers off; their parameters are frozen (NNCF semantics)."""
        self._switch(self._modules(weights=False), False)

    def enable_weight_quantization(self) -> None:
        """Switch weight quantizers on."""
        self._switch(self._modules(weights=True), True)

    def disable_weight_quantization(self) -> None:
        """Switch weight quantizers off; their parameters are frozen."""
        self._switch(self._modules(weights=True), False)

    def _set_stage(self, activations: bool, weights: bool) -> None:
        self._switch(self._modules(weights=False), activations)
        self._switch(self._modules(weights=True), weights)

    def init_range(self, loader: Iterable[Any] | None = None) -> None:
        """Re-run range initialisation (quantizers off while statistics are collected)."""
        nncf_interface(self.model).init_range(
            loader if loader is not None else self.init_loader,
            self.section.get("initializer", {}).get("range"),
        )

    def apply_setup(self, setup: QuantizerSetup) -> list[str]:
        """Switch to another setup without re-tracing; changed quantizers reuse range statistics."""
        rebuilt: list[str] = nncf_interface(self.model).apply_setup(setup)
        return rebuilt

    def distributed(self) -> None:
        """Broadcast every quantizer's parameters from rank 0 (call after wrapping in DDP)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        quantizers = self.all_quantizations
        for qid in sorted(quantizers):
            quantizers[qid].broadcast_from(0)
        compression_interface(self.model).weight_cache.clear()

    # -- NNCF reporting -------------------------------------------------------------------------
    def compression_stage(self) -> CompressionStage:
        if isinstance(self.scheduler, StagedQuantizationScheduler):
            stage = self.scheduler.stage
            if stage == (False, False):
                return CompressionStage.UNCOMPRESSED
            if stage != (True, True):
                return CompressionStage.PARTIALLY_COMPRESSED
        return CompressionStage.FULLY_COMPRESSED

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        return NNCFStatistics(quantization=self.quantization_statistics())

    def quantization_statistics(self) -> QuantizationStatistics:
        """Counts, bit widths, memory, and every weighted op left in floating point with the reason."""
        setup, graph = self.setup, nncf_interface(self.model).get_original_graph()
        quantizers = self.all_quantizations
        unquantized = unquantized_weights(graph, setup, self.settings)
        return QuantizationStatistics.from_setup(
            setup,
            signed={qid: q.signed for qid, q in quantizers.items()},
            enabled={qid: q.is_enabled for qid, q in quantizers.items()},
            potential_weights=len({p.weight_param for p in setup.weights}) + len(unquantized),
            unquantized_weights=unquantized,
            weight_bytes=weight_memory(self.model, setup),
            notes=("BatchNorm/LayerNorm/GroupNorm weights are not quantized (as in NNCF).",),
        )

    def builder_state(self) -> dict[str, Any]:
        return {self.name: {"quantizer_setup": self.setup.to_dict(), "version": BUILDER_STATE_VERSION}}


def _owner(weight_param: str | None) -> str:
    """The module path of a parameter name (``""`` for the root's own parameter)."""
    assert weight_param is not None, "weight points always name their parameter"
    return weight_param.rpartition(".")[0]


def _weight_matrices(node: Node) -> list[str]:
    if node.category is OpCategory.RECURRENT:
        # weight_ih/weight_hh of every layer; biases are not quantized anywhere, so not listed
        return [p for p in node.params.values() if p.rsplit(".", 1)[-1].startswith("weight")]
    if node.weight is not None and node.category in WEIGHTED_CATEGORIES:
        return [node.weight]
    return []


def unquantized_weights(
    graph: Graph, setup: QuantizerSetup, settings: QuantizationSettings
) -> list[UnquantizedWeight]:
    """Every weight a weighted op uses that has no weight quantizer, once, in graph order, with the reason."""
    quantized = {p.weight_param for p in setup.weights}
    found: list[UnquantizedWeight] = []
    seen: set[str] = set()
    for node in graph.nodes:
        for weight in _weight_matrices(node):
            if weight in seen or weight in quantized:
                continue
            seen.add(weight)
            reason = weight_skip_reason(node, settings) or "turned off (ignored_scopes or the Explorer)"
            found.append(UnquantizedWeight(node.name, weight, reason))
    return found


def weight_memory(model: nn.Module, setup: QuantizerSetup) -> tuple[int, int]:
    """(FP32 bytes of all parameters, bytes with quantized weights stored at their bit widths).

    Quantizer parameters are not counted; half-range (7-bit) weights count as 8-bit.
    """
    bits = {p.weight_param: p.spec.bits for p in setup.weights}
    fp32 = quantized = 0
    for name, param in model.named_parameters():
        if name.startswith("_nncf."):
            continue
        fp32 += param.numel() * 4
        quantized += (param.numel() * bits[name] + 7) // 8 if name in bits else param.numel() * 4
    return fp32, quantized
