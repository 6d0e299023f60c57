"""Scoped op tracking: module call stack plus a ``TorchFunctionMode`` that names each call.

:class:`OpTracker` is shared by the tracer (which records a graph) and by the
compressed model's forward (which runs quantizers at the same addresses).
Entering it registers two module forward hooks (global, but acting only on the
model's own modules on the tracking thread) plus two on the root, and pushes the
torch-function mode; leaving it removes them all, even on error.  Nothing in
torch is left changed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from nncf_explore.graph.decompositions import DECOMPOSITIONS
from nncf_explore.graph.leaves import Args, Kwargs, map_tensors
from nncf_explore.graph.ops import CALL_SITE_OPS, IGNORED_OPS, op_name
from nncf_explore.graph.scope import node_name, scope_element

InputsWrapper = Callable[[Args, Kwargs], tuple[Args, Kwargs]]
OutputsWrapper = Callable[[Any], Any]

_active = threading.local()


def active_tracker() -> OpTracker | None:
    """The tracker running on this thread, if any."""
    return getattr(_active, "tracker", None)


def nncf_model_input(tensor: torch.Tensor) -> torch.Tensor:
    """Mark ``tensor`` as a model input (graph node ``/nncf_model_input_{i}``).

    An identity function outside tracing and compressed forwards, so it can stay
    in user code.

    Examples:
        >>> import torch
        >>> t = torch.ones(2)
        >>> nncf_model_input(t) is t
        True
    """
    tracker = active_tracker()
    return tensor if tracker is None else tracker.mark_io("nncf_model_input", tensor)


def nncf_model_output(tensor: torch.Tensor) -> torch.Tensor:
    """Mark ``tensor`` as a model output (graph node ``/nncf_model_output_{i}``); identity otherwise."""
    tracker = active_tracker()
    return tensor if tracker is None else tracker.mark_io("nncf_model_output", tensor)


_PLAIN, _IGNORED, _DECOMPOSED, _BY_CALL_SITE = range(4)


class _Mode(TorchFunctionMode):
    """Names every torch call for its tracker; what a function needs is worked out once and kept."""

    def __init__(self, tracker: OpTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self._kinds: dict[Any, tuple[int, str]] = {}
        self._call_sites: dict[tuple[Any, Any, int, bool], str] = {}

    def _kind(self, func: Callable[..., Any]) -> tuple[int, str]:
        kind = _classify(func)
        with suppress(TypeError):  # an unhashable callable is classified at every call
            self._kinds[func] = kind
        return kind

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Args = (),
        kwargs: Kwargs | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        try:
            kind, op = self._kinds[func]
        except (KeyError, TypeError):
            kind, op = self._kind(func)
        if kind == _IGNORED:
            return self.tracker.on_ignored(func, args, kwargs)
        if kind == _DECOMPOSED:
            with self:  # torch popped this mode for the handler; trace the insides too
                return DECOMPOSITIONS[func](*args, **kwargs)
        if kind == _BY_CALL_SITE:
            # The name depends on the Python operator at the call site (``+=`` is ``__iadd__``)
            # or on keyword arguments: pure functions of these keys, so they are kept too.
            caller = sys._getframe(1)
            site = (func, caller.f_code, caller.f_lasti, bool(kwargs.get("inplace")))
            op = self._call_sites.get(site, "")
            if not op:
                op = self._call_sites[site] = op_name(func, kwargs, caller)
        return self.tracker.on_op(func, op, args, kwargs)


def _classify(func: Callable[..., Any]) -> tuple[int, str]:
    name = getattr(func, "__name__", None)
    if name in IGNORED_OPS:
        return _IGNORED, ""
    try:
        if func in DECOMPOSITIONS:
            return _DECOMPOSED, ""
    except TypeError:
        pass
    if name in CALL_SITE_OPS:
        return _BY_CALL_SITE, ""
    return _PLAIN, op_name(func, {}, None)


class OpTracker:
    """Names torch calls ``{scope}/{op}_{call_order}`` while active; subclasses act on them.

    Args:
        model: The module whose submodules define scopes.
        wrap_inputs_fn: Marks inputs of a root call with :func:`nncf_model_input`;
            by default every tensor argument is marked, in order.
        wrap_outputs_fn: Marks outputs; by default every tensor in the output.
    """

    def __init__(
        self,
        model: nn.Module,
        wrap_inputs_fn: InputsWrapper | None = None,
        wrap_outputs_fn: OutputsWrapper | None = None,
    ) -> None:
        self.model = model
        self.wrap_inputs_fn = wrap_inputs_fn
        self.wrap_outputs_fn = wrap_outputs_fn
        self.root_class = type(model).__name__
        self._fqn = {id(m): name for name, m in model.named_modules()}
        self._modules_by_fqn = dict(model.named_modules())
        self._relative: dict[tuple[int, int], str] = {}
        self._stack: list[tuple[nn.Module, str]] = []
        self._counters: dict[tuple[str, str], int] = {}
        self._io_counters: dict[str, int] = {}
        self._handles: list[RemovableHandle] = []
        self._tracked_ids: frozenset[int] = frozenset()
        self._thread = threading.get_ident()
        self._mode = _Mode(self)
        self._previous: OpTracker | None = None
        self.wrap_root_inputs = True

    # -- context management ------------------------------------------------------
    def __enter__(self) -> OpTracker:
        self._counters.clear()
        self._io_counters.clear()
        self._stack.clear()
        self._tracked_ids = frozenset(map(id, self._modules_by_fqn.values()))
        # Two global module hooks for the duration of the call track every module's scope:
        # far cheaper than a pair of hooks per module, registered and removed per forward.
        # They act only on this tracker's own modules, on the thread it runs on; the root
        # module's hooks wrap the inputs and outputs.
        self._handles.append(register_module_forward_pre_hook(self._pre_hook))
        self._handles.append(register_module_forward_hook(self._post_hook, always_call=True))
        if self.root_hooks:
            self._handles.append(self.model.register_forward_pre_hook(self._root_pre_hook, with_kwargs=True))
            self._handles.append(self.model.register_forward_hook(self._root_post_hook, always_call=True))
        self._thread = threading.get_ident()
        self._previous = active_tracker()
        _active.tracker = self
        try:
            self._mode.__enter__()  # type: ignore[no-untyped-call]
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._mode.__exit__(exc_type, exc, tb)  # type: ignore[no-untyped-call]
        finally:
            self._release()

    def _release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        _active.tracker = self._previous
        self._stack.clear()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Run a block without tracking (the mode is popped, hooks stay)."""
        with torch.overrides._pop_mode_temporarily():
            yield

    # -- scopes ------------------------------------------------------------------
    @property
    def scope(self) -> str:
        """Scope of the innermost running module (``""`` outside the model)."""
        return self._stack[-1][1] if self._stack else ""

    @property
    def current_module(self) -> nn.Module | None:
        """The innermost running module."""
        return self._stack[-1][0] if self._stack else None

    def module_name(self, module: nn.Module | None) -> str:
        """Fully qualified name of ``module`` in the model (``""`` for the root or unknown)."""
        return "" if module is None else self._fqn.get(id(module), "")

    def _relative_scope(self, parent: nn.Module, child: nn.Module) -> str:
        key = (id(parent), id(child))
        cached = self._relative.get(key)
        if cached is not None:
            return cached
        parent_name = self._fqn.get(id(parent))
        child_name = self._fqn.get(id(child))
        elements: list[str] = []
        if (
            parent_name is not None
            and child_name is not None
            and child_name.startswith(parent_name + "." if parent_name else "")
        ):
            path = child_name[len(parent_name) + 1 :] if parent_name else child_name
            prefix = parent_name
            for part in path.split("."):
                prefix = f"{prefix}.{part}" if prefix else part
                elements.append(scope_element(type(self._modules_by_fqn[prefix]).__name__, part))
        else:
            elements.append(scope_element(type(child).__name__, None))
        self._relative[key] = "/".join(elements)
        return self._relative[key]

    def push_module(self, module: nn.Module) -> None:
        """Enter ``module``'s scope."""
        if self._stack:
            parent, parent_scope = self._stack[-1]
            scope = f"{parent_scope}/{self._relative_scope(parent, module)}"
        else:
            scope = type(module).__name__
        self._stack.append((module, scope))

    def pop_module(self) -> None:
        """Leave the innermost scope."""
        if self._stack:
            self._stack.pop()

    root_hooks = True
    """False for trackers that start the root call themselves (``run_root``): they leave the model's
    own hook dicts untouched, so other threads see no change to the model while they run."""

    exclusive = False
    """True: module calls count only while this tracker is the active one on its thread (not
    while another tracker nested inside it runs)."""

    def _tracks(self, module: nn.Module) -> bool:
        """Whether a module call is this tracker's: one of its modules, on the thread it runs on."""
        if id(module) not in self._tracked_ids:
            return False
        if getattr(_active, "tracker", None) is self:
            return True
        return not self.exclusive and threading.get_ident() == self._thread

    # The two global hooks see every module call in the process while the tracker is entered.
    def _pre_hook(self, module: nn.Module, args: Args) -> None:
        if self._tracks(module):
            self.push_module(module)

    def _post_hook(self, module: nn.Module, args: Args, output: Any) -> None:
        if self._tracks(module):
            self.pop_module()

    def _root_pre_hook(self, module: nn.Module, args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs] | None:
        # Runs after the global hook pushed the root's scope: a root call has a stack of one.
        is_root_call = len(self._stack) == 1 and self._tracks(module)
        if is_root_call and self.wrap_root_inputs:
            return self.wrap_inputs(args, kwargs)
        return None

    def _root_post_hook(self, module: nn.Module, args: Args, output: Any) -> Any:
        if not self._stack and self._tracks(module):
            return self.wrap_outputs(output)
        return None

    # -- naming --------------------------------------------------------------------
    def next_name(self, op: str) -> str:
        """Reserve the next address for ``op`` in the current scope."""
        stack = self._stack
        scope = stack[-1][1] if stack else ""
        key = (scope, op)
        order = self._counters.get(key, 0)
        self._counters[key] = order + 1
        return node_name(scope, op, order)

    def next_io_name(self, op: str) -> str:
        """Reserve ``/nncf_model_input_{i}`` or ``/nncf_model_output_{i}``."""
        order = self._io_counters.get(op, 0)
        self._io_counters[op] = order + 1
        return node_name("", op, order)

    def wrap_inputs(self, args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
        """Mark a root call's inputs: the user's ``wrap_inputs_fn``, else every top-level tensor."""
        if self.wrap_inputs_fn is not None:
            return self.wrap_inputs_fn(args, kwargs)
        new_args = tuple(nncf_model_input(a) if isinstance(a, torch.Tensor) else a for a in args)
        new_kwargs = {k: nncf_model_input(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        return new_args, new_kwargs

    def wrap_outputs(self, output: Any) -> Any:
        """Mark a root call's outputs: the user's ``wrap_outputs_fn``, else every tensor."""
        if self.wrap_outputs_fn is not None:
            return self.wrap_outputs_fn(output)
        return map_tensors(output, nncf_model_output)

    # -- subclass interface --------------------------------------------------------
    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        """Handle one torch call; the default just runs it."""
        return func(*args, **kwargs)

    def on_ignored(self, func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        """Handle a torch call that never becomes a node (``size``, ``item``, ...); the default runs it."""
        return func(*args, **kwargs)

    def mark_io(self, op: str, tensor: torch.Tensor) -> torch.Tensor:
        """Handle :func:`nncf_model_input`/:func:`nncf_model_output`; the default is identity."""
        return tensor
