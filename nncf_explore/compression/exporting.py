"""Leaving nncf_explore: ONNX export with standard Q/DQ ops, and ``strip`` to a plain torch model.

NNCF exported a custom ``FakeQuantize`` op that onnxruntime cannot run.  Here
every quantizer exports as ``QuantizeLinear``/``DequantizeLinear``: 8-bit
quantizers directly, lower bit widths (and the 7-bit overflow fix) as a clip to
their range followed by an 8-bit Q/DQ on the same grid, which gives the same
values because the low-bit grid is a subset of the int8/uint8 grid.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.jit._trace import TracerWarning, is_tracing

from nncf_explore.compression.divergence import UntracedPathWarning
from nncf_explore.compression.interface import compression_interface, is_compressed
from nncf_explore.compression.quantization.export import qdq_forward
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.files import atomic_write_path
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.trace import eval_no_grad

DEFAULT_OPSET = 17


def _frozen_forward(quantizer: BaseQuantizer) -> Callable[[Tensor], Tensor]:
    # Bit width, signedness and the enabled flag live in buffers that forward reads
    # as Python values; a graph capture must see them as constants instead.
    if not quantizer.is_enabled:
        return _identity
    bounds = (quantizer.level_low, quantizer.level_high)
    object.__setattr__(quantizer, "_bounds", lambda: bounds)
    return quantizer._quantize


def _identity(x: Tensor) -> Tensor:
    return x


@contextmanager
def _quantizer_forwards(
    model: nn.Module, make: Callable[[BaseQuantizer], Callable[[Tensor], Tensor]]
) -> Iterator[None]:
    """Give every quantizer of ``model`` the forward ``make(quantizer)`` while the block runs."""
    if not is_compressed(model):
        yield
        return
    interface = compression_interface(model)
    modules = [quantizer for _, quantizer in interface.groups()]
    cache_enabled = interface.weight_cache.enabled
    interface.weight_cache.clear()
    interface.weight_cache.enabled = False
    try:
        for quantizer in modules:
            object.__setattr__(quantizer, "forward", make(quantizer))
        yield
    finally:
        for quantizer in modules:
            quantizer.__dict__.pop("forward", None)
            quantizer.__dict__.pop("_bounds", None)
        interface.weight_cache.enabled = cache_enabled


class QdqCalls:
    """Counts quantizer calls on floating-point tensors, eager and under the ONNX tracer.

    ``torch.onnx``'s tracer turns shape arithmetic (``x.shape[0] * num_heads`` in
    ``nn.MultiheadAttention``) into integer tensor ops.  The compressed model numbers those
    like any op, which shifts the call orders its quantizers are attached to: a quantizer
    can then meet an integer tensor (left alone here) while the op it belongs to goes
    unquantized.  Comparing the traced count with an eager forward's exposes that.
    """

    def __init__(self) -> None:
        self.eager = 0
        self.traced = 0

    def forward_of(self, quantizer: BaseQuantizer) -> Callable[[Tensor], Tensor]:
        """``quantizer``'s Q/DQ forward, counted."""

        def forward(x: Tensor) -> Tensor:
            if not x.is_floating_point():
                return x
            if is_tracing():  # type: ignore[no-untyped-call]
                self.traced += 1
            else:
                self.eager += 1
            return qdq_forward(quantizer, x)

        return forward


def qdq_mode(model: nn.Module, calls: QdqCalls | None = None) -> AbstractContextManager[None]:
    """Make every quantizer of ``model`` compute with Q/DQ-exportable ops while the block runs."""
    return _quantizer_forwards(model, (calls or QdqCalls()).forward_of)


def _opset(save_format: str | None) -> int:
    if save_format in (None, "onnx"):
        return DEFAULT_OPSET
    if save_format.startswith("onnx_") and save_format[5:].isdigit():
        opset = int(save_format[5:])
        if opset < 13:
            raise ValueError(
                f"save_format {save_format!r}: per-channel QuantizeLinear needs opset 13 or newer"
            )
        return opset
    raise ValueError(
        f"save_format {save_format!r} is not supported; use 'onnx' or 'onnx_<opset>' (e.g. 'onnx_17')"
    )


