"""The compressed model: a copy of the user's model whose forward runs quantizers at traced addresses.

:func:`compress_model` never touches the user's model.  It returns a
``copy.deepcopy`` of it (same class, so ``isinstance`` checks and submodule
attributes keep working) with three additions:

* a submodule ``_nncf`` (:class:`~nncf_explore.compression.interface.CompressionInterface`)
  holding the quantizers, so ``state_dict()`` is the original keys plus ``_nncf.…``
  keys, and ``to()``, ``train()``, optimizers, ``deepcopy`` and
  DistributedDataParallel treat them as ordinary parameters and buffers;
* an instance-level ``forward`` with the class forward's signature that runs
  the class forward under a :class:`~nncf_explore.compression.runtime.HookRunner`;
* a plain attribute ``nncf`` (:class:`NNCFInterface`), NNCF's ``model.nncf``.

Caveat for an ``nn.Sequential`` root: its forward calls every child, so the
interface module's forward is the identity, and ``len(model)`` and ``model[-1]``
see it as the last child.
"""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Iterable
from typing import Any

from torch import nn

from nncf_explore.compression.init_data import model_device
from nncf_explore.compression.interface import (
    CompressedForward,
    CompressionInterface,
    Slot,
    compression_interface,
    is_compressed,
    quantizer_slot,
)
from nncf_explore.compression.quantization.quantizers import BaseQuantizer, make_quantizer
from nncf_explore.compression.quantization.range_settings import (
    RangeConfig,
    RangeStatistics,
    point_groups,
    resolve_range_settings,
)
from nncf_explore.compression.quantization.range_stats import (
    carry_over_range,
    init_from_statistics,
    initialize_ranges,
    warn_uninitialized,
)
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.replay import ReplayStatus
from nncf_explore.compression.runtime import INTERFACE_NAME, Forward
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.scope import normalize_node_name
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper


def _build_quantizers(setup: QuantizerSetup) -> dict[Slot, BaseQuantizer]:
    return {
        quantizer_slot(group): make_quantizer(group[0].spec, group[0].scale_shape, group[0].channel_axis)
        for group in point_groups(setup)
    }


def _unbound_forward(model: nn.Module) -> Forward:
    own = model.__dict__.get("forward")
    if own is None:
        return type(model).forward
    if isinstance(own, types.MethodType) and own.__self__ is model:
        func: Forward = own.__func__
        return func
    raise TypeError(
        f"{type(model).__name__} has an instance attribute 'forward' that is not a method of the model; "
        "compress_model replaces forward on its copy, so define forward in the class or bind it as a method"
    )


def compress_model(
    model: nn.Module,
    graph: Graph,
    setup: QuantizerSetup,
    *,
    wrap_inputs_fn: InputsWrapper | None = None,
    wrap_outputs_fn: OutputsWrapper | None = None,
) -> nn.Module:
    """A quantized copy of ``model``; ``model`` itself is left exactly as it was.

    Quantizers start with NNCF's initial ranges (symmetric scale 1, asymmetric
    ``[0, 1]``); range initialisation is a separate step (``model.nncf.init_range``).

    Args:
        model: The FP32 model that ``graph`` was traced from.
        graph: Its traced graph.
        setup: The quantizers to insert (node names as in ``graph``).
        wrap_inputs_fn: The function given to the tracer, if any.
        wrap_outputs_fn: Likewise.

    Returns:
        The compressed model: same class, ``_nncf`` submodule, ``nncf`` interface.

    Raises:
        ValueError: ``model`` is already compressed.
        TypeError: ``model`` cannot be deep-copied.
        GraphError: A point names a node missing from ``graph``.

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> from nncf_explore.compression.quantization.build import build_quantizer_setup
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
        >>> g = trace_model(net, {"sample_size": [1, 4]})
        >>> setup = build_quantizer_setup(g, {"compression": {"algorithm": "quantization"}})
        >>> q = compress_model(net, g, setup)
        >>> type(q) is type(net), sorted(q.nncf.quantizers())
        (True, ['/nncf_model_input_0|OUTPUT', 'Sequential/Linear[0]/linear_0|WEIGHT'])
    """
    if is_compressed(model):
        raise ValueError(
            "this model is already compressed; pass the original model again, or change its quantizers "
            "with model.nncf.apply_setup(new_setup)"
        )
    original = _unbound_forward(model)
    try:
        compressed = copy.deepcopy(model)
    except Exception as exc:
        raise TypeError(
            f"compress_model copies {type(model).__name__} with copy.deepcopy so the original stays usable, "
            f"and the copy failed: {type(exc).__name__}: {exc}. Make the model deep-copyable (e.g. keep "
            "open files, locks or generators outside it)"
        ) from exc
    interface = CompressionInterface(graph, original, wrap_inputs_fn, wrap_outputs_fn)
    interface.install(setup, _build_quantizers(setup))
    interface.to(model_device(model))
    compressed.add_module(INTERFACE_NAME, interface)
    object.__setattr__(compressed, "forward", CompressedForward(compressed, original))
    object.__setattr__(compressed, "nncf", NNCFInterface(compressed))
    return compressed


