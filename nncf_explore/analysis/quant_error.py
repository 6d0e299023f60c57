"""Quantization error per quantizer and per node, measured against the FP32 forward.

Two forwards per batch, side by side at the traced addresses:

* the **FP32 pass** runs the model's original forward with no quantizer.  At each
  activation quantizer's position it applies that quantizer to the FP32 tensor,
  which isolates the quantizer's own error (SQNR, relative MSE), and it keeps
  every node's output;
* the **quantized pass** runs the compressed forward and compares each node's
  output with the FP32 one.  That error includes everything upstream: it is the
  error that accumulates through the network.

Weight quantizers need no data: their error is that of ``Q(W)`` against ``W``.
A small sample of every quantized tensor is kept for histograms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.divergence import DivergenceReporter
from nncf_explore.compression.init_data import init_batches, model_device
from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.runtime import HookRunner, ModelTracker, original_forward, run_root
from nncf_explore.compression.weight_cache import WeightCache
from nncf_explore.graph.leaves import Args, Kwargs, flatten_leaves, tensor_leaves
from nncf_explore.graph.trace import eval_no_grad, is_recorded_call

SAMPLE_SIZE = 2048
"""Values kept per quantized tensor for histograms: enough for a smooth 64-bin histogram."""


@dataclass
class _Accumulator:
    """Sums of squares over batches; float64 so that large activations cannot overflow."""

    signal: float = 0.0
    noise: float = 0.0
    count: int = 0
    sample: list[Tensor] = field(default_factory=list)
    quantized_sample: list[Tensor] = field(default_factory=list)

    def add(self, reference: Tensor, value: Tensor, *, keep_sample: bool = False) -> None:
        ref = reference.detach().to(torch.float64)
        diff = value.detach().to(torch.float64) - ref
        self.signal += float(ref.square().sum())
        self.noise += float(diff.square().sum())
        self.count += ref.numel()
        if keep_sample and sum(s.numel() for s in self.sample) < SAMPLE_SIZE:
            idx = _sample_indices(ref.numel(), SAMPLE_SIZE)
            self.sample.append(reference.detach().flatten()[idx].float().cpu())
            self.quantized_sample.append(value.detach().flatten()[idx].float().cpu())


def _sample_indices(numel: int, size: int) -> Tensor:
    # Evenly strided rather than random: the same data gives the same histogram every run.
    step = max(1, numel // size)
    return torch.arange(0, numel, step)[:size]


def sqnr_db(signal: float, noise: float) -> float:
    """Signal-to-quantization-noise ratio in dB; ``inf`` when there is no noise.

    Examples:
        >>> sqnr_db(100.0, 1.0)
        20.0
        >>> sqnr_db(1.0, 0.0)
        inf
    """
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _relative_mse(signal: float, noise: float) -> float:
    if noise <= 0.0:
        return 0.0
    return noise / signal if signal > 0.0 else math.inf


@dataclass(frozen=True)
class TensorError:
    """The error one quantizer adds to the tensor it quantizes.

    Attributes:
        quantizer_id: NNCF's quantizer id (``...|WEIGHT``, ``...|OUTPUT``, ``...|INPUT1``).
        kind: ``"weight"`` or ``"activation"``.
        node: The node the quantizer is attached to.
        sqnr_db: ``10 log10(‖x‖² / ‖Q(x) − x‖²)``; higher is better, ``inf`` if exact.
        relative_mse: ``‖Q(x) − x‖² / ‖x‖²``.
        clip_range: ``(low, high)`` of the quantizer's range (outermost channel ends if per channel).
        sample: FP32 values of the tensor, for a histogram.
        quantized_sample: The same values after quantization.
    """

    quantizer_id: str
    kind: str
    node: str
    sqnr_db: float
    relative_mse: float
    clip_range: tuple[float, float]
    sample: tuple[float, ...] = ()
    quantized_sample: tuple[float, ...] = ()


@dataclass(frozen=True)
class NodeError:
    """How far a node's output in the compressed model is from FP32 (all upstream error included).

    Attributes:
        node: The node name.
        sqnr_db: SQNR of the compressed output against the FP32 output.
        relative_mse: ``‖y_q − y‖² / ‖y‖²``.
    """

    node: str
    sqnr_db: float
    relative_mse: float


@dataclass(frozen=True)
class QuantizationErrorReport:
    """Quantization error of a compressed model, by quantizer id and by node name.

    Attributes:
        tensors: Quantizer id -> the error that quantizer adds.
        nodes: Node name -> the error of that node's output against FP32.
        num_batches: Batches the activation measures saw.
    """

    tensors: Mapping[str, TensorError]
    nodes: Mapping[str, NodeError]
    num_batches: int

    def quantizers_at(self, node: str) -> list[TensorError]:
        """The errors of the quantizers attached to ``node`` (weights first)."""
        found = [e for e in self.tensors.values() if e.node == node]
        return sorted(found, key=lambda e: (e.kind != "weight", e.quantizer_id))

    def worst(self, k: int = 10) -> list[TensorError]:
        """The ``k`` quantizers with the lowest SQNR."""
        return sorted(self.tensors.values(), key=lambda e: e.sqnr_db)[:k]


def _clip_range(quantizer: BaseQuantizer) -> tuple[float, float]:
    with torch.no_grad():
        low, span = quantizer.quantization_range()
        return float(low.min()), float((low + span).max())


class _Fp32Pass(ModelTracker):
    """The original forward: quantizers applied to FP32 tensors at their positions, outputs kept."""

    def __init__(self, model: nn.Module, positions: Mapping[tuple[str, int | None], list[str]]) -> None:
        interface = compression_interface(model)
        super().__init__(model, interface.wrap_inputs_fn, interface.wrap_outputs_fn)
        self._constants = self._constant_ids()
        self._interface = interface
        self._positions = positions
        self.accumulators: dict[str, _Accumulator] = {}
        self.outputs: dict[str, Tensor] = {}

    def _measure(self, name: str, port: int | None, value: Any) -> None:
        tensor = next(tensor_leaves(value), None)
        if tensor is None or not tensor.is_floating_point():
            return
        for qid in self._positions.get((name, port), ()):
            quantizer = self._interface.quantizer(qid)
            if not quantizer.is_enabled:
                continue
            acc = self.accumulators.setdefault(qid, _Accumulator())
            acc.add(tensor, quantizer(tensor), keep_sample=True)

    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        leaves = flatten_leaves(args, kwargs)
        if not is_recorded_call(leaves, self._constants):
            return func(*args, **kwargs)
        name = self.next_name(op)
        for port, leaf in enumerate(leaves):
            self._measure(name, port, leaf)  # before the call: in-place ops overwrite their input
        output = func(*args, **kwargs)
        self._measure(name, None, output)
        first = next(tensor_leaves(output), None)
        if first is not None and first.is_floating_point():
            self.outputs[name] = first.detach().clone()  # a later in-place op may overwrite it
        return output

    def mark_io(self, op: str, tensor: Tensor) -> Tensor:
        if not isinstance(tensor, Tensor) or (op == "nncf_model_output" and id(tensor) in self._constants):
            return tensor
        with self.paused():
            self._measure(self.next_io_name(op), None, tensor)
        return tensor


class _QuantizedPass(HookRunner):
    """The compressed forward, comparing every node's output with the FP32 pass's."""

    def __init__(self, model: nn.Module, reference: Mapping[str, Tensor]) -> None:
        interface = compression_interface(model)
        super().__init__(
            model, interface.wrap_inputs_fn, interface.wrap_outputs_fn, DivergenceReporter(), WeightCache()
        )
        self.weight_cache.enabled = False
        self.reference = reference
        self.accumulators: dict[str, _Accumulator] = {}
        self._current: str | None = None

    def next_name(self, op: str) -> str:
        name = super().next_name(op)
        self._current = name
        return name

    def on_op(self, func: Callable[..., Any], op: str, args: Args, kwargs: Kwargs) -> Any:
        self._current = None
        output = super().on_op(func, op, args, kwargs)
        name, self._current = self._current, None
        ref = self.reference.get(name) if name is not None else None
        first = next(tensor_leaves(output), None)
        if ref is not None and first is not None and first.shape == ref.shape:
            self.accumulators.setdefault(name, _Accumulator()).add(ref, first)
        return output

    def quantize(self, quantizer: nn.Module, x: Tensor, *, owned: bool) -> Tensor:
        return super().quantize(quantizer, x, owned=False)  # never overwrite: the pass compares values


def _positions(points: Iterable[QuantizationPoint], canonical: Callable[[str], str]) -> dict[Any, list[str]]:
    positions: dict[tuple[str, int | None], list[str]] = {}
    for point in points:
        if point.kind == "activation":
            positions.setdefault((canonical(point.target_node), point.input_port), []).append(point.id)
    return positions


def _weight_errors(model: nn.Module) -> dict[str, TensorError]:
    interface = compression_interface(model)
    errors: dict[str, TensorError] = {}
    with torch.no_grad():
        for point in interface.setup.weights:
            quantizer = interface.quantizer(point.id)
            if point.weight_param is None or not quantizer.is_enabled:
                continue
            weight = model.get_parameter(point.weight_param)
            acc = _Accumulator()
            acc.add(weight, quantizer(weight), keep_sample=True)
            errors[point.id] = _tensor_error(point, quantizer, acc)
    return errors


def _tensor_error(point: QuantizationPoint, quantizer: BaseQuantizer, acc: _Accumulator) -> TensorError:
    sample = torch.cat(acc.sample)[:SAMPLE_SIZE] if acc.sample else torch.empty(0)
    quantized = torch.cat(acc.quantized_sample)[:SAMPLE_SIZE] if acc.quantized_sample else torch.empty(0)
    return TensorError(
        quantizer_id=point.id,
        kind=point.kind,
        node=point.target_node,
        sqnr_db=sqnr_db(acc.signal, acc.noise),
        relative_mse=_relative_mse(acc.signal, acc.noise),
        clip_range=_clip_range(quantizer),
        sample=tuple(sample.tolist()),
        quantized_sample=tuple(quantized.tolist()),
    )


def measure_quantization_error(
    model: nn.Module, loader: Iterable[Any], *, num_samples: int = 64, progress: bool = True
) -> QuantizationErrorReport:
    """Measure the error of every quantizer and of every node's output of a compressed model.

    Args:
        model: A compressed model (from ``create_compressed_model``), after range init.
        loader: Items ``(inputs, target)``, or a loader with ``get_inputs(batch)``, as for range init.
        num_samples: Samples to run; ``ceil(num_samples / batch_size)`` batches.
        progress: Show a progress bar.

    Returns:
        The report; weights are measured directly, activations and nodes over the batches.

    Raises:
        ValueError: ``model`` is not a compressed model.

    Examples:
        >>> import torch
        >>> from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 4]},
        ...                             "compression": {"algorithm": "quantization"}})
        >>> data = [(torch.randn(8, 4), 0)]
        >>> _, qnet = create_compressed_model(net, register_default_init_args(cfg, data))
        >>> report = measure_quantization_error(qnet, data, progress=False)
        >>> sorted(report.tensors) == sorted(qnet.nncf.quantizers())
        True
        >>> all(e.sqnr_db > 0 for e in report.tensors.values())
        True
    """
    interface = compression_interface(model)
    graph = interface.graph
    fp32 = _Fp32Pass(model, _positions(interface.setup.activations, lambda n: graph.node(n).name))
    forward = original_forward(model)
    node_acc: dict[str, _Accumulator] = {}
    num_batches = 0
    batches = init_batches(
        loader, num_samples, model_device(model), desc="Quantization error", progress=progress
    )
    with eval_no_grad(model):
        for args, kwargs, _ in batches:
            fp32.outputs = {}
            with fp32:
                run_root(fp32, model, forward, args, kwargs)
            quantized = _QuantizedPass(model, fp32.outputs)
            quantized.run(forward, interface.plan(), args, kwargs)
            for name, acc in quantized.accumulators.items():
                total = node_acc.setdefault(name, _Accumulator())
                total.signal, total.noise = total.signal + acc.signal, total.noise + acc.noise
                total.count += acc.count
            num_batches += 1
    tensors = _weight_errors(model)
    points = {p.id: p for p in interface.setup.activations}
    for qid, acc in fp32.accumulators.items():
        tensors[qid] = _tensor_error(points[qid], interface.quantizer(qid), acc)
    nodes = {
        name: NodeError(name, sqnr_db(a.signal, a.noise), _relative_mse(a.signal, a.noise))
        for name, a in node_acc.items()
    }
    return QuantizationErrorReport(tensors=tensors, nodes=nodes, num_batches=num_batches)
