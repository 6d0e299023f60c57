"""``model._nncf``: the module that holds a compressed model's quantizers and run-time state.

Activation quantizers sit in ``external_quantizers`` under NNCF's keys (the
quantizer id; a unified group's ids joined by ``;``), so their state-dict keys
``_nncf.external_quantizers.<qid>.scale`` match NNCF checkpoints.  Weight
quantizers sit in ``weight_quantizers`` under ``<node>|WEIGHT``; NNCF kept them
inside the layer as ``<module>.pre_ops.0.op``
(:meth:`~nncf_explore.compression.model.NNCFInterface.nncf_key_prefixes` maps the two).
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Sequence
from typing import Any, cast

from torch import nn

from nncf_explore.compression.divergence import DivergenceReporter
from nncf_explore.compression.hook_plan import HookPlan, build_hook_plan
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.quantization.range_settings import RangeConfig, RangeStatistics, point_groups
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.replay import Replay
from nncf_explore.compression.runtime import INTERFACE_NAME, Forward, HookRunner
from nncf_explore.compression.weight_cache import WeightCache, dependencies
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper

SPARSITY_MASKS = "sparsity_masks"
"""Submodule of the interface holding magnitude-sparsity masks, when that algorithm runs."""
PRUNING_MASKS = "pruning_masks"
"""Submodule of the interface holding filter-pruning masks, when that algorithm runs."""

Slot = tuple[str, str]
"""``(ModuleDict name, key)`` of a quantizer inside the interface."""
_TRANSIENT = ("_plan", "_local", "weight_cache", "replay")


class MaskedWeight(nn.Module):
    """``quantizer(weight * mask)``: sparsity first, then quantization, as NNCF composes them."""

    masks: Any
    param: str
    quantizer: nn.Module | None

    def __init__(self, masks: Any, param: str, quantizer: nn.Module | None) -> None:
        super().__init__()
        # Plain attributes: the plan holds this object, the model must not see it as a submodule.
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "param", param)
        object.__setattr__(self, "quantizer", quantizer)

    def cache_tensors(self) -> list[Any]:
        """What the masked weight depends on besides the weight (for the eval-mode weight cache)."""
        inner = [] if self.quantizer is None else dependencies(self.quantizer)
        return [*self.masks.parameters(), *self.masks.buffers(), *inner]

    def forward(self, weight: Any) -> Any:
        masked = weight * self.masks.mask(self.param)
        return masked if self.quantizer is None else self.quantizer(masked)


def with_weight_masks(plan: HookPlan, masks: Any) -> HookPlan:
    """``plan`` with every masked parameter multiplied by its mask before any weight quantizer."""
    weights = dict(plan.weights)
    for param in masks.names():
        weights[param] = MaskedWeight(masks, param, weights.get(param))
    return dataclasses.replace(plan, weights=weights)


def quantizer_slot(points: Sequence[QuantizationPoint]) -> Slot:
    """Where the quantizer serving ``points`` lives: NNCF's key, ids joined by ``;`` for a unified group.

    Examples:
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> a = QuantizationPoint("activation", "N/relu_0", None, QuantizerSpec(), unified_group=0)
        >>> b = QuantizationPoint("activation", "N/relu_1", None, QuantizerSpec(), unified_group=0)
        >>> quantizer_slot([b, a])
        ('external_quantizers', 'N/relu_0|OUTPUT;N/relu_1|OUTPUT')
    """
    if points[0].kind == "weight":
        return "weight_quantizers", points[0].id
    return "external_quantizers", ";".join(sorted(p.id for p in points))


class CompressionInterface(nn.Module):
    """``model._nncf``: the quantizer modules, the graph and setup they implement, and run-time state.

    Attributes:
        external_quantizers: Activation quantizers by quantizer id (NNCF's name and keys).
        weight_quantizers: Weight quantizers by ``<node>|WEIGHT`` id.
        graph: The traced graph the hooks are addressed in.
        setup: The quantizer setup the modules implement.
        original_forward: The model class's unbound forward.
        range_statistics: Cache of collected activation statistics (see :func:`apply_setup`).
        range_config: ``initializer.range`` used for range init, reused for re-derivations.
    """

    def __init__(
        self,
        graph: Graph,
        original_forward: Forward,
        wrap_inputs_fn: InputsWrapper | None = None,
        wrap_outputs_fn: OutputsWrapper | None = None,
    ) -> None:
        super().__init__()
        self.external_quantizers = nn.ModuleDict()
        self.weight_quantizers = nn.ModuleDict()
        self.graph = graph
        self.setup = QuantizerSetup()
        self.original_forward = original_forward
        self.wrap_inputs_fn = wrap_inputs_fn
        self.wrap_outputs_fn = wrap_outputs_fn
        self.range_statistics = RangeStatistics()
        self.range_config: RangeConfig | None = None
        self.reporter = DivergenceReporter()
        self._slots: dict[str, Slot] = {}
        self._reset_transient(WeightCache())

    def _reset_transient(self, cache: WeightCache, *, replay: bool = False) -> None:
        # Runners and the hook plan hold ids and module references of one model
        # instance; copies rebuild them lazily instead of inheriting stale ones.
        self.weight_cache = cache
        self.replay = Replay(enabled=replay)
        self._plan: HookPlan | None = None
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[no-untyped-call]
        for name in _TRANSIENT:
            state.pop(name, None)
        state["_cache_enabled"] = self.weight_cache.enabled
        state["_replay_enabled"] = self.replay.enabled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        enabled = state.pop("_cache_enabled", True)
        replay = state.pop("_replay_enabled", False)
        super().__setstate__(state)  # type: ignore[no-untyped-call]
        self._reset_transient(WeightCache(enabled=enabled), replay=replay)

    def forward(self, x: Any) -> Any:
        """The identity: an ``nn.Sequential`` root calls every child, this module included."""
        return x

    # -- quantizers ------------------------------------------------------------------------------
    def quantizer(self, qid: str) -> BaseQuantizer:
        """The module serving quantizer ``qid`` (a unified group's members share one)."""
        if qid not in self._slots:
            self.setup.get(qid)  # raises with a suggestion
        dict_name, key = self._slots[qid]
        return cast(BaseQuantizer, getattr(self, dict_name)[key])

    def groups(self) -> list[tuple[list[QuantizationPoint], BaseQuantizer]]:
        """``(points served, quantizer)`` for every quantizer module."""
        return [(group, self.quantizer(group[0].id)) for group in point_groups(self.setup)]

    def install(self, setup: QuantizerSetup, quantizers: dict[Slot, BaseQuantizer]) -> None:
        """Make ``quantizers`` (by slot, one per group of ``setup``) the model's quantizers.

        The hook plan is built first, so a setup naming unknown nodes raises
        :class:`~nncf_explore.errors.GraphError` and leaves the model as it was.
        """
        slots = {p.id: quantizer_slot(group) for group in point_groups(setup) for p in group}
        plan = build_hook_plan(self.graph, ((p, quantizers[slots[p.id]]) for p in setup))
        for dict_name in ("external_quantizers", "weight_quantizers"):
            items = sorted((key, q) for (name, key), q in quantizers.items() if name == dict_name)
            setattr(self, dict_name, nn.ModuleDict(dict(items)))
        self._slots = slots
        self.setup = setup
        self._plan = plan
        self.weight_cache.clear()

    def plan(self) -> HookPlan:
        """The hook plan of the current setup (built on first use), sparsity masks included."""
        if self._plan is None:
            plan = build_hook_plan(self.graph, ((p, self.quantizer(p.id)) for p in self.setup))
            for key in (SPARSITY_MASKS, PRUNING_MASKS):
                masks = self._modules.get(key)
                if masks is not None:
                    plan = with_weight_masks(plan, masks)
            self._plan = plan
        return self._plan

    def invalidate_plan(self) -> None:
        """Rebuild the hook plan on the next forward (after adding or removing weight transforms)."""
        self._plan = None
        self.weight_cache.clear()

    # -- running -----------------------------------------------------------------------------------
    def run(self, model: nn.Module, args: Args, kwargs: Kwargs) -> Any:
        """Run ``model``'s original forward with the quantizers (called by the instance forward)."""
        runner: HookRunner | None = getattr(self._local, "runner", None)
        if runner is None or runner.model is not model or runner.running:
            fresh = HookRunner(
                model, self.wrap_inputs_fn, self.wrap_outputs_fn, self.reporter, self.weight_cache
            )
            if runner is None or not runner.running:
                self._local.runner = fresh
            runner = fresh
        forward = self.original_forward.__get__(model)
        plan = self.plan()
        if self.replay.enabled:
            replayed, output = self.replay.run(runner, forward, plan, args, kwargs)
            if replayed:
                return output
        return runner.run(forward, plan, args, kwargs)


class CompressedForward:
    """The compressed model's instance-level ``forward``: its class forward, run with the quantizers.

    A small object rather than a closure or a bound method of a local function:
    it reaches the model through an attribute, so ``copy.deepcopy`` and pickling
    (``torch.save(model)``) rebind it to the copy, and it reports the class
    forward's signature, so ``inspect.signature(model.forward)`` is unchanged.
    """

    def __init__(self, model: nn.Module, original: Forward) -> None:
        self.model = model
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        interface = cast(CompressionInterface, self.model._modules[INTERFACE_NAME])
        return interface.run(self.model, args, kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.original.__get__(self.model))

    @property
    def __name__(self) -> str:
        return str(getattr(self.original, "__name__", "forward"))

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        doc = getattr(self.original, "__doc__", None)
        return doc if isinstance(doc, str) else None

    def __repr__(self) -> str:
        return f"<compressed forward of {type(self.model).__name__}>"


def is_compressed(model: nn.Module) -> bool:
    """Whether ``model`` came from :func:`compress_model`."""
    return isinstance(model._modules.get(INTERFACE_NAME), CompressionInterface)


def compression_interface(model: nn.Module) -> CompressionInterface:
    """``model._nncf``; a ValueError naming the fix if ``model`` is not compressed."""
    interface = model._modules.get(INTERFACE_NAME)
    if not isinstance(interface, CompressionInterface):
        raise ValueError(
            f"{type(model).__name__} is not a compressed model; use the model returned by "
            "create_compressed_model (or compress_model), not the original one (and the model itself, "
            "wrapper.module, not a DistributedDataParallel wrapper)"
        )
    return interface