class _KeywordsAsPositional(nn.Module):
    """Takes keyword inputs positionally: the TorchScript exporter cannot pass keyword-only arguments."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *inputs: Any) -> Any:
        split = len(inputs) - len(self.keys)
        return self.model(*inputs[:split], **dict(zip(self.keys, inputs[split:], strict=True)))


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    inputs: tuple[Args, Kwargs],
    save_format: str | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> None:
    """Export ``model`` (compressed or not) to ONNX at ``path``, atomically.

    The file is written by :func:`nncf_explore.files.atomic_write_path`, as every file of the package:
    missing directories are created and a new file gets ``0o666`` minus the umask. Warns if fewer
    quantizers reached the ONNX graph than run in an eager forward (see :class:`QdqCalls`); the file
    is still written.

    Raises:
        FileWriteError: The file cannot be written; the message names ``path`` and the fix.
    """
    args, kwargs = inputs
    opset = _opset(save_format)
    model = _without_pruned_filters(model)
    names = input_names or [f"input.{i}" for i in range(len(args) + len(kwargs))]
    root = _KeywordsAsPositional(model, list(kwargs)) if kwargs else model
    calls = QdqCalls()
    with (
        atomic_write_path(path) as tmp,
        eval_no_grad(model),
        qdq_mode(model, calls),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=TracerWarning)
        warnings.filterwarnings("ignore", category=UntracedPathWarning)  # reported below instead
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        outputs = model(*args, **kwargs)
        count = len(outputs) if isinstance(outputs, list | tuple) else 1
        torch.onnx.export(
            root,
            (*args, *kwargs.values()),
            tmp,
            opset_version=opset,
            input_names=names,
            output_names=output_names or [f"output.{i}" for i in range(count)],
            dynamo=False,
        )
    if calls.traced < calls.eager:
        warnings.warn(
            f"export_model: {calls.eager - calls.traced} of the {calls.eager} quantizers that run in the "
            "PyTorch model are missing from the ONNX graph. torch.onnx's tracer turns shape arithmetic "
            "(such as nn.MultiheadAttention's) into tensor ops, which shifts the op call orders the "
            "quantizers are attached to. Check the exported model's accuracy, or deploy ctrl.strip() "
            "(torch.export keeps PyTorch's semantics)",
            stacklevel=3,
        )


@contextmanager
def _function_forward(model: nn.Module) -> Iterator[None]:
    """Give ``model`` a plain-function instance ``forward`` while the block runs.

    ``torch.export`` reads ``model.forward.__code__``; a compressed model's forward is a
    callable object, so it gets a function with the same signature that calls it.
    """
    own = model.__dict__.get("forward")
    if own is None:
        yield
        return

    def forward(*args: Any, **kwargs: Any) -> Any:
        return own(*args, **kwargs)

    forward.__signature__ = inspect.signature(own)  # type: ignore[attr-defined]
    object.__setattr__(model, "forward", forward)
    try:
        yield
    finally:
        object.__setattr__(model, "forward", own)


def _batch_of_two(value: Any) -> Any:
    return torch.cat([value[0:1], value[0:1]]) if isinstance(value, Tensor) and value.dim() > 0 else value


def _batch_dynamic_shapes(model: nn.Module, args: Args, kwargs: Kwargs) -> dict[str, Any] | None:
    """``torch.export`` dynamic shapes by forward parameter: dim 0 of every tensor input."""

    def spec(value: Any) -> Any:
        return {0: torch.export.Dim.AUTO} if isinstance(value, Tensor) and value.dim() > 0 else None

    try:
        signature = inspect.signature(model.forward)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    shapes: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            shapes[name] = tuple(spec(v) for v in value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            shapes[name] = {k: spec(v) for k, v in value.items()}
        else:
            shapes[name] = spec(value)
    return shapes


def _without_pruned_filters(model: nn.Module) -> nn.Module:
    """``model``, or a copy of it with filter pruning's masked filters physically removed."""
    if not is_compressed(model):
        return model
    from nncf_explore.compression.pruning.shrink import pruned_copy  # pruning builds on this module

    pruned = pruned_copy(model)
    return model if pruned is None else pruned


def strip_model(model: nn.Module, inputs: tuple[Args, Kwargs], do_copy: bool = True) -> nn.Module:
    """A plain ``torch.fx.GraphModule`` computing ``model``'s eval-mode forward, quantization kept.

    The batch dimension is left dynamic where the model allows it.  ``torch.export`` lets the
    result share parameters and buffers with ``model``; ``do_copy`` gives it its own.  With
    filter pruning, the pruned filters are physically removed first, from a copy (so the
    result never shares with ``model`` then).
    """
    pruned = _without_pruned_filters(model)
    do_copy = do_copy and pruned is model  # a pruned copy is already the result's own
    model = pruned
    # A batch of 1 would make torch.export specialise the batch size; capture with 2.
    args = tuple(_batch_of_two(a) for a in inputs[0])
    kwargs = {k: _batch_of_two(v) for k, v in inputs[1].items()}
    dynamic = _batch_dynamic_shapes(model, args, kwargs)
    with eval_no_grad(model), _quantizer_forwards(model, _frozen_forward), _function_forward(model):
        try:
            program = torch.export.export(
                model, args, kwargs=kwargs or None, dynamic_shapes=dynamic, strict=False
            )
        except Exception:  # a model that cannot vary its batch size exports with a static one
            program = torch.export.export(model, args, kwargs=kwargs or None, strict=False)
    stripped: nn.Module = program.module()
    if not do_copy:
        return stripped
    with warnings.catch_warnings():  # torch's own pytree pickling, not actionable here
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        copied: nn.Module = copy.deepcopy(stripped)
    return copied
