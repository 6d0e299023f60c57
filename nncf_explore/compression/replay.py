"""Replayed inference forwards: the compressed model as straight-line code (opt-in).

``model.nncf.enable_replay()`` turns it on.  The first inference forward for an
input signature runs eagerly, as every forward does, and is recorded: each torch
call the model made, each quantizer and each quantized weight, in order, becomes
one line of a generated Python function (:class:`Recorder`).  Later forwards with
the same signature run that function: no Python forward, no module calls, no
torch-function mode, no per-op lookups; the same calls on the same tensors, so the
same bits.

That holds only while the recorded path is the one the forward would take, so a
recording is refused, with the reason, when the path may depend on something a
replay cannot see: tensor values read into Python (``item``, ``if x.sum() > 0``),
ops whose output shape depends on data (``nonzero``), module attributes written by
the forward, tensors from outside the model, ops the trace did not see.  And a
recording runs only while nothing it was recorded under has changed: autograd off,
no capture and no other torch mode active, no global module hooks, the same inputs
(structure, shapes, strides, dtypes, devices, non-tensor values), the same module
state (attributes, parameters, buffers, submodules, training flags, hooks) and the
same quantizer setup.  Anything else runs eagerly.

What no check can see is why it is opt-in: the forward's own Python side effects
(printing, appending to a list) happen on recording forwards only, and decisions
on state outside the model (globals, Python's ``random``) are frozen as recorded.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.modules.module as torch_module
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from nncf_explore.compression.hook_plan import HookPlan
from nncf_explore.compression.runtime import HookRunner, apply_quantizer, cached_weight, is_plain_quantizer
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.tracking import active_tracker

DATA_READS = frozenset(
    {
        "item", "__bool__", "tolist", "numpy", "__int__", "__float__", "__index__", "__complex__",
        "__array__", "__format__", "__repr__", "data_ptr", "untyped_storage", "equal", "allclose",
        "__dlpack__",
    }
)  # fmt: skip
"""Tensor methods that hand tensor values (or addresses) to Python: a recording that meets one is refused."""

METADATA = frozenset(
    {
        "dim", "size", "numel", "stride", "is_contiguous", "element_size", "get_device",
        "is_floating_point", "is_complex", "nelement", "ndimension", "has_names", "storage_offset", "__len__",
        "__get__",
    }
)  # fmt: skip
"""Reads of tensor metadata: fixed by the input signature; a recording keeps only the tensors they return."""

MAX_RECORDINGS = 8
"""Recordings kept per model (one per input signature); the oldest goes first."""

_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
_DATA_TAGS = (torch.Tag.data_dependent_output, torch.Tag.dynamic_output_shape)
_CONTAINERS = (list, tuple)
Program = Callable[[Sequence[Tensor]], Any]


class ReplayWarning(UserWarning):
    """A forward cannot be replayed; it keeps running eagerly.  The message says why."""


@dataclass(frozen=True)
class ReplayStatus:
    """Whether a compressed model replays its inference forwards.

    Attributes:
        state: ``"off"``, ``"on"`` or ``"refused"`` (enabled, but this model's forward cannot be replayed).
        detail: What that means, and for ``"refused"`` the reason.
        recordings: Input signatures recorded so far.
    """

    state: str
    detail: str
    recordings: int


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
            self._outside.add(_storage(tensor))

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
        if not owned and is_plain_quantizer(quantizer) and result is not x:
            self._copies.append((len(self.lines), f"s{len(self.lines)}_{len(self._tensors)}", name, source))
        self._assign(result, f"_apply_quantizer({name}, {source}, owned={owned})")

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
                self._outside.add(_storage(value))
        return name

    def _bind(self, tensor: Tensor, expr: str) -> str:
        name = f"s{len(self.lines)}_{len(self._tensors)}"
        self.lines.append(f"{name} = {expr}")
        self._tensors[id(tensor)] = name
        self._storage[name] = _storage(tensor)
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
        if isinstance(value, (*_CONTAINERS, dict)) and _holds_tensor(value):
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
        self.recorder.user_call = True
        try:
            result = func(*args, **kwargs)
        finally:
            self.recorder.user_call = False
        self.recorder.call(func, args, kwargs, result)
        return result

    def on_ignored(self, func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        name = getattr(func, "__name__", "")
        if name in METADATA:
            result = func(*args, **kwargs)
            if isinstance(result, Tensor):
                self.recorder.call(func, args, kwargs, result)
            return result
        if name in DATA_READS:
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


class _DataDependence(TorchDispatchMode):  # type: ignore[no-untyped-call]
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


class Replay:
    """One compressed model's recordings, by input signature, and whether to use them."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        self.refusal: str | None = None
        self._programs: dict[tuple[Any, ...], Program] = {}
        self._plan: HookPlan | None = None
        self._state: ModuleState | None = None
        self._modules: list[nn.Module] = []
        self._lock = threading.Lock()

    def status(self) -> ReplayStatus:
        """What :meth:`run` does now."""
        if not self.enabled:
            return ReplayStatus("off", "every forward runs eagerly", 0)
        if self.refusal is not None:
            return ReplayStatus("refused", f"forwards run eagerly: {self.refusal}", 0)
        return ReplayStatus(
            "on",
            "inference forwards (no autograd, eval mode) replay a recording of the first forward with the "
            "same input signature",
            len(self._programs),
        )

    def reset(self) -> None:
        """Forget recordings and any refusal (the forward is given another chance)."""
        with self._lock:
            self._programs.clear()
            self.refusal = None
            self._state = None

    def run(
        self, runner: HookRunner, forward: Callable[..., Any], plan: HookPlan, args: Args, kwargs: Kwargs
    ) -> tuple[bool, Any]:
        """``(True, output)`` when this forward was replayed or recorded; ``(False, None)``: run it eagerly.

        Args:
            runner: The model's runner; a recording runs on a new one with its settings.
            forward: The model's original forward, bound.
            plan: The hook plan in force; recordings of another plan are dropped.
            args: The forward's positional arguments.
            kwargs: Its keyword arguments.
        """
        if not _replayable_now(runner.model):
            return False, None
        found = input_signature(args, kwargs)
        if found is None:
            return False, None
        signature, tensors = found
        if not self._modules:
            self._modules = runner.user_modules
        if plan is not self._plan or self._state is None or not self._state.unchanged():
            with self._lock:
                self._programs.clear()
                self._plan, self._state = plan, ModuleState.of(self._modules)
        program = self._programs.get(signature)
        if program is not None:
            return True, program(tensors)
        if self.refusal is not None:
            return False, None
        return True, self._record(runner, forward, plan, args, kwargs, signature, tensors)

    def _record(
        self,
        runner: HookRunner,
        forward: Callable[..., Any],
        plan: HookPlan,
        args: Args,
        kwargs: Kwargs,
        signature: tuple[Any, ...],
        tensors: list[Tensor],
    ) -> Any:
        recording = RecordingRunner(
            runner.model, runner.wrap_inputs_fn, runner.wrap_outputs_fn, runner.reporter, runner.weight_cache
        )
        recorder = recording.recorder = Recorder(recording._constant_ids())
        recorder.inputs(tensors)
        before = ModuleState.of(self._modules)
        with _DataDependence(recorder):
            output = recording.run(forward, plan, args, kwargs)
        recorder.output(output)
        if recording.unknown:
            recorder.refuse(f"the forward ran ops the trace did not see (first: {recording.unknown[0]!r})")
        if not before.unchanged():
            changed = before.first_change(self._modules, runner.module_name)
            recorder.refuse(f"the forward changes {changed}, so a replay would not")
        with self._lock:
            if recorder.refusal is not None:
                self.refusal = recorder.refusal
                warnings.warn(
                    f"{type(runner.model).__name__}: replay is enabled but cannot be used, so forwards run "
                    f"eagerly: {recorder.refusal}. model.nncf.enable_replay(False) silences this.",
                    ReplayWarning,
                    stacklevel=4,
                )
            else:
                if len(self._programs) >= MAX_RECORDINGS:
                    del self._programs[next(iter(self._programs))]
                self._programs[signature] = recorder.compile()
        return output


_WATCHED = (
    "_parameters",
    "_buffers",
    "_modules",
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass(frozen=True)
class ModuleState:
    """What a forward's path may depend on in its modules, kept as copies so that a check is cheap.

    Attributes:
        dicts: Each module's ``__dict__``, then its parameter, buffer, submodule and hook dicts (live).
        copies: Their contents when the state was taken.
        scalars: ``(dict, key, tensor)`` for one-element tensors among the values (see :meth:`unchanged`).
    """

    dicts: list[dict[str, Any]]
    copies: list[dict[str, Any]]
    scalars: list[tuple[dict[str, Any], str, Tensor]]

    @classmethod
    def of(cls, modules: Sequence[nn.Module]) -> ModuleState:
        """The state of ``modules`` now."""
        dicts: list[dict[str, Any]] = []
        for module in modules:
            dicts.append(module.__dict__)
            dicts.extend(getattr(module, name) for name in _WATCHED)
        scalars = [(d, k, v) for d in dicts for k, v in d.items() if isinstance(v, Tensor) and v.numel() == 1]
        return cls(dicts, [dict(d) for d in dicts], scalars)

    def unchanged(self) -> bool:
        """Whether every dict still holds the same objects (an attribute assigned, a hook added: changed)."""
        # One C-level comparison: same keys, and values identical or equal.  A tensor that is
        # not the same object compares element-wise, and bool() of that raises unless the
        # tensor has one element: those few are checked for identity.
        try:
            if self.dicts != self.copies:
                return False
        except RuntimeError:
            return False
        return all(d.get(k) is v for d, k, v in self.scalars)

    def first_change(self, modules: Sequence[nn.Module], names: Callable[[nn.Module], str]) -> str:
        """The first of ``modules`` whose state changed since this one was taken, for a message."""
        per_module = len(_WATCHED) + 1
        for i, module in enumerate(modules):
            part = slice(i * per_module, (i + 1) * per_module)
            if not ModuleState(self.dicts[part], self.copies[part], []).unchanged():
                return f"attributes of module {names(module) or '(the root)'!r} ({type(module).__name__})"
        return "module attributes"


def input_signature(args: Args, kwargs: Kwargs) -> tuple[tuple[Any, ...], list[Tensor]] | None:
    """``(signature, tensors)`` of a forward's arguments; None when they cannot be compared cheaply.

    Two calls with equal signatures pass tensors of the same shapes, strides, dtypes,
    devices and ``requires_grad`` in the same structure, and equal other values.
    """
    parts: list[Any] = []
    tensors: list[Tensor] = []
    if not _describe((args, kwargs), parts, tensors):
        return None
    signature = tuple(parts)
    try:
        hash(signature)
    except TypeError:
        return None
    return signature, tensors


def _describe(value: Any, parts: list[Any], tensors: list[Tensor]) -> bool:
    if isinstance(value, Tensor):
        if type(value) not in (Tensor, nn.Parameter):
            return False
        parts.append((value.shape, value.stride(), value.dtype, value.device, value.requires_grad))
        tensors.append(value)
        return True
    if type(value) in _CONTAINERS:
        parts.append((type(value), len(value)))
        return all(_describe(v, parts, tensors) for v in value)
    if type(value) is dict:
        parts.append((dict, tuple(value)))
        return all(_describe(v, parts, tensors) for v in value.values())
    if value is None or type(value) in (bool, int, float, str, torch.dtype, torch.device):
        parts.append((type(value), value))
        return True
    return False


def _replayable_now(model: nn.Module) -> bool:
    return not (
        torch.is_grad_enabled()
        or model.training
        or torch._C._len_torch_function_stack()
        or torch._C._len_torch_dispatch_stack()
        or torch._C._get_tracing_state() is not None
        or torch.compiler.is_compiling()
        or active_tracker() is not None
        or any(getattr(torch_module, name, None) for name in _GLOBAL_HOOKS)
    )


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


def _storage(tensor: Tensor) -> int | None:
    try:
        return int(tensor.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):  # no plain storage (sparse, nested): never in place
        return None


def _holds_tensor(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(
        isinstance(v, Tensor) or (isinstance(v, (*_CONTAINERS, dict)) and _holds_tensor(v)) for v in items
    )


def _label(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)
