"""Recording a compressed model's forward as straight-line Python code, for :mod:`.replay`.

A :class:`RecordingRunner` runs one eager forward, as every forward runs, and hands each
of its actions (a torch call, an activation quantizer, a quantized weight) to a
:class:`Recorder`, which writes it as one line of a Python function.  Tensors become
local names; everything else an op receives (functions, parameters, sizes, dtypes) is
held by reference in the function's namespace.  Two passes then run over the lines:
copies that no later line needs become in-place quantization, and every name is deleted
after its last use, as the eager forward frees it.

While recording, anything that would make the recorded path a guess is noted as a
refusal: tensor values read into Python, ops with data-dependent output shapes (seen
through torch's own op tags), tensors from outside the model, autocast switched inside
the forward, outputs a recording cannot rebuild.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from nncf_explore.compression.runtime import (
    HookRunner,
    apply_quantizer,
    cached_weight,
    is_plain_quantizer,
    storage_address,
)
from nncf_explore.graph.leaves import Args, Kwargs, tensor_leaves
from nncf_explore.graph.ops import METADATA_READS, VALUE_READS

_DATA_TAGS = (torch.Tag.data_dependent_output, torch.Tag.dynamic_output_shape)
_CONTAINERS = (list, tuple)
Program = Callable[[Sequence[Tensor]], Any]
"""A recorded forward: called with the forward's input tensors, in input-signature order."""


