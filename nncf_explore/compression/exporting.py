"""Leaving nncf_explore: ONNX export with standard Q/DQ ops, and ``strip`` to a plain torch model.

NNCF exported a custom ``FakeQuantize`` op that onnxruntime cannot run.  Here
every quantizer exports as ``QuantizeLinear``/``DequantizeLinear``: 8-bit
quantizers directly, lower bit widths (and the 7-bit overflow fix) as a clip to
their range followed by an 8-bit Q/DQ on the same grid, which gives the same
values because the low-bit grid is a subset of the int8/uint8 grid.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.jit._trace import TracerWarning

from nncf_explore.compression.interface import compression_interface, is_compressed
from nncf_explore.compression.quantization.export import qdq_forward
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.graph.tracking import Args, Kwargs

DEFAULT_OPSET = 17


@contextmanager
def _eval_no_grad(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training


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


def qdq_mode(model: nn.Module) -> AbstractContextManager[None]:
    """Make every quantizer of ``model`` compute with Q/DQ-exportable ops while the block runs."""
    return _quantizer_forwards(model, lambda q: functools.partial(qdq_forward, q))


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


def _atomic_target(path: str | os.PathLike[str]) -> tuple[str, str]:
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".onnx")
    os.close(fd)
    return target, tmp


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    inputs: tuple[Args, Kwargs],
    save_format: str | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> None:
    """Export ``model`` (compressed or not) to ONNX at ``path``, atomically."""
    args, kwargs = inputs
    opset = _opset(save_format)
    target, tmp = _atomic_target(path)
    names = input_names or [f"input.{i}" for i in range(len(args) + len(kwargs))]
    try:
        with _eval_no_grad(model), qdq_mode(model), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            outputs = model(*args, **kwargs)
            count = len(outputs) if isinstance(outputs, list | tuple) else 1
            torch.onnx.export(
                model,
                args,
                tmp,
                kwargs=kwargs or None,
                opset_version=opset,
                input_names=names,
                output_names=output_names or [f"output.{i}" for i in range(count)],
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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


def strip_model(model: nn.Module, inputs: tuple[Args, Kwargs], do_copy: bool = True) -> nn.Module:
    """A plain ``torch.fx.GraphModule`` computing ``model``'s eval-mode forward, quantization kept.

    The batch dimension is left dynamic where the model allows it.  ``torch.export`` lets the
    result share parameters and buffers with ``model``; ``do_copy`` gives it its own.
    """
    # A batch of 1 would make torch.export specialise the batch size; capture with 2.
    args = tuple(
        torch.cat([a[0:1], a[0:1]]) if isinstance(a, Tensor) and a.dim() > 0 else a for a in inputs[0]
    )
    kwargs = inputs[1]

    def batch_dynamic(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return {0: torch.export.Dim.AUTO}
        return None

    dynamic = None if kwargs else tuple(batch_dynamic(a) for a in args)
    with _eval_no_grad(model), _quantizer_forwards(model, _frozen_forward), _function_forward(model):
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
