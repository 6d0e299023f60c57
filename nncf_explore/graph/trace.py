"""The dynamic tracer: run the model once and record every torch call as a graph node.

Tracing runs the model in eval mode under ``torch.no_grad()`` on mock inputs
built from ``input_info`` (or through the user's ``dummy_forward_fn``).  Data-
dependent control flow is followed, not captured: the graph holds the path the
mock inputs took, which is why the compressed model warns at run time when a
forward executes ops that the trace did not see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.weak import WeakTensorKeyDictionary

from nncf_explore.errors import TraceError
from nncf_explore.graph.attributes import layer_attributes
from nncf_explore.graph.inputs import InputInfo, make_mock_inputs
from nncf_explore.graph.ir import Edge, Graph, Node
from nncf_explore.graph.leaves import Args, Kwargs, flatten_leaves, tensor_leaves
from nncf_explore.graph.ops import category_of
from nncf_explore.graph.tracking import InputsWrapper, OpTracker, OutputsWrapper

DummyForward = Callable[[nn.Module], Any]

_MISSING_WRAP_INPUTS = (
    "dummy_forward_fn was given without wrap_inputs_fn. A custom dummy forward marks the model inputs "
    "itself (with nncf_model_input), so the compressed model needs wrap_inputs_fn(args, kwargs) -> "
    "(args, kwargs) that marks the same inputs in the same order on every real forward. "
    "Pass both, or neither and describe the inputs with input_info."
)


class GraphBuilder(OpTracker):
    """An :class:`OpTracker` that records nodes and edges."""

    def __init__(
        self,
        model: nn.Module,
        wrap_inputs_fn: InputsWrapper | None = None,
        wrap_outputs_fn: OutputsWrapper | None = None,
    ) -> None:
        super().__init__(model, wrap_inputs_fn, wrap_outputs_fn)
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        # Keyed by tensor identity, weakly, so intermediate tensors are freed as the forward goes.
        self._producers: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self._param_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        self._constant_ids = set(self._param_names) | {id(b) for _, b in model.named_buffers()}
        self.last_node: Node | None = None

    def _producer(self, value: Any) -> tuple[int, int] | None:
        if not isinstance(value, torch.Tensor):
            return None
        found: tuple[int, int] | None = self._producers.get(value)  # type: ignore[no-untyped-call]
        return found

    def graph(self) -> Graph:
        """The recorded graph."""
        return Graph(self.nodes, self.edges, root_class=self.root_class)

    def _add_node(
        self, name: str, op: str, leaves: list[Any], params: dict[int, str], attrs: dict[str, Any]
    ) -> Node:
        module = self.current_module
        node = Node(
            id=len(self.nodes),
            name=name,
            op=op,
            category=category_of(op, attrs),
            scope=self.scope,
            module=self.module_name(module),
            module_class="" if module is None or not self.scope else type(module).__name__,
            params=params,
            attrs=attrs,
        )
        for port, leaf in enumerate(leaves):
            producer = self._producer(leaf)
            if producer is not None:
                src, out_port = producer
                self.edges.append(
                    Edge(
                        src,
                        node.id,
                        tuple(leaf.shape),
                        str(leaf.dtype).removeprefix("torch."),
                        out_port,
                        port,
                    )
                )
        self.nodes.append(node)
        self.last_node = node
        return node

    def _register_outputs(self, node: Node, output: Any) -> None:
        for port, tensor in enumerate(tensor_leaves(output)):
            self._producers[tensor] = (node.id, port)

    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        leaves = flatten_leaves(args, kwargs)
        if not is_recorded_call(leaves, self._constant_ids):
            return func(*args, **kwargs)
        name = self.next_name(op)
        try:
            output = func(*args, **kwargs)
        except Exception as exc:
            raise self._error(f"op {op!r} (node {name!r}) raised {type(exc).__name__}: {exc}") from exc
        params = {p: self._param_names[id(v)] for p, v in enumerate(leaves) if id(v) in self._param_names}
        node = self._add_node(name, op, leaves, params, layer_attributes(op, args, kwargs, leaves, params))
        self._register_outputs(node, output)
        return output

    def mark_io(self, op: str, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise TraceError(
                f"{op}() got {type(tensor).__name__}, not a tensor; mark only tensors, e.g. in "
                "wrap_inputs_fn: args = (nncf_model_input(args[0]),)"
            )
        if op == "nncf_model_output" and self._producer(tensor) is None:
            return tensor  # an untraced constant returned by the model is not an output node
        name = self.next_io_name(op)
        saved = self._stack[:]
        self._stack.clear()  # inputs and outputs live in the empty scope
        try:
            node = self._add_node(name, op, [tensor], {}, {"has_weight": False})
        finally:
            self._stack[:] = saved
        self._producers[tensor] = (node.id, 0)
        return tensor

    def _error(self, what: str) -> TraceError:
        module = self.current_module
        where = (
            f"in module {self.module_name(module) or '<root>'!r} ({type(module).__name__})"
            if module is not None
            else "outside any module"
        )
        return TraceError(
            f"tracing failed {where}: {what}. Check that input_info describes the inputs forward() "
            "expects (shape, type long for token ids, keyword for keyword arguments), or pass "
            "dummy_forward_fn (with wrap_inputs_fn) to call the model yourself."
        )


def is_recorded_call(leaves: Sequence[Any], constant_ids: set[int]) -> bool:
    """Whether a call becomes a graph node: it must take a tensor that is not a parameter or buffer.

    The same rule runs in the tracer and in the compressed model's forward, so
    both count call orders identically.
    """
    return any(isinstance(v, torch.Tensor) and id(v) not in constant_ids for v in leaves)


@contextmanager
def eval_no_grad(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode under ``torch.no_grad()``; restore the flags afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training


def trace_model(
    model: nn.Module,
    input_info: InputInfo | None = None,
    *,
    dummy_forward_fn: DummyForward | None = None,
    wrap_inputs_fn: InputsWrapper | None = None,
    wrap_outputs_fn: OutputsWrapper | None = None,
) -> Graph:
    """Trace ``model`` by running it once and return its NNCF-style graph.

    Args:
        model: The model to trace; its weights and training flags are left as they were.
        input_info: NNCF's ``input_info``: a dict or list of dicts with
            ``sample_size``, ``type`` (``"long"`` or float), ``filler``
            (``ones``, ``zeros``, ``random``) and ``keyword``.
        dummy_forward_fn: Calls the model itself instead; it must mark inputs
            with :func:`nncf_model_input`, and requires ``wrap_inputs_fn``.
        wrap_inputs_fn: ``(args, kwargs) -> (args, kwargs)`` marking inputs.
        wrap_outputs_fn: ``output -> output`` marking outputs.

    Returns:
        The graph of the path the mock inputs took through ``model``.

    Raises:
        ValueError: ``dummy_forward_fn`` without ``wrap_inputs_fn``, or neither
            inputs nor a dummy forward.
        TraceError: The forward failed; the message names the module and op.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
        >>> g = trace_model(net, {"sample_size": [1, 3, 16, 16]})
        >>> [n.name for n in g.nodes][1:3]
        ['Sequential/Conv2d[0]/conv2d_0', 'Sequential/ReLU[1]/relu_0']
    """
    if dummy_forward_fn is not None and wrap_inputs_fn is None:
        raise ValueError(_MISSING_WRAP_INPUTS)
    if dummy_forward_fn is None and input_info is None:
        raise ValueError(
            "trace_model needs input_info (for example {'sample_size': [1, 3, 224, 224]}) "
            "or a dummy_forward_fn that calls the model"
        )
    builder = GraphBuilder(model, wrap_inputs_fn, wrap_outputs_fn)
    with eval_no_grad(model), builder:
        try:
            if dummy_forward_fn is not None:
                builder.wrap_root_inputs = False
                dummy_forward_fn(model)
            else:
                args, kwargs = make_mock_inputs(input_info or [], _device_of(model))
                model(*args, **kwargs)
        except TraceError:
            raise
        except Exception as exc:
            after = f" after node {builder.last_node.name!r}" if builder.last_node else ""
            raise builder._error(f"{type(exc).__name__}: {exc}{after}") from exc
    graph = builder.graph()
    if not graph.nodes:
        raise TraceError(
            "tracing recorded no operations: the forward ran no torch op on a model input. "
            "If inputs sit inside containers, pass wrap_inputs_fn to mark them with nncf_model_input."
        )
    return graph


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")