class Recorder:
    """Writes a forward, as it runs, into the source of a straight-line Python function.

    Tensors become local names: ``inputs[i]`` for the forward's tensor inputs, ``sN``
    for tensors the forward computed.  Everything else an op receives (functions,
    parameters, sizes, dtypes) is held by reference in the function's namespace.
    """

    def __init__(self, constant_ids: set[int]) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "_apply_quantizer": apply_quantizer,
            "_cached_weight": cached_weight,
        }
        self.refusal: str | None = None
        self.user_call = False
        self.source = ""
        self.autocast = autocast_state()
        self._constant_ids = constant_ids
        self._tensors: dict[int, str] = {}
        self._constants: dict[int, str] = {}
        self._keep: list[Any] = []  # holds every object seen, so no id() or storage is reused while recording
        # For turning copies into in-place quantization where nothing reads the source afterwards:
        self._storage: dict[str, int | None] = {}  # tensor name -> storage address
        self._uses: list[tuple[int, str]] = []  # (line, tensor name) for every read of a name
        self._outside: set[int | None] = set()  # storages the caller can see: inputs, parameters, buffers
        self._copies: list[tuple[int, str, str, str]] = []  # (line, target, quantizer, source) of copies

    def refuse(self, reason: str) -> None:
        """Mark the recording unusable; the first reason is the one reported."""
        if self.refusal is None:
            self.refusal = reason

    def inputs(self, tensors: Sequence[Tensor]) -> None:
        """Name the forward's tensor inputs, in :func:`input_signature` order."""
        for i, tensor in enumerate(tensors):
            self._bind(tensor, f"inputs[{i}]")
            self._outside.add(storage_address(tensor))

    def call(self, func: Callable[..., Any], args: Args, kwargs: Kwargs, result: Any) -> None:
        """Record ``result = func(*args, **kwargs)``."""
        where = f"{_label(func)}"
        parts = [self._expr(a, where) for a in args]
        for key, value in kwargs.items():
            if not key.isidentifier():
                self.refuse(f"{where} takes keyword argument {key!r}, which is not a Python name")
            parts.append(f"{key}={self._expr(value, where)}")
        self._assign(result, f"{self._constant(func)}({', '.join(parts)})")

    def quantize(self, quantizer: nn.Module, x: Tensor, result: Tensor, owned: bool) -> None:
        """Record an activation quantizer applied to ``x``."""
        source = self._expr(x, "a quantizer")
        name = self._constant(quantizer)
        line = len(self.lines)
        target = self._bind(result, f"_apply_quantizer({name}, {source}, owned={owned})")
        if not owned and is_plain_quantizer(quantizer) and result is not x:
            self._copies.append((line, target, name, source))

    def weight(self, param: Tensor, fqn: str, quantizer: nn.Module, cache: Any, result: Tensor) -> None:
        """Record a quantized weight (reused from the weight cache while nothing it depends on changed)."""
        refs = ", ".join(self._constant(v) for v in (cache, fqn, quantizer, param))
        self._assign(result, f"_cached_weight({refs}, training=False)")

    def output(self, value: Any) -> None:
        """Record what the forward returned; the function ends with it."""
        self.lines.append(f"return {self._output_expr(value)}")

    def compile(self) -> Program:
        """The recorded forward as a function of the input tensors."""
        self._quantize_in_place()
        lines = _release_early(self.lines)
        self.source = source = "def replay(inputs):\n" + "".join(f"    {line}\n" for line in lines)
        namespace = dict(self.namespace)
        exec(compile(source, "<nncf_explore replay>", "exec"), namespace)  # source built above, names only
        program: Program = namespace["replay"]
        return program

    def _quantize_in_place(self) -> None:
        # Eager forwards copy when a quantizer's input shares memory with a tensor the Python
        # forward might still read (an in-place ReLU's output is its input).  A recording knows
        # every later read: where none touches that memory, the copy becomes in-place.
        last_read: dict[int | None, int] = {}
        for line, name in self._uses:
            storage = self._storage[name]
            last_read[storage] = max(line, last_read.get(storage, -1))
        for line, target, quantizer, source in self._copies:
            storage = self._storage[source]
            if storage is not None and storage not in self._outside and last_read.get(storage, -1) <= line:
                self.lines[line] = f"{target} = _apply_quantizer({quantizer}, {source}, owned=True)"

    # -- expressions ---------------------------------------------------------------------------------
    def _constant(self, value: Any) -> str:
        name = self._constants.get(id(value))
        if name is None:
            name = self._constants[id(value)] = f"c{len(self._constants)}"
            self.namespace[name] = value
            self._keep.append(value)
            if isinstance(value, Tensor):
                self._outside.add(storage_address(value))
        return name

    def _bind(self, tensor: Tensor, expr: str) -> str:
        name = f"s{len(self.lines)}_{len(self._tensors)}"
        self.lines.append(f"{name} = {expr}")
        self._tensors[id(tensor)] = name
        self._storage[name] = storage_address(tensor)
        self._keep.append(tensor)
        return name

    def _assign(self, result: Any, expr: str) -> None:
        if isinstance(result, Tensor):
            self._bind(result, expr)
            return
        name = f"r{len(self.lines)}"
        self.lines.append(f"{name} = {expr}")
        self._keep.append(result)
        self._bind_parts(result, name)

    def _bind_parts(self, value: Any, expr: str) -> None:
        # Tuples include torch's named result types (``torch.max(x, 1)``); a tensor kept
        # inside another kind of object has no name, and any later use of it refuses.
        if isinstance(value, _CONTAINERS):
            for i, item in enumerate(value):
                if isinstance(item, Tensor):
                    self._bind(item, f"{expr}[{i}]")
                elif isinstance(item, _CONTAINERS):
                    self._bind_parts(item, f"{expr}[{i}]")

    def _expr(self, value: Any, where: str) -> str:
        if isinstance(value, Tensor):
            name = self._tensors.get(id(value))
            if name is not None:
                self._uses.append((len(self.lines), name))
                return name
            if id(value) in self._constant_ids:
                return self._constant(value)
            self.refuse(
                f"{where} takes a tensor that is neither an input of the forward, a parameter or buffer "
                "of the model, nor computed by the forward (register it with register_buffer)"
            )
            return "None"
        if type(value) in _CONTAINERS:
            items = "".join(f"{self._expr(v, where)}, " for v in value)
            return f"[{items}]" if type(value) is list else f"({items})"
        if isinstance(value, slice):
            parts = (self._expr(v, where) for v in (value.start, value.stop, value.step))
            return f"slice({', '.join(parts)})"
        if isinstance(value, (*_CONTAINERS, dict)) and next(tensor_leaves(value), None) is not None:
            self.refuse(
                f"{where} takes a {type(value).__name__} holding tensors, which a recording cannot rebuild"
            )
        return self._constant(value)

    def _output_expr(self, value: Any) -> str:
        where = "the forward's output"
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            items = ", ".join(self._output_expr(v) for v in value)
            return f"{self._constant(type(value))}({items})"
        if type(value) in _CONTAINERS:
            items = "".join(f"{self._output_expr(v)}, " for v in value)
            return f"[{items}]" if type(value) is list else f"({items})"
        if type(value) is dict:
            items = ", ".join(f"{self._constant(k)}: {self._output_expr(v)}" for k, v in value.items())
            return f"{{{items}}}"
        if isinstance(value, Tensor):
            return self._expr(value, where)
        if value is None or type(value) in (bool, int, float, str, torch.Size, torch.dtype, torch.device):
            return self._constant(value)
        self.refuse(f"the forward returns a {type(value).__name__}, which a recording cannot rebuild")
        return "None"