def nncf_interface(model: nn.Module) -> NNCFInterface:
    """``model.nncf``, typed (``nn.Module.__getattr__`` types ``model.nncf`` as ``Tensor | Module``).

    Raises:
        ValueError: ``model`` is not compressed.
    """
    compression_interface(model)
    view = model.__dict__.get("nncf")
    if not isinstance(view, NNCFInterface):
        view = NNCFInterface(model)
        object.__setattr__(model, "nncf", view)
    return view


def _reusable(
    interface: CompressionInterface, group: list[QuantizationPoint], slot: Slot
) -> BaseQuantizer | None:
    for p in group:
        if p.id not in interface.setup or interface.setup.get(p.id) != p:
            return None
    if interface._slots.get(group[0].id) != slot:
        return None
    return interface.quantizer(group[0].id)


def apply_setup(model: nn.Module, setup: QuantizerSetup, stats: RangeStatistics | None = None) -> list[str]:
    """Switch a compressed model to ``setup`` in place, without re-tracing.

    Quantizers whose points are unchanged keep their modules (and so their
    trained parameters and optimizer entries).  Changed or new ones are built
    fresh and initialised as range init would: from cached statistics
    (``stats``, else the model's :class:`RangeStatistics`), weights from the
    weight itself; without a statistic, from the old quantizer's current range
    (reduced or broadcast to the new granularity); failing that they keep the
    initial range, with a warning.  Fresh quantizers are new parameters: rebuild
    the optimizer (and a DistributedDataParallel wrapper) after this call.

    Returns:
        Ids of the quantizers that were rebuilt (one per rebuilt module).
    """
    interface = compression_interface(model)
    stats = stats if stats is not None else interface.range_statistics
    previous = {p.id: interface.quantizer(p.id) for p in interface.setup}
    device = model_device(model)
    quantizers: dict[Slot, BaseQuantizer] = {}
    fresh: list[tuple[list[QuantizationPoint], BaseQuantizer]] = []
    for group in point_groups(setup):
        slot = quantizer_slot(group)
        module = _reusable(interface, group, slot)
        if module is None:
            module = make_quantizer(group[0].spec, group[0].scale_shape, group[0].channel_axis).to(device)
            fresh.append((group, module))
        quantizers[slot] = module
    settings = resolve_range_settings(
        (p for g, _ in fresh for p in g), interface.range_config, interface.graph
    )
    interface.install(setup, quantizers)
    missed = []
    for group, module in fresh:
        if init_from_statistics(model, interface.graph, group, module, stats, settings[group[0].id]):
            continue
        old = next((previous[p.id] for p in group if p.id in previous), None)
        if old is None or not old.is_initialized or not carry_over_range(old, module):
            missed.append(group[0].id)
    warn_uninitialized(missed, "no range statistics were collected for them")
    return [group[0].id for group, _ in fresh]


