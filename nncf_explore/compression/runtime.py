"""Running a compressed model: quantizers fire at the traced graph's op addresses.

A :class:`HookRunner` is the tracer's :class:`~nncf_explore.graph.tracking.OpTracker`
with actions instead of records.  Every call that the tracer would have
recorded (the same :func:`~nncf_explore.graph.trace.is_recorded_call` rule, so
call orders match) gets the same ``{scope}/{op}_{k}`` name, and the runner looks
that name up in a :class:`~nncf_explore.compression.hook_plan.HookPlan`:

* before the call, arguments that are quantized parameters are replaced by
  their weight quantizer's output (by ``id()``, so a parameter is quantized in
  any op it reaches, LSTM weight lists included), and pre-hook activation
  quantizers replace the tensors at their input ports;
* after the call, a post-hook quantizer replaces the output (its first tensor
  for ops returning tuples: output port 0, as the tracer numbers ports).

The runner also collects what ran differently from the trace, for
:mod:`~nncf_explore.compression.divergence` to warn about.  Quantized weights are
reused across inference forwards through :mod:`~nncf_explore.compression.weight_cache`.
Range-statistics collection uses the same :class:`ModelTracker` base, so its
names match too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import torch
from torch import Tensor, nn

from nncf_explore.compression.divergence import DivergenceReporter
from nncf_explore.compression.hook_plan import HookPlan
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.weight_cache import WeightCache, needs_autograd, state_key
from nncf_explore.graph.leaves import Args, Kwargs, flatten_leaves, replace_leaves
from nncf_explore.graph.trace import is_recorded_call
from nncf_explore.graph.tracking import InputsWrapper, OpTracker, OutputsWrapper

Forward = Callable[..., Any]
INTERFACE_NAME = "_nncf"
"""Attribute of the compressed model holding the quantizer modules (NNCF's name)."""


def run_root(tracker: OpTracker, model: nn.Module, forward: Forward, args: Args, kwargs: Kwargs) -> Any:
    """Call ``forward`` as the root module call of ``tracker``: root scope, wrapped inputs and outputs.

    The compressed model's own ``__call__`` has already run the root's module
    hooks by the time its forward starts, so the tracker does what its hooks
    would have done for the root: push the root scope, mark the inputs, and
    mark the outputs after leaving the scope.
    """
    tracker.push_module(model)
    try:
        args, kwargs = tracker.wrap_inputs(args, kwargs)
        output = forward(*args, **kwargs)
    finally:
        tracker.pop_module()
    return tracker.wrap_outputs(output)


def original_forward(model: nn.Module) -> Forward:
    """The model's forward without quantizers: the class forward of a compressed model, bound to it."""
    interface = model._modules.get(INTERFACE_NAME)
    unbound = getattr(interface, "original_forward", None)
    if unbound is None:
        return model.forward
    bound: Forward = unbound.__get__(model)
    return bound


def replace_first_tensor(value: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``value`` with ``fn`` applied to its first tensor (output port 0), containers rebuilt."""
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, list | tuple):
        items = list(value)
        for i, item in enumerate(items):
            new = replace_first_tensor(item, fn)
            if new is not item:
                items[i] = new
                if hasattr(value, "_fields"):
                    return type(value)(*items)
                return type(value)(items) if isinstance(value, list) else tuple(items)
    return value


class ModelTracker(OpTracker):
    """An :class:`OpTracker` for a model that may be compressed and shared across threads.

    Two additions to the base tracker.  The interface module and its quantizers
    are ours, not the user's, so they get no scope.  And a module call counts only
    while this tracker is the active one on its thread: a compressed model called
    inside another tracked forward leaves that tracker's scopes alone.
    """

    exclusive = True
    root_hooks = False  # the root call is started by run_root, which does what those hooks would

    def __init__(
        self,
        model: nn.Module,
        wrap_inputs_fn: InputsWrapper | None = None,
        wrap_outputs_fn: OutputsWrapper | None = None,
    ) -> None:
        super().__init__(model, wrap_inputs_fn, wrap_outputs_fn)
        prefix = INTERFACE_NAME + "."
        self._modules_by_fqn = {
            k: m for k, m in self._modules_by_fqn.items() if k != INTERFACE_NAME and not k.startswith(prefix)
        }
        self.user_modules = list(self._modules_by_fqn.values())
        self._tensor_dicts = [d for m in self.user_modules for d in (m._parameters, m._buffers)]

    def _constant_ids(self) -> set[int]:
        """``id()`` of every parameter and buffer of the user's modules, as they are now."""
        return {id(t) for d in self._tensor_dicts for t in d.values()}


class HookRunner(ModelTracker):
    """Applies a :class:`HookPlan` while the compressed model's forward runs.

    One runner serves many forwards of one model on one thread; the plan is
    passed per call, so :func:`~nncf_explore.compression.model.apply_setup` needs
    no new runner.

    Args:
        model: The compressed model.
        wrap_inputs_fn: As for tracing; must mark the same inputs in the same order.
        wrap_outputs_fn: As for tracing.
        reporter: Collects divergence warnings for this model.
        weight_cache: Quantized weights kept across inference forwards.
    """

    def __init__(
        self,
        model: nn.Module,
        wrap_inputs_fn: InputsWrapper | None,
        wrap_outputs_fn: OutputsWrapper | None,
        reporter: DivergenceReporter,
        weight_cache: WeightCache,
    ) -> None:
        super().__init__(model, wrap_inputs_fn, wrap_outputs_fn)
        self.reporter = reporter
        self.weight_cache = weight_cache
        self.running = False
        self._plan = HookPlan({}, {}, {}, frozenset(), {})
        self._constants: set[int] = set()
        self._weights: dict[int, tuple[str, nn.Module]] = {}
        self._quantized: dict[int, Tensor] = {}
        self._executed: set[str] = set()
        self._unknown: list[str] = []
        self._owners: dict[str, tuple[nn.Module, str]] = {}
        self._jit_tracing = False

    @property
    def unknown(self) -> list[str]:
        """Names of the last forward's ops that are not in the traced graph."""
        return self._unknown

    def run(self, forward: Forward, plan: HookPlan, args: Args, kwargs: Kwargs) -> Any:
        """Run ``forward`` (the model's original forward) with the plan's quantizers."""
        self._begin(plan)
        self.running = True
        try:
            with self:
                output = run_root(self, self.model, forward, args, kwargs)
        finally:
            self.running = False
            self._quantized.clear()
        self.reporter.report(plan, self._executed, self._unknown)
        return output

    def _begin(self, plan: HookPlan) -> None:
        self._plan = plan
        self._constants = self._constant_ids()
        self._executed = set()
        self._unknown = []
        self._weights = {}
        for fqn, quantizer in plan.weights.items():
            owner, name = self._weight_owner(fqn)
            self._weights[id(owner._parameters[name])] = (fqn, quantizer)
        self._jit_tracing = torch._C._get_tracing_state() is not None
        if self.model.training and self.weight_cache.entries:
            self.weight_cache.clear()

    def _weight_owner(self, fqn: str) -> tuple[nn.Module, str]:
        # Looked up by name every forward (a parameter may be reassigned), through a cached owner.
        found = self._owners.get(fqn)
        if found is None or found[1] not in found[0]._parameters:
            module_name, _, name = fqn.rpartition(".")
            owner = self.model.get_submodule(module_name)
            self.model.get_parameter(fqn)  # raises a clear AttributeError if it is gone
            found = self._owners[fqn] = (owner, name)
        return found

    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        leaves = flatten_leaves(args, kwargs)
        if not is_recorded_call(leaves, self._constants) or (
            self._jit_tracing and _traced_size_arithmetic(leaves, self._constants)
        ):
            return self.invoke(func, args, kwargs)
        name = self.next_name(op)
        plan = self._plan
        if name not in plan.graph_names:
            self._unknown.append(name)
        replacements = None
        if self._weights:
            weights = self._weights
            for port, leaf in enumerate(leaves):
                if id(leaf) in weights:
                    replacements = replacements or {}
                    replacements[port] = self.quantized_weight(leaf)
        pre = plan.pre.get(name)
        if pre is not None:
            self._executed.add(name)
            replacements = replacements or {}
            for port, quantizer in pre:
                leaf = leaves[port]
                if isinstance(leaf, Tensor):
                    replacements[port] = self.quantize(quantizer, leaf, owned=False)
        if replacements:
            args, kwargs = replace_leaves(args, kwargs, replacements)
        output = self.invoke(func, args, kwargs)
        post = plan.post.get(name)
        if post is not None:
            self._executed.add(name)
            owned = isinstance(output, Tensor) and _is_fresh(
                output, leaves
            )  # apply_quantizer checks the rest
            output = replace_first_tensor(output, partial(self.quantize, post, owned=owned))
        return output

    # The three actions of a forward, as methods so that recording (recording.py) sees each one.
    def invoke(self, func: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        """Run one of the model's own torch calls."""
        return func(*args, **kwargs)

    def quantize(self, quantizer: nn.Module, x: Tensor, *, owned: bool) -> Tensor:
        """Apply an activation quantizer (see :func:`apply_quantizer`)."""
        return apply_quantizer(quantizer, x, owned=owned)

    def quantized_weight(self, param: Tensor) -> Tensor:
        """A parameter's quantized value: computed once per forward, and kept across inference forwards."""
        done = self._quantized.get(id(param))
        if done is None:
            fqn, quantizer = self._weights[id(param)]
            done = self._quantized[id(param)] = cached_weight(
                self.weight_cache, fqn, quantizer, param, training=self.model.training
            )
        return done

    def mark_io(self, op: str, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, Tensor):
            return tensor
        if op == "nncf_model_output" and id(tensor) in self._constants:
            return tensor  # the tracer gives a returned parameter or buffer no output node either
        name = self.next_io_name(op)
        if name not in self._plan.graph_names:
            self._unknown.append(name)
        quantizer = self._plan.post.get(name)
        if quantizer is None:
            return tensor
        self._executed.add(name)
        with self.paused():
            return self.quantize(quantizer, tensor, owned=False)


def apply_quantizer(quantizer: nn.Module, x: Tensor, *, owned: bool) -> Tensor:
    """``quantizer(x)``; ``owned``: ``x`` is an op's fresh output, so our quantizers may overwrite it."""
    if owned and is_plain_quantizer(quantizer):  # (a replay decided ``owned`` before any hook was added)
        return cast(BaseQuantizer, quantizer).quantize_owned(x)
    result: Tensor = _call(quantizer, x)
    return result


def cached_weight(
    cache: WeightCache, fqn: str, quantizer: nn.Module, param: Tensor, *, training: bool
) -> Tensor:
    """``quantizer(param)``, reused from ``cache`` in inference while nothing it depends on changed."""
    if not cache.enabled or training or needs_autograd(param, quantizer):
        result: Tensor = _call(quantizer, param)
        return result
    key = state_key(param, quantizer)
    entry = cache.entries.get(fqn)
    if entry is not None and entry[0] == key:
        return entry[1]
    result = _call(quantizer, param)
    cache.entries[fqn] = (key, result)
    return result


def _traced_size_arithmetic(leaves: list[Any], constants: set[int]) -> bool:
    # Under torch.jit tracing (ONNX export) ``x.shape[0]`` is a 0-dim integer tensor, so
    # arithmetic on sizes reaches the mode as tensor ops that the graph, traced eagerly,
    # never saw; counting them would shift the call orders quantizers are attached to.
    tensors = [v for v in leaves if isinstance(v, Tensor) and id(v) not in constants]
    return bool(tensors) and all(t.dim() == 0 and not t.is_floating_point() for t in tensors)


def is_plain_quantizer(module: nn.Module) -> bool:
    """Whether ``module`` is one of our quantizers with no hooks and no replaced ``forward``.

    Such a module is called through ``forward`` directly, which skips ``nn.Module.__call__``
    (a measurable cost per quantizer); any other module, or one that export replaced or a
    user hooked, is called as a module.
    """
    return (
        isinstance(module, BaseQuantizer)
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and "forward" not in module.__dict__
    )


def _call(module: nn.Module, x: Tensor) -> Any:
    return module.forward(x) if is_plain_quantizer(module) else module(x)


def _is_fresh(output: Tensor, leaves: list[Any]) -> bool:
    """Whether an op's output is memory of its own: not a view, and no input's storage."""
    storage = storage_address(output)
    if storage is None or output._is_view():
        return False
    return not any(isinstance(v, Tensor) and storage_address(v) == storage for v in leaves)


def storage_address(tensor: Tensor) -> int | None:
    """Address of ``tensor``'s storage (shared by its views); None for tensors without a plain one."""
    try:
        return int(tensor.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):  # sparse, nested
        return None
