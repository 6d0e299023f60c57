"""HAWQ's sensitivity measure: the Hessian trace of the loss per quantized weight (Hutchinson).

For a weight ``W`` with Hessian block ``H``, Hutchinson's estimator gives
``tr(H) = E[vᵀ H v]`` over Rademacher vectors ``v``; ``H v`` comes from a second
backward pass through ``∇L · v``.  The parameters are NNCF's (reference doc §2.5):
``num_data_points`` samples per iteration, at most ``iter_number`` iterations,
and a stop once the running mean of the *total* trace (the sum over all
weights) changed by less than ``tolerance``, relative, in one iteration: NNCF's
criterion, which one noisy small layer cannot hold up.  The loss is that of the FP32 forward, with the
``criterion_fn(outputs, target, criterion)`` registered through
``register_default_init_args(..., criterion=...)``.

HAWQ then ranks a bit width ``b`` for the weight by the perturbation
``tr(H) / n · ‖Q_b(W) − W‖²`` (the trace averaged over the ``n`` elements, as HAWQ-v2 does, so large
layers are not favoured only for their size), computed by :func:`weight_perturbations`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.init_data import model_device
from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.quantization.quantizers import make_quantizer
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.runtime import original_forward
from nncf_explore.config.init_args import default_criterion_fn, wrap_dataloader_for_init
from nncf_explore.graph.leaves import map_tensors

Criterion = Callable[..., Any]
CriterionFn = Callable[[Any, Any, Criterion], Any]


@dataclass(frozen=True)
class HessianTraces:
    """Average Hessian trace per weight quantizer.

    Attributes:
        traces: Weight quantizer id -> ``tr(H) / numel`` of its weight.
        iterations: Hutchinson iterations run.
        converged: Whether the total trace met the tolerance before ``iter_number``.
        history: The running mean of every trace after each iteration (for convergence plots).
    """

    traces: Mapping[str, float]
    iterations: int
    converged: bool
    history: tuple[Mapping[str, float], ...] = ()


def _batches(loader: Iterable[Any], num_data_points: int, device: torch.device) -> list[tuple[Any, Any]]:
    init_loader = wrap_dataloader_for_init(loader)
    batches: list[tuple[Any, Any]] = []
    seen = 0
    for item in init_loader:
        args, kwargs = init_loader.get_inputs(item)
        inputs = map_tensors((tuple(args), dict(kwargs)), lambda t: t.to(device))
        target = map_tensors(init_loader.get_target(item), lambda t: t.to(device))
        batches.append((inputs, target))
        first = next((t for t in inputs[0] if isinstance(t, Tensor)), None)
        seen += int(first.shape[0]) if first is not None and first.dim() else 1
        if seen >= num_data_points:
            break
    if not batches:
        raise ValueError(
            "the HAWQ data loader yielded no batch; register a loader with data through "
            "register_default_init_args(config, loader, criterion=...)"
        )
    return batches


def hessian_traces(
    model: nn.Module,
    loader: Iterable[Any],
    criterion: Criterion,
    *,
    criterion_fn: CriterionFn | None = None,
    num_data_points: int = 100,
    iter_number: int = 200,
    tolerance: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> HessianTraces:
    """Estimate the average Hessian trace of the loss for each weight quantizer's weight.

    Args:
        model: A compressed model; its FP32 forward (no quantizer) is differentiated.
        loader: Items ``(inputs, target)`` or a loader with ``get_inputs``/``get_target``.
        criterion: The loss, as given to ``register_default_init_args``.
        criterion_fn: ``criterion_fn(outputs, target, criterion)``; default ``criterion(outputs, target)``.
        num_data_points: Samples per iteration (NNCF's default 100).
        iter_number: Maximum iterations (NNCF's default 200).
        tolerance: Relative change of the total trace's running mean at which to stop (NNCF's 1e-4).
        seed: Seed of the Rademacher vectors, so a run can be repeated.
        progress: Show a progress bar.

    Returns:
        The traces, keyed by weight quantizer id.

    Examples:
        >>> import torch
        >>> from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 4]},
        ...                             "compression": {"algorithm": "quantization"}})
        >>> data = [(torch.randn(16, 4), torch.randint(0, 3, (16,)))]
        >>> _, qnet = create_compressed_model(net, register_default_init_args(cfg, data))
        >>> result = hessian_traces(qnet, data, torch.nn.CrossEntropyLoss(), iter_number=50, progress=False)
        >>> sorted(result.traces) == sorted(p.id for p in qnet.nncf.quantizer_setup.weights)
        True
    """
    from tqdm.auto import tqdm

    interface = compression_interface(model)
    points = [p for p in interface.setup.weights if p.weight_param is not None]
    params = [model.get_parameter(p.weight_param) for p in points if p.weight_param is not None]
    if not params:
        return HessianTraces({}, 0, True)
    fn = criterion_fn or default_criterion_fn
    forward = original_forward(model)
    batches = _batches(loader, num_data_points, model_device(model))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    means = [0.0] * len(params)
    history: list[dict[str, float]] = []
    converged = False
    flags = [(m, m.training) for m in model.modules()]
    model.eval()  # HAWQ measures the model as evaluated: BatchNorm statistics stay fixed
    try:
        with tqdm(
            total=iter_number, desc="HAWQ traces", unit="iter", disable=None if progress else True
        ) as bar:
            for it in range(1, iter_number + 1):
                sample = _one_iteration(forward, params, batches, criterion, fn, generator)
                new = [m + (s - m) / it for m, s in zip(means, sample, strict=True)]
                change = abs(sum(new) - sum(means)) / (abs(sum(means)) + 1e-12)
                means = new
                history.append({p.id: v / t.numel() for p, v, t in zip(points, means, params, strict=True)})
                bar.update(1)
                if it > 1 and change < tolerance:
                    converged = True
                    break
    finally:
        for module, training in flags:
            module.training = training
    return HessianTraces(history[-1], len(history), converged, tuple(history))


def _one_iteration(
    forward: Callable[..., Any],
    params: Sequence[Tensor],
    batches: Sequence[tuple[Any, Any]],
    criterion: Criterion,
    criterion_fn: CriterionFn,
    generator: torch.Generator,
) -> list[float]:
    """``vᵀ H v`` per parameter for one Rademacher draw, averaged over the batches."""
    vs = [
        (torch.randint(0, 2, p.shape, generator=generator).to(p.dtype) * 2 - 1).to(p.device) for p in params
    ]
    totals = [0.0] * len(params)
    for (args, kwargs), target in batches:
        with torch.enable_grad():
            loss = criterion_fn(forward(*args, **kwargs), target, criterion)
            grads = torch.autograd.grad(loss, list(params), create_graph=True, allow_unused=True)
            used = [(i, g) for i, g in enumerate(grads) if g is not None]
            dot = sum((g * vs[i]).sum() for i, g in used)
            if not isinstance(dot, Tensor) or not dot.requires_grad:
                continue
            hvs = torch.autograd.grad(dot, [params[i] for i, _ in used], allow_unused=True)
        for (i, _), hv in zip(used, hvs, strict=True):
            if hv is not None:
                totals[i] += float((hv * vs[i]).sum()) / len(batches)
    return totals


def _minmax(weight: Tensor, point: QuantizationPoint) -> tuple[Tensor, Tensor]:
    """The weight's min and max in the point's scale shape (per channel along its axis)."""
    if point.channel_axis is None or point.scale_shape == (1,):
        return weight.min().reshape(1), weight.max().reshape(1)
    moved = weight.movedim(point.channel_axis, 0).reshape(weight.shape[point.channel_axis], -1)
    low, high = moved.aminmax(dim=1)
    return low.reshape(point.scale_shape), high.reshape(point.scale_shape)


def weight_perturbations(
    model: nn.Module, traces: HessianTraces, bits: Iterable[int]
) -> dict[str, dict[int, float]]:
    """HAWQ's predicted loss increase of each weight quantizer at each candidate bit width.

    ``max(tr(H)/n, 0) · ‖Q_b(W) − W‖²``, where ``Q_b`` is the point's quantizer respecified at
    ``b`` bits (NNCF's rules for narrow and half range) with its range set from the
    weight's min and max, as range init does for weights.

    Examples:
        >>> import torch
        >>> from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
        >>> net = torch.nn.Sequential(torch.nn.Linear(16, 16))
        >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 16]},
        ...                             "compression": {"algorithm": "quantization"}})
        >>> cfg = register_default_init_args(cfg, [(torch.randn(8, 16), 0)])
        >>> _, qnet = create_compressed_model(net, cfg)
        >>> traces = HessianTraces({"Sequential/Linear[0]/linear_0|WEIGHT": 1.0}, 1, True)
        >>> p = weight_perturbations(qnet, traces, [4, 8])["Sequential/Linear[0]/linear_0|WEIGHT"]
        >>> p[4] > p[8] > 0
        True
    """
    interface = compression_interface(model)
    result: dict[str, dict[int, float]] = {}
    with torch.no_grad():
        for point in interface.setup.weights:
            trace = traces.traces.get(point.id)
            if trace is None or point.weight_param is None:
                continue
            weight = model.get_parameter(point.weight_param).detach()
            per_bits: dict[int, float] = {}
            for b in bits:
                candidate = point.respec(bits=b)
                quantizer = make_quantizer(candidate.spec, candidate.scale_shape, candidate.channel_axis)
                quantizer.to(weight.device).apply_minmax_init(*_minmax(weight, candidate))
                error = float((quantizer(weight) - weight).double().square().sum())
                # A sampled trace can come out negative where the loss is locally concave or the
                # estimate is noisy; a negative perturbation would reward fewer bits, so it counts 0.
                per_bits[b] = max(trace, 0.0) * error if math.isfinite(trace) else math.inf
            result[point.id] = per_bits
    return result