class NNCFInterface:
    """``model.nncf``: NNCF's ``NNCFNetworkInterface`` members that apply here, and the Explorer's hooks.

    ``get_graph()`` returns the traced graph itself: quantizers are not graph
    nodes here but :attr:`quantizer_setup` entries; :meth:`quantizer_annotations`
    labels the graph's nodes with them for ``graph.dump_dot(path, annotations)``.
    """

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self.compression_controller: Any = None

    @property
    def _interface(self) -> CompressionInterface:
        return compression_interface(self._model)

    def get_graph(self) -> Graph:
        """The traced graph (the same object as :meth:`get_original_graph`)."""
        return self._interface.graph

    def get_original_graph(self) -> Graph:
        """The graph traced from the FP32 model."""
        return self._interface.graph

    @property
    def quantizer_setup(self) -> QuantizerSetup:
        """The setup the model's quantizers implement."""
        return self._interface.setup

    @property
    def range_statistics(self) -> RangeStatistics:
        """Cached activation statistics used to re-derive ranges in :meth:`apply_setup`."""
        return self._interface.range_statistics

    @property
    def external_quantizers(self) -> nn.ModuleDict:
        """Activation quantizers by id."""
        return self._interface.external_quantizers

    @property
    def weight_quantizers(self) -> nn.ModuleDict:
        """Weight quantizers by ``<node>|WEIGHT`` id."""
        return self._interface.weight_quantizers

    def quantizers(self) -> dict[str, BaseQuantizer]:
        """Every quantizer id -> its module (unified ids share one)."""
        return {p.id: self._interface.quantizer(p.id) for p in self._interface.setup}

    def get_quantizer(self, qid: str) -> BaseQuantizer:
        """The module of quantizer ``qid``."""
        return self._interface.quantizer(qid)

    def apply_setup(self, setup: QuantizerSetup, stats: RangeStatistics | None = None) -> list[str]:
        """See :func:`apply_setup`."""
        return apply_setup(self._model, setup, stats)

    def init_range(
        self,
        loader: Iterable[Any] | None,
        range_config: RangeConfig | None = None,
        *,
        num_init_samples: int | None = None,
        progress: bool = True,
    ) -> RangeStatistics:
        """Range-initialise every quantizer from ``loader`` (statistics taken without quantizers)."""
        interface = self._interface
        interface.range_config = range_config
        initialize_ranges(
            self._model,
            interface.graph,
            interface.groups(),
            loader,
            range_config,
            stats=interface.range_statistics,
            num_init_samples=num_init_samples,
            wrap_inputs_fn=interface.wrap_inputs_fn,
            wrap_outputs_fn=interface.wrap_outputs_fn,
            progress=progress,
        )
        interface.weight_cache.clear()
        return interface.range_statistics

    def get_original_forward(self) -> Forward:
        """The model's forward without quantizers, bound to the model."""
        bound: Forward = self._interface.original_forward.__get__(self._model)
        return bound

    def get_module_by_scope(self, scope: str) -> nn.Module | None:
        """The module at an NNCF scope such as ``ResNet/Sequential[layer1]/BasicBlock[0]``, or None.

        ``NNCFConv2d``-style class names are accepted for ``Conv2d`` and the like.
        """
        root, *parts = scope.split("/")
        module = self._model
        if normalize_node_name(root) != type(module).__name__:
            return None
        for part in parts:
            match = re.fullmatch(r"([^\[\]]+)\[([^\[\]]+)\]", part)
            child = module._modules.get(match.group(2)) if match else None
            if match is None or child is None or normalize_node_name(match.group(1)) != type(child).__name__:
                return None
            module = child
        return module

    def get_containing_module(self, node_name: str) -> nn.Module:
        """The module whose forward called node ``node_name``."""
        return self._model.get_submodule(self._interface.graph.node(node_name).module)

    def quantizer_annotations(self) -> dict[int, str]:
        """Node id -> quantizer labels (``OUTPUT B:8 M:S ...``), for ``Graph.dump_dot``."""
        graph, labels = self._interface.graph, dict[int, str]()
        for p in self._interface.setup:
            where = p.id.rsplit("|", 1)[1]
            node_id = graph.node(p.target_node).id
            labels[node_id] = "\\n".join(filter(None, [labels.get(node_id), f"{where} {p.spec.label()}"]))
        return labels

    def nncf_key_prefixes(self) -> dict[str, str]:
        """Our weight-quantizer state-dict prefixes -> NNCF's ``<module>.pre_ops.0.op`` ones."""
        graph = self._interface.graph
        return {
            f"{INTERFACE_NAME}.weight_quantizers.{p.id}": f"{graph.node(p.target_node).module}.pre_ops.0.op"
            for p in self._interface.setup.weights
        }

    def clear_weight_cache(self) -> None:
        """Drop quantized weights cached for inference (needed after in-place edits via ``.data``)."""
        self._interface.weight_cache.clear()

    def enable_replay(self, enabled: bool = True) -> None:
        """Replay recorded inference forwards instead of running the Python forward (opt-in).

        In eval mode without autograd, the first forward for each input signature runs
        eagerly and is recorded as straight-line code; later ones run the recording: the
        same torch calls and quantizers on the same tensors, so the same outputs, without
        the per-op work of the eager path.  Whatever the recording cannot check falls back
        to the eager path (:mod:`nncf_explore.compression.replay` lists it); a forward that
        cannot be replayed at all warns once (:class:`~nncf_explore.compression.replay.ReplayWarning`)
        and runs eagerly.  It is opt-in because the forward's own Python side effects
        (printing, appending to a list) then happen on recording forwards only.

        Args:
            enabled: False returns to eager forwards and forgets every recording.

        Examples:
            >>> import torch
            >>> from nncf_explore.graph import trace_model
            >>> from nncf_explore.compression.quantization.build import build_quantizer_setup
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
            >>> g = trace_model(net, {"sample_size": [1, 4]})
            >>> setup = build_quantizer_setup(g, {"compression": {"algorithm": "quantization"}})
            >>> q = compress_model(net, g, setup)
            >>> q.nncf.enable_replay()
            >>> with torch.no_grad():
            ...     first, second = q(torch.ones(1, 4)), q(torch.ones(1, 4))  # recorded, then replayed
            >>> torch.equal(first, second), q.nncf.replay_status().state, q.nncf.replay_status().recordings
            (True, 'on', 1)
        """
        replay = self._interface.replay
        replay.reset()
        replay.enabled = enabled

    def replay_status(self) -> ReplayStatus:
        """Whether inference forwards are replayed, and if they cannot be, why (see :meth:`enable_replay`)."""
        return self._interface.replay.status()

    def __repr__(self) -> str:
        setup = self._interface.setup
        return (
            f"<model.nncf of {type(self._model).__name__}: {len(setup.weights)} weight and "
            f"{len(setup.activations)} activation quantizers>"
        )