class RecordingRunner(HookRunner):
    """A :class:`HookRunner` that writes what it runs into a :class:`Recorder`."""

    recorder: Recorder

    def invoke(self, func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        if autocast_state() != self.recorder.autocast:
            # Entering autocast is invisible to torch-function modes, so a replay would miss it.
            self.recorder.refuse(f"the forward switches autocast (seen at {_label(func)})")
        self.recorder.user_call = True
        try:
            result = func(*args, **kwargs)
        finally:
            self.recorder.user_call = False
        self.recorder.call(func, args, kwargs, result)
        return result

    def on_ignored(self, func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        name = getattr(func, "__name__", "")
        if name in METADATA_READS:
            result = func(*args, **kwargs)
            if isinstance(result, Tensor):
                self.recorder.call(func, args, kwargs, result)
            return result
        if name in VALUE_READS:
            self.recorder.refuse(
                f"the forward reads tensor values into Python ({_label(func)}), so its path may depend on "
                "the data"
            )
        return self.invoke(func, args, kwargs)

    def quantize(self, quantizer: nn.Module, x: Tensor, *, owned: bool) -> Tensor:
        result = super().quantize(quantizer, x, owned=owned)
        self.recorder.quantize(quantizer, x, result, owned)
        return result

    def quantized_weight(self, param: Tensor) -> Tensor:
        first = id(param) not in self._quantized
        result = super().quantized_weight(param)
        if first:
            fqn, quantizer = self._weights[id(param)]
            self.recorder.weight(param, fqn, quantizer, self.weight_cache, result)
        return result


class DataDependence(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Refuses a recording when one of the model's ops reads data or has a data-dependent output shape."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.recorder = recorder

    def __torch_dispatch__(self, func: Any, types: Any, args: Args = (), kwargs: Kwargs | None = None) -> Any:
        if self.recorder.user_call and any(tag in func.tags for tag in _DATA_TAGS):
            self.recorder.refuse(
                f"an op of the forward ({func}) reads tensor values or makes an output whose shape "
                "depends on them"
            )
        return func(*args, **(kwargs or {}))


def autocast_state() -> tuple[tuple[bool, torch.dtype], ...]:
    """Whether autocast is on, and at which dtype, for CPU and CUDA."""
    return tuple((torch.is_autocast_enabled(d), torch.get_autocast_dtype(d)) for d in ("cpu", "cuda"))


_NAME = re.compile(r"\b[sr]\d+(?:_\d+)?\b")


def _release_early(lines: list[str]) -> list[str]:
    """``lines`` with each name deleted after its last use, as the eager forward would free it.

    Holding every intermediate until the end would keep all activations alive: the
    allocator could not reuse memory still warm in the cache, and each op would slow down.
    """
    last: dict[str, int] = {}
    for i, line in enumerate(lines):
        target, _, value = line.partition(" = ") if not line.startswith("return ") else ("", "", line)
        for name in _NAME.findall(value):
            last[name] = i
        if target:
            last.setdefault(target, i)
    done: dict[int, list[str]] = {}
    for name, i in last.items():
        done.setdefault(i, []).append(name)
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in done and not line.startswith("return "):
            out.append(f"del {', '.join(done[i])}")
    return out


def _label(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)
