"""An edit session: one traced model, many quantizer setups, each turned into a model and a config.

This is the Explorer's back end, and works without widgets: the model is traced
and range-initialised once; each edit is a new :class:`QuantizerSetup`, applied
to the same compressed model (no re-trace, statistics reused) and written as a
minimal NNCF config that places exactly that setup again.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

from nncf_explore.compression.api import as_config, create_compressed_model
from nncf_explore.compression.controller import CompositeController, ModelController
from nncf_explore.compression.model import nncf_interface
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.config_gen import config_from_setup, quantization_section
from nncf_explore.compression.quantization.controller import QuantizationController, weight_memory
from nncf_explore.compression.quantization.point_constraints import check_point, point_bits, point_restriction
from nncf_explore.compression.quantization.settings import resolve_settings
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.weights import weight_skip_reason
from nncf_explore.config.init_args import register_default_init_args
from nncf_explore.config.jsonio import dumps, write_text_atomic
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper

_SCOPE_KEYS = ("ignored_scopes", "target_scopes")


def _quantization_controller(ctrl: ModelController) -> QuantizationController:
    if isinstance(ctrl, QuantizationController):
        return ctrl
    if isinstance(ctrl, CompositeController):
        for child in ctrl.child_ctrls:
            if isinstance(child, QuantizationController):
                return child
    raise ConfigError(
        'compression: the config has no "quantization" algorithm, so there is nothing to edit; add '
        '{"algorithm": "quantization"} to "compression"'
    )


class EditSession:
    """Quantization edits on one model; implements the Explorer's session protocol.

    Args:
        model: The FP32 model (not modified), or a compressed model with ``controller``.
        config: The NNCF config to start from.
        init_loader: Data for range initialisation (registered like ``register_default_init_args``).
        eval_fn: ``eval_fn(compressed_model) -> float``, a metric shown after edits.
        controller: With a compressed ``model``: start from this existing ``(controller, model)`` pair.
        dummy_forward_fn: As for :func:`create_compressed_model`.
        wrap_inputs_fn: As for :func:`create_compressed_model`.
        wrap_outputs_fn: As for :func:`create_compressed_model`.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4))
        >>> cfg = {"input_info": {"sample_size": [1, 4]}, "target_device": "TRIAL",
        ...        "compression": {"algorithm": "quantization"}}
        >>> import warnings; warnings.simplefilter("ignore")
        >>> s = EditSession(net, cfg)
        >>> s.apply(s.setup.replace_point("Sequential/Linear[0]/linear_0|WEIGHT", spec={"bits": 4}))
        >>> s.config_json()["compression"]["initializer"]["precision"]["bitwidth_per_scope"]
        [[4, 'Sequential/Linear[0]/linear_0|WEIGHT']]
    """

    def __init__(
        self,
        model: nn.Module,
        config: NNCFConfig | Mapping[str, Any],
        *,
        init_loader: Iterable[Any] | None = None,
        eval_fn: Callable[[nn.Module], float] | None = None,
        controller: ModelController | None = None,
        dummy_forward_fn: Callable[[nn.Module], Any] | None = None,
        wrap_inputs_fn: InputsWrapper | None = None,
        wrap_outputs_fn: OutputsWrapper | None = None,
    ) -> None:
        nncf_config = as_config(config)
        self._base: dict[str, Any] = nncf_config.to_dict()
        if init_loader is not None:
            nncf_config = register_default_init_args(nncf_config.copy(), init_loader)
        if controller is None:
            controller, model = create_compressed_model(
                model, nncf_config, None, dummy_forward_fn, wrap_inputs_fn, wrap_outputs_fn, dump_graphs=False
            )
        self.controller = controller
        self.compressed_model = model
        self.eval_fn = eval_fn
        self._quant = _quantization_controller(controller)
        self._config = config_from_setup(self._base, self.graph, self._quant.setup)
        self._defaults: dict[str, QuantizerSetup] = {}

    # -- the protocol ---------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The traced graph."""
        graph: Graph = nncf_interface(self.compressed_model).get_original_graph()
        return graph

    @property
    def setup(self) -> QuantizerSetup:
        """The current setup."""
        return self._quant.setup

    @property
    def default_setup(self) -> QuantizerSetup:
        """Every point placeable on the current device, with the config's specs, scopes aside."""
        return self._default_for(self.setup.target_device)

    def _base_for(self, device: str) -> dict[str, Any]:
        base = copy.deepcopy(self._base)
        base["target_device"] = device
        return base

    def _default_for(self, device: str) -> QuantizerSetup:
        if device not in self._defaults:
            open_config = self._base_for(device)
            open_config.pop("ignored_scopes", None)
            open_config.pop("target_scopes", None)
            section = quantization_section(open_config)
            for key in _SCOPE_KEYS:
                section.pop(key, None)
                for group in ("weights", "activations"):
                    section.get(group, {}).pop(key, None)
            self._defaults[device] = build_quantizer_setup(self.graph, open_config)
        return self._defaults[device]

    def _rebase(self, setup: QuantizerSetup) -> QuantizerSetup:
        """Carry a setup's choices over to another device's defaults (bits, mode, granularity, on/off)."""
        old_default, new_default = self.default_setup, self._default_for(setup.target_device)
        points: list[QuantizationPoint] = []
        for point in new_default:
            if point.id not in setup:
                continue
            wanted, was = (
                setup.get(point.id).spec,
                old_default.get(point.id).spec if point.id in old_default else None,
            )
            changes = {
                key: getattr(wanted, key)
                for key in ("bits", "mode", "per_channel")
                if was is None or getattr(wanted, key) != getattr(was, key)
            }
            points.append(point.respec(**changes) if changes else point)
        return QuantizerSetup(tuple(points), setup.target_device)

    def apply(self, setup: QuantizerSetup) -> None:
        """Make ``setup`` current: a new config and the compressed model updated in place.

        Raises:
            ConfigError: The setup is not possible on its device or cannot be written as a config;
                the previous setup, model and config stay as they were.
        """
        if setup.target_device != self.setup.target_device:
            setup = self._rebase(setup)
        base = self._base_for(setup.target_device)
        settings = resolve_settings(base, quantization_section(copy.deepcopy(base)))
        for point in setup:
            check_point(point, self.graph, settings)
        config = config_from_setup(base, self.graph, setup)
        previous = self.setup
        try:
            self._quant.apply_setup(setup)
        except Exception:
            self._quant.apply_setup(previous)
            raise
        self._quant.settings = settings
        self._config = config

    def config_json(self) -> dict[str, Any]:
        """The NNCF config (pure JSON) that gives back the current setup."""
        return copy.deepcopy(self._config)

    @property
    def config(self) -> NNCFConfig:
        """The current config as an :class:`NNCFConfig`."""
        return NNCFConfig.from_dict(self._config)

    def allowed_bits(self, point: QuantizationPoint) -> tuple[tuple[int, ...], str | None]:
        """Bit widths the current device allows ``point`` (given the ops it quantizes or feeds), and why.

        On NPU a convolution weight may have 2, 4 or 8 bits, an activation feeding
        only convolutions 4 or 8, one feeding a depthwise convolution only 8.
        """
        settings = self._quant.settings
        # Points of a unified group share one quantizer: the group may take what every member may.
        members = [point] + [
            p
            for p in self.setup
            if point.unified_group is not None and p.unified_group == point.unified_group and p.id != point.id
        ]
        allowed = [point_bits(p, self.graph, settings) for p in members]
        bits = tuple(b for b in allowed[0] if all(b in other for other in allowed[1:]))
        narrowest = min(range(len(members)), key=lambda i: len(allowed[i]))
        return bits, point_restriction(members[narrowest], self.graph, settings)

    def weight_memory_bytes(self, setup: QuantizerSetup) -> int:
        """Weight bytes under ``setup`` (the empty setup gives FP32)."""
        return weight_memory(self.compressed_model, setup)[1]

    def eval_metric(self) -> float | None:
        """``eval_fn(compressed_model)``, or None without ``eval_fn``."""
        return None if self.eval_fn is None else float(self.eval_fn(self.compressed_model))

    def unquantized_reason(self, node: Node) -> str | None:
        """Why a weighted node has no weight quantizer (None: let the caller explain by category)."""
        if node.weight is None:
            return None
        return weight_skip_reason(node, self._quant.settings)

    def export_config(self, path: str | os.PathLike[str]) -> str:
        """Write the current config to ``path`` atomically, creating missing directories; returns the path.

        Raises:
            FileWriteError: The file cannot be written; the message names ``path`` and the fix.
        """
        write_text_atomic(os.fspath(path), dumps(self._config))
        return os.fspath(path)
