"""Fake-quantization math: NNCF's forward formula and its straight-through backward.

The forward is the formula from the reference doc §5.2, evaluated in the doc's
operation order (NNCF's torch reference) so that results are bit-exact::

    s   = (levels - 1) / input_range
    y   = clamp(x, input_low, input_low + input_range)
    zp  = round(-input_low * s)
    out = round((y - input_low) * s - zp) / s

The training path is a custom `torch.autograd.Function` with NNCF's gradients
(§5.3). When no gradient is needed the quantizer modules run the same formula
without autograd: in one pass in :mod:`~nncf_explore.compression.quantization.kernel`
where they can, else with the in-place torch steps of `_quantize_values`.

Torch's fused ``fake_quantize_per_{tensor,channel}_affine`` kernels are not used
here. They compute ``(clamp(round(x * (1/step)) + z) - z) * step``, which differs
from the formula above in the last bit for up to half of the elements, and by one
whole step at rare rounding ties. That holds for every bit width 2..8, both modes,
signed/unsigned, narrow/half range and per-tensor/per-channel:
``tests/compression/quantization/test_fake_quantize.py`` checks it, so there is no case
in which the fused kernel could stand in. On CPU it is also slower than the in-place
formula, since it computes a gradient mask as well. The fused kernels are used only
for export and ``strip`` (``export.py``), where the target runtime's formula is what
matters.

Examples:
    >>> x = torch.tensor([-3.0, -0.6, 0.4, 0.6, 2.0])
    >>> symmetric_fake_quantize(x, torch.tensor([1.0]), level_low=-2, level_high=1)
    tensor([-2., -1.,  0.,  1.,  1.])
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

from nncf_explore.compression.quantization.kernel import fused_from_tensors

EPS = 1e-16
"""Added to ``|scale|`` / ``|input_range|`` so the range is never zero (NNCF's value)."""


def reference_fake_quantize(x: Tensor, input_low: Tensor, input_range: Tensor, levels: int) -> Tensor:
    """NNCF's fake-quantize formula in plain out-of-place torch ops.

    Examples:
        >>> reference_fake_quantize(torch.tensor([0.1, 0.4, 9.0]), torch.tensor(0.0), torch.tensor(1.0), 3)
        tensor([0.0000, 0.5000, 1.0000])
    """
    s = (levels - 1) / input_range
    y = torch.clamp(x, input_low, input_low + input_range)
    zp = torch.round(-input_low * s)
    return torch.round((y - input_low) * s - zp) / s


def _quantize_values(x: Tensor, input_low: Tensor, input_range: Tensor, levels: int) -> Tensor:
    """`reference_fake_quantize` in one pass of the fused kernel, else with in-place torch steps.

    Either way the same float32 operations in the same order: the same bits.  It
    runs inside the autograd functions' forward and backward, where no gradient
    is recorded.
    """
    s = (levels - 1) / input_range
    zp = torch.round(-input_low * s)
    high = input_low + input_range
    fused = fused_from_tensors(x, input_low, high, s, zp)
    if fused is not None:
        return fused
    out = torch.clamp(x, input_low, high)
    return out.sub_(input_low).mul_(s).sub_(zp).round_().div_(s)


def symmetric_range(scale_safe: Tensor, level_low: int, level_high: int) -> tuple[Tensor, Tensor]:
    """``(input_low, input_range)`` of a symmetric quantizer with positive ``scale_safe``.

    Examples:
        >>> symmetric_range(torch.tensor(1.27), -128, 127)
        (tensor(-1.2800), tensor(2.5500))
    """
    input_low = scale_safe * level_low / level_high
    return input_low, scale_safe - input_low


def tune_range(input_low: Tensor, input_range: Tensor, levels: int) -> tuple[Tensor, Tensor]:
    """NNCF's TuneRange: widen ``[low, low + range]`` so that 0.0 falls exactly on a level.

    Of the two candidate ranges (move the low end, or move the high end) the wider
    one wins; a candidate that would divide by zero is not available.

    Examples:
        >>> tune_range(torch.tensor([-0.3]), torch.tensor([1.0]), levels=3)
        (tensor([-0.7000]), tensor([1.4000]))
    """
    low = torch.clamp(input_low, max=0.0)
    high = torch.clamp(input_low + input_range, min=0.0)
    n = levels - 1
    zp = torch.round(-low * n / (high - low))
    can_move_low = zp < n
    can_move_high = zp > 0
    new_low = zp / torch.where(can_move_low, zp - n, torch.ones_like(zp)) * high
    new_high = (zp - n) / torch.where(can_move_high, zp, torch.ones_like(zp)) * low
    no_range = torch.full_like(zp, -torch.inf)
    range_low_moved = torch.where(can_move_low, high - new_low, no_range)
    range_high_moved = torch.where(can_move_high, new_high - low, no_range)
    move_low = range_low_moved > range_high_moved
    tuned_low = torch.where(move_low, new_low, low)
    tuned_high = torch.where(move_low, high, new_high)
    return tuned_low, tuned_high - tuned_low


def _range_grads(
    grad: Tensor, x: Tensor, out: Tensor, *, input_low: Tensor, input_range: Tensor, low_over_high: float
) -> tuple[Tensor, Tensor, Tensor]:
    """NNCF's backward: STE for x inside the range, LSQ-like range gradient (§5.3)."""
    above = x > input_low + input_range
    below = x < input_low
    inside = ~(above | below)
    grad_x = (grad * inside).sum_to_size(x.shape)
    range_factor = torch.where(
        inside, (out - x) / input_range, torch.where(above, 1.0, low_over_high).to(grad.dtype)
    )
    grad_range = (grad * range_factor).sum_to_size(input_range.shape)
    grad_low = (grad * (above | below)).sum_to_size(input_low.shape)
    return grad_x, grad_range, grad_low


class _SymmetricQuantize(torch.autograd.Function):
    """Gradient of ``scale`` is NNCF's range gradient, not the chain rule through input_low."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale_safe: Tensor, level_low: int, level_high: int) -> Tensor:
        input_low, input_range = symmetric_range(scale_safe, level_low, level_high)
        # The output is recomputed in backward rather than saved: callers may change it
        # in place (ResNet's ``out += identity``), which would invalidate a saved tensor.
        ctx.save_for_backward(x, input_low, input_range)
        ctx.levels = level_high - level_low + 1
        ctx.low_over_high = level_low / level_high
        return _quantize_values(x, input_low, input_range, ctx.levels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, input_low, input_range = ctx.saved_tensors
        out = _quantize_values(x, input_low, input_range, ctx.levels)
        grad_x, grad_range, _ = _range_grads(
            grad, x, out, input_low=input_low, input_range=input_range, low_over_high=ctx.low_over_high
        )
        return grad_x, grad_range, None, None


class _AsymmetricQuantize(torch.autograd.Function):
    """TuneRange runs inside forward, so its gradient is the identity (straight through)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, input_low: Tensor, input_range_safe: Tensor, level_low: int, level_high: int
    ) -> Tensor:
        levels = level_high - level_low + 1
        tuned_low, tuned_range = tune_range(input_low, input_range_safe, levels)
        ctx.save_for_backward(x, tuned_low, tuned_range)  # output recomputed in backward, as above
        ctx.levels = levels
        ctx.low_over_high = level_low / level_high
        return _quantize_values(x, tuned_low, tuned_range, levels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, tuned_low, tuned_range = ctx.saved_tensors
        out = _quantize_values(x, tuned_low, tuned_range, ctx.levels)
        grad_x, grad_range, grad_low = _range_grads(
            grad, x, out, input_low=tuned_low, input_range=tuned_range, low_over_high=ctx.low_over_high
        )
        return grad_x, grad_low, grad_range, None, None


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def symmetric_fake_quantize(x: Tensor, scale_safe: Tensor, level_low: int, level_high: int) -> Tensor:
    """Symmetric fake quantization; ``scale_safe`` must already be ``|scale| + eps``.

    Examples:
        >>> symmetric_fake_quantize(torch.tensor([0.49, 0.51]), torch.tensor([1.0]), 0, 2)
        tensor([0.5000, 0.5000])
    """
    if _needs_grad(x, scale_safe):
        out = _SymmetricQuantize.apply(x, scale_safe, level_low, level_high)  # type: ignore[no-untyped-call]
        return cast(Tensor, out)
    input_low, input_range = symmetric_range(scale_safe, level_low, level_high)
    return _quantize_values(x, input_low, input_range, level_high - level_low + 1)


def asymmetric_fake_quantize(
    x: Tensor, input_low: Tensor, input_range_safe: Tensor, level_low: int, level_high: int
) -> Tensor:
    """Asymmetric fake quantization with TuneRange; ``input_range_safe = |input_range| + eps``.

    Examples:
        >>> x = torch.tensor([-1.0, 0.0, 0.4])
        >>> asymmetric_fake_quantize(x, torch.tensor([-0.3]), torch.tensor([1.0]), 0, 2)
        tensor([-0.7000,  0.0000,  0.7000])
    """
    if _needs_grad(x, input_low, input_range_safe):
        args = (x, input_low, input_range_safe, level_low, level_high)
        return cast(Tensor, _AsymmetricQuantize.apply(*args))  # type: ignore[no-untyped-call]
    levels = level_high - level_low + 1
    tuned_low, tuned_range = tune_range(input_low, input_range_safe, levels)
    return _quantize_values(x, tuned_low, tuned_range, levels)
