"""Replayed inference forwards: the compressed model as straight-line code (opt-in).

``model.nncf.enable_replay()`` turns it on.  The first inference forward for an
input signature runs eagerly, as every forward does, and is recorded: each torch
call the model made, each quantizer and each quantized weight, in order, becomes
one line of a generated Python function (:mod:`.recording`).  Later forwards with
the same signature run that function: no Python forward, no module calls, no
torch-function mode, no per-op lookups; the same calls on the same tensors, so the
same bits.

That holds only while the recorded path is the one the forward would take, so a
recording is refused, with the reason, when the path may depend on something a
replay cannot see: tensor values read into Python (``item``, ``if x.sum() > 0``),
ops whose output shape depends on data (``nonzero``), module attributes written by
the forward, tensors from outside the model, autocast switched inside the forward,
ops the trace did not see.  And a recording runs only while nothing it was recorded
under has changed: autograd off, eval mode, no capture and no other torch mode
active, no global module hooks, the same inputs (structure, shapes, strides, dtypes,
devices, non-tensor values) and autocast state, the same module
state (attributes, parameters, buffers, submodules, training flags, hooks) and the
same quantizer setup.  Anything else runs eagerly.

What no check can see is why it is opt-in: the forward's own Python side effects
(printing, appending to a list) happen on recording forwards only, and decisions
on state outside the model (globals, Python's ``random``) are frozen as recorded.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.modules.module as torch_module
from torch import Tensor, nn

from nncf_explore.compression.hook_plan import HookPlan
from nncf_explore.compression.recording import (
    DataDependence,
    Program,
    Recorder,
    RecordingRunner,
    autocast_state,
)
from nncf_explore.compression.runtime import HookRunner
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.tracking import active_tracker

MAX_RECORDINGS = 8
"""Recordings kept per model (one per input signature); the oldest goes first.  A recording
costs about 1.5 eager forwards, so once this many have been dropped without ever being
replayed (input shapes that keep changing), new signatures run eagerly instead."""

_CONTAINERS = (list, tuple)
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


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

    state: Literal["off", "on", "refused"]
    detail: str
    recordings: int


class Replay:
    """One compressed model's recordings, by input signature, and whether to use them."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        self.refusal: str | None = None
        self._programs: dict[tuple[Any, ...], Program] = {}
        self._plan: HookPlan | None = None
        self._state: ModuleState | None = None
        self._modules: list[nn.Module] = []
        self._changed_once = False
        self._replayed: set[tuple[Any, ...]] = set()
        self._unused_drops = 0
        self._lock = threading.Lock()

    def status(self) -> ReplayStatus:
        """What :meth:`run` does now."""
        if not self.enabled:
            return ReplayStatus("off", "every forward runs eagerly", 0)
        if self.refusal is not None:
            return ReplayStatus("refused", f"forwards run eagerly: {self.refusal}", 0)
        detail = (
            "inference forwards (no autograd, eval mode) replay a recording of the first forward with the "
            "same input signature"
        )
        if self._unused_drops >= MAX_RECORDINGS:
            detail += (
                f"; {self._unused_drops} recordings were dropped without being replayed (input shapes keep "
                "changing), so forwards with a new signature now run eagerly"
            )
        return ReplayStatus("on", detail, len(self._programs))

    def reset(self) -> None:
        """Forget recordings and any refusal (the forward is given another chance)."""
        with self._lock:
            self._programs.clear()
            self.refusal = None
            self._state = None
            self._changed_once = False
            self._replayed.clear()
            self._unused_drops = 0

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
        signature += (autocast_state(),)
        if not self._modules:
            self._modules = runner.user_modules
        if plan is not self._plan or self._state is None or not self._state.unchanged():
            with self._lock:
                self._programs.clear()
                self._plan, self._state = plan, ModuleState.of(self._modules)
        program = self._programs.get(signature)
        if program is not None:
            self._replayed.add(signature)
            return True, program(tensors)
        if self.refusal is not None or self._unused_drops >= MAX_RECORDINGS:
            return False, None
        return True, self._record(runner, forward, plan, args, kwargs, signature, tensors, self._state)

    def _record(
        self,
        runner: HookRunner,
        forward: Callable[..., Any],
        plan: HookPlan,
        args: Args,
        kwargs: Kwargs,
        signature: tuple[Any, ...],
        tensors: list[Tensor],
        before: ModuleState,
    ) -> Any:
        recording = RecordingRunner(
            runner.model, runner.wrap_inputs_fn, runner.wrap_outputs_fn, runner.reporter, runner.weight_cache
        )
        recorder = recording.recorder = Recorder(recording._constant_ids())
        recorder.inputs(tensors)
        with DataDependence(recorder):
            output = recording.run(forward, plan, args, kwargs)
        recorder.output(output)
        if recording.unknown:
            recorder.refuse(f"the forward ran ops the trace did not see (first: {recording.unknown[0]!r})")
        if not before.unchanged():
            if not self._changed_once:
                # A first forward that sets attributes (a lazily built cache) is let off once:
                # the next one, which finds them set, is recorded instead.
                self._changed_once = True
                return output
            changed = before.first_change(self._modules, runner.module_name)
            recorder.refuse(f"the forward changes {changed} on every call, so a replay would not")
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
                    oldest = next(iter(self._programs))
                    del self._programs[oldest]
                    if oldest not in self._replayed:
                        self._unused_drops += 1
                    self._replayed.discard(oldest)
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
