"""Compression controllers: NNCF's ``CompressionAlgorithmController`` contract, one class per algorithm.

A controller owns an algorithm's scheduler and loss and reports its
statistics and state; export and stripping work on the whole compressed model
and live in :class:`ModelController`, which every controller extends.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.exporting import export_onnx, strip_model
from nncf_explore.compression.init_data import model_device
from nncf_explore.compression.schedulers import CompositeScheduler, CompressionScheduler
from nncf_explore.compression.statistics import NNCFStatistics
from nncf_explore.graph.leaves import Args, Kwargs


class CompressionStage(enum.IntEnum):
    """How far compression has progressed (drives NNCF's best-checkpoint choice)."""

    UNCOMPRESSED = 0
    PARTIALLY_COMPRESSED = 1
    FULLY_COMPRESSED = 2

    def __add__(self, other: object) -> CompressionStage:
        if not isinstance(other, CompressionStage):
            return NotImplemented
        return self if self == other else CompressionStage.PARTIALLY_COMPRESSED


class CompressionLoss:
    """A loss term to add to the task loss; zero for quantization and magnitude sparsity."""

    def __init__(self, model: nn.Module, terms: Sequence[Callable[[], Tensor]] = ()) -> None:
        self._model = model
        self._terms = list(terms)

    def __call__(self) -> Tensor:
        total = torch.zeros([], device=model_device(self._model))
        for term in self._terms:
            total = total + term()
        return total

    def get_state(self) -> dict[str, Any] | None:
        """Stateless (NNCF stores ``None`` too)."""
        return None

    def load_state(self, state: Any) -> None:
        """Nothing to restore."""


class ModelController:
    """What every controller offers on the compressed model: export, strip, distributed.

    Args:
        model: The compressed model.
        example_inputs: ``(args, kwargs)`` the model was traced with; used for
            export when no ``model_args`` are given.
    """

    name = "NoCompressionAlgorithm"

    def __init__(self, model: nn.Module, example_inputs: tuple[Args, Kwargs]) -> None:
        self.model = model
        self.example_inputs = example_inputs
        self.scheduler: CompressionScheduler = CompressionScheduler()
        self.loss = CompressionLoss(model)
        self._compression_rate = 1.0

    # -- NNCF contract ---------------------------------------------------------------------
    def compression_stage(self) -> CompressionStage:
        """Fully compressed unless an algorithm says otherwise."""
        return CompressionStage.FULLY_COMPRESSED

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        """Statistics of every algorithm (none here)."""
        return NNCFStatistics()

    def get_state(self) -> dict[str, Any]:
        """``{name: {"loss_state", "scheduler_state", "compression_stage"}}``."""
        return {
            self.name: {
                "loss_state": self.loss.get_state(),
                "scheduler_state": self.scheduler.get_state(),
                "compression_stage": int(self.compression_stage()),
            }
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore scheduler (and loss) state saved by :meth:`get_state`."""
        mine = state.get(self.name)
        if mine is None:
            return
        self.loss.load_state(mine.get("loss_state"))
        self.scheduler.load_state(mine["scheduler_state"])

    def builder_state(self) -> dict[str, Any]:
        """What ``create_compressed_model(..., compression_state=...)`` needs to rebuild this algorithm."""
        return {}

    def get_compression_state(self) -> dict[str, Any]:
        """JSON-serialisable ``{"builder_state": ..., "ctrl_state": ...}``; save it beside the state dict.

        Examples:
            ``torch.save({"state_dict": model.state_dict(),
            "compression_state": ctrl.get_compression_state()}, path)``
        """
        return {"builder_state": self.builder_state(), "ctrl_state": self.get_state()}

    @property
    def compression_rate(self) -> float:
        """The compression level (accuracy-aware training's knob); 1.0 here."""
        return self._compression_rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self._compression_rate = value

    @property
    def maximal_compression_rate(self) -> float:
        """The largest compression rate."""
        return 1.0

    def disable_scheduler(self) -> None:
        """Replace the scheduler by one that only counts."""
        self.scheduler = CompressionScheduler()

    def distributed(self) -> None:
        """Call after wrapping the model in DistributedDataParallel; nothing to synchronise here."""

    def prepare_for_export(self) -> None:
        """Hook before export; nothing to do here."""

    # -- model-level operations --------------------------------------------------------------
    def export_model(
        self,
        save_path: str | os.PathLike[str],
        save_format: str | None = None,
        input_names: list[str] | None = None,
        output_names: list[str] | None = None,
        model_args: tuple[Any, ...] | None = None,
    ) -> None:
        """Export to ONNX with standard QuantizeLinear/DequantizeLinear pairs (onnxruntime runs it).

        Args:
            save_path: The ``.onnx`` file, written atomically.
            save_format: ``"onnx"`` (opset 17) or ``"onnx_<opset>"``.
            input_names: Defaults to ``input.0``, ``input.1``, ...
            output_names: Defaults to ``output.0``, ...
            model_args: Forward arguments, NNCF's convention: a tuple whose last
                element may be a dict of keyword arguments. Defaults to the
                tracing inputs cut to batch 1.
        """
        self.prepare_for_export()
        export_onnx(
            self.model, save_path, self._export_args(model_args), save_format, input_names, output_names
        )

    def strip(self, do_copy: bool = True) -> nn.Module:
        """A plain torch model that computes what the compressed model computes.

        The result is a ``torch.fx.GraphModule`` (from ``torch.export``) with the
        fake-quantize ops in its graph and no nncf_explore object inside; it
        follows the traced path (as the quantizers do) and accepts any batch size.
        The compressed model is never changed; with ``do_copy=False`` the result shares
        weights and quantizer parameters with it (cheaper, but later training shows through).
        """
        return strip_model(self.model, self._export_args(None), do_copy)

    def _export_args(self, model_args: tuple[Any, ...] | None) -> tuple[Args, Kwargs]:
        if model_args is not None:
            if model_args and isinstance(model_args[-1], dict):
                return tuple(model_args[:-1]), dict(model_args[-1])
            return tuple(model_args), {}
        args, kwargs = self.example_inputs

        def first(t: Any) -> Any:
            return t[0:1] if isinstance(t, Tensor) and t.dim() > 0 else t

        return tuple(first(a) for a in args), {k: first(v) for k, v in kwargs.items()}


class CompositeController(ModelController):
    """Several algorithms on one model; state and statistics keyed by algorithm name."""

    name = "composite"

    def __init__(
        self, model: nn.Module, example_inputs: tuple[Args, Kwargs], children: Sequence[ModelController]
    ):
        super().__init__(model, example_inputs)
        self.child_ctrls = list(children)
        self.scheduler = CompositeScheduler([c.scheduler for c in self.child_ctrls])
        self.loss = CompressionLoss(model, [c.loss for c in self.child_ctrls])

    def compression_stage(self) -> CompressionStage:
        stages = [c.compression_stage() for c in self.child_ctrls]
        result = stages[0]
        for stage in stages[1:]:
            result = result + stage
        return result

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        merged: dict[str, Any] = {}
        for child in self.child_ctrls:
            stats = child.statistics(quickly_collected_only)
            merged.update({k: v for k, v in vars(stats).items() if v is not None})
        return NNCFStatistics(**merged)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for child in self.child_ctrls:
            state.update(child.get_state())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        for child in self.child_ctrls:
            child.load_state(state)
        # The composite scheduler counts too (ctrl.scheduler.get_state()); the saved state is per child.
        saved = [state[c.name]["scheduler_state"] for c in self.child_ctrls if c.name in state]
        if saved:
            self.scheduler.current_step = int(saved[0]["current_step"])
            self.scheduler.current_epoch = int(saved[0]["current_epoch"])

    def builder_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for child in self.child_ctrls:
            state.update(child.builder_state())
        return state

    def distributed(self) -> None:
        for child in self.child_ctrls:
            child.distributed()

    def prepare_for_export(self) -> None:
        for child in self.child_ctrls:
            child.prepare_for_export()

    def __getattr__(self, name: str) -> Any:
        # NNCF users reach algorithm members through the composite (ctrl.weight_quantizers).
        for child in self.__dict__.get("child_ctrls", ()):
            if hasattr(child, name):
                return getattr(child, name)
        raise AttributeError(f"{type(self).__name__} and its algorithms have no attribute {name!r}")
