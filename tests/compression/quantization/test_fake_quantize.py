"""Forward bit-exactness, fused-kernel comparison, TuneRange and NNCF's straight-through gradients."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import Tensor

from nncf_explore.compression.quantization.export import grid_params
from nncf_explore.compression.quantization.fake_quantize import (
    EPS,
    reference_fake_quantize,
    symmetric_fake_quantize,
    tune_range,
)
from nncf_explore.compression.quantization.quantizers import BaseQuantizer, make_quantizer
from nncf_explore.compression.quantization.spec import QuantizerSpec

# name -> (scale_shape, channel_axis, input shape); weights use axis 0, activations axis 1.
GRANULARITIES = {
    "per_tensor": ((1,), None, (4, 6, 5, 5)),
    "weights_axis0": ((6, 1, 1, 1), 0, (6, 4, 3, 3)),
    "activations_axis1": ((1, 6, 1, 1), 1, (4, 6, 5, 5)),
}


def _cases() -> list[Any]:
    cases = []
    for bits, mode, signed, narrow, half, gran in itertools.product(
        range(2, 9), ("symmetric", "asymmetric"), (True, False), (False, True), (False, True), GRANULARITIES
    ):
        if (half and bits == 2) or (mode == "asymmetric" and signed):
            continue  # 1-bit grids do not exist; asymmetric levels ignore the sign
        spec = QuantizerSpec(bits, mode, gran != "per_tensor", signed, narrow, half)  # type: ignore[arg-type]
        name = f"b{bits}_{mode[:4]}_{'s' if signed else 'u'}_nr{int(narrow)}_hr{int(half)}_{gran}"
        cases.append(pytest.param(spec, gran, id=name))
    return cases


CASES = _cases()


def random_quantizer(spec: QuantizerSpec, gran: str, gen: torch.Generator) -> BaseQuantizer:
    """A quantizer with random range parameters (negative scales exercise the abs)."""
    shape, axis, _ = GRANULARITIES[gran]
    q = make_quantizer(spec, shape, axis)
    with torch.no_grad():
        if spec.mode == "symmetric":
            sign = torch.randint(0, 2, shape, generator=gen) * 2 - 1
            q.scale.copy_((torch.rand(shape, generator=gen) * 3 + 0.05) * sign)
            q.signed = bool(spec.signed)
        else:
            q.input_low.copy_(torch.rand(shape, generator=gen) * 4 - 3)
            q.input_range.copy_(torch.rand(shape, generator=gen) * 3 + 0.05)
    return q


def expected_range(q: BaseQuantizer) -> tuple[Tensor, Tensor]:
    """``(input_low, input_range)`` computed here from the doc's formulas (§5.2)."""
    if q.spec.mode == "symmetric":
        scale_safe = q.scale.detach().abs() + 1e-16
        input_low = scale_safe * q.level_low / q.level_high
        return input_low, scale_safe - input_low
    return tune_range(q.input_low.detach(), q.input_range.detach().abs() + 1e-16, q.levels)


def away_from_ties(x: Tensor, input_low: Tensor, input_range: Tensor, levels: int) -> Tensor:
    """Mask of inputs whose rounding argument is not within 1e-3 of a half-integer."""
    s = (levels - 1) / input_range
    t = (torch.clamp(x, input_low, input_low + input_range) - input_low) * s - torch.round(-input_low * s)
    return ((t - torch.floor(t)) - 0.5).abs() > 1e-3


@pytest.mark.parametrize(("spec", "gran"), CASES)
def test_forward_is_bit_exact_on_both_paths(spec: QuantizerSpec, gran: str) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        q = random_quantizer(spec, gran, gen)
        x = torch.randn(GRANULARITIES[gran][2], generator=gen) * 2
        reference = reference_fake_quantize(x, *expected_range(q), q.levels)
        with torch.no_grad():
            assert torch.equal(q(x), reference)
        out = q(x.clone().requires_grad_(True))
        assert out.grad_fn is not None
        assert torch.equal(out.detach(), reference)


@pytest.mark.parametrize(("spec", "gran"), CASES)
def test_fused_kernel_is_not_bit_exact_so_it_is_not_used(spec: QuantizerSpec, gran: str) -> None:
    """Evidence for ``fake_quantize.py``: the fused kernel differs in every case, by at most one step."""
    gen = torch.Generator().manual_seed(1)
    differs = False
    for _ in range(50):
        q = random_quantizer(spec, gran, gen)
        x = torch.randn(GRANULARITIES[gran][2], generator=gen) * 2
        step, zero_point, qmin, qmax = grid_params(q)
        with torch.no_grad():
            ours = q(x)
        if q.channel_axis is None:
            fused = torch.fake_quantize_per_tensor_affine(
                x, step.reshape(()), zero_point.reshape(()), qmin, qmax
            )
        else:
            args = (step.flatten(), zero_point.flatten(), q.channel_axis, qmin, qmax)
            fused = torch.fake_quantize_per_channel_affine(x, *args)
        assert ((fused - ours).abs() <= step * 1.001).all()
        differs = differs or not torch.equal(fused, ours)
    assert differs


def test_disabled_quantizer_is_identity() -> None:
    q = make_quantizer(QuantizerSpec(bits=2), (1,), None)
    q.disable()
    x = torch.randn(10)
    assert q(x) is x
    q.enable()
    assert not torch.equal(q(x), x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_low_precision_inputs_cast_the_range_to_the_input_dtype(dtype: torch.dtype, mode: str) -> None:
    q = make_quantizer(QuantizerSpec(mode=mode, signed=True), (1,), None)  # type: ignore[arg-type]
    q.apply_minmax_init(torch.tensor([-2.5]), torch.tensor([3.0]))
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)).to(dtype) * 3
    with torch.no_grad():
        out = q(x)
    assert out.dtype == dtype
    if mode == "symmetric":
        scale = q.scale.detach().to(dtype)
        scale_safe = scale.abs() + 1e-16
        low = scale_safe * q.level_low / q.level_high
        expected = reference_fake_quantize(x, low, scale_safe - low, q.levels)
    else:
        low, rng = q.input_low.detach().to(dtype), q.input_range.detach().to(dtype)
        expected = reference_fake_quantize(x, *tune_range(low, rng.abs() + 1e-16, q.levels), q.levels)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("levels", [3, 4, 16, 255, 256])
def test_tune_range_puts_zero_on_a_level_and_keeps_one_end(levels: int) -> None:
    gen = torch.Generator().manual_seed(levels)
    low = (torch.rand(2000, generator=gen) * 4 - 3).double()
    rng = (torch.rand(2000, generator=gen) * 3 + 0.01).double()
    tuned_low, tuned_range = tune_range(low, rng, levels)
    low0, high0 = low.clamp(max=0), (low + rng).clamp(min=0)
    zero_index = -tuned_low * (levels - 1) / tuned_range
    assert torch.allclose(zero_index, zero_index.round(), atol=1e-6)
    assert ((tuned_low == low0) | (tuned_low + tuned_range - high0).abs().le(1e-12)).all()
    zp = torch.round(-low0 * (levels - 1) / (high0 - low0))
    interior = (zp > 0) & (zp < levels - 1)
    assert (tuned_low[interior] <= low0[interior] + 1e-12).all()
    assert (tuned_low + tuned_range >= high0 - 1e-12)[interior].all()


def test_tune_range_edges_use_the_only_valid_candidate() -> None:
    # zp == levels - 1: only the high end can move (to zero); zp == 0: only the low end.
    low, rng = tune_range(torch.tensor([-1.0]), torch.tensor([1.001]), 256)
    assert (low.item(), (low + rng).item()) == (-1.0, 0.0)
    low, rng = tune_range(torch.tensor([-0.001]), torch.tensor([1.001]), 256)
    assert low.item() == 0.0
    assert (low + rng).item() == pytest.approx(1.0)
    low, rng = tune_range(torch.tensor([0.5]), torch.tensor([1.0]), 256)  # all-positive range starts at 0
    assert (low.item(), (low + rng).item()) == (0.0, 1.5)


def _surrogate_grads(q: BaseQuantizer, x: Tensor, upstream: Tensor) -> list[Tensor]:
    """Gradients of an autograd expression whose derivatives are NNCF's rules (§5.3)."""
    x = x.clone().requires_grad_(True)
    params = list(q.parameters())
    if q.spec.mode == "symmetric":
        scale_safe = q.scale.abs() + EPS
        low = scale_safe * q.level_low / q.level_high
        rng, straight_low, straight_range = scale_safe - low, None, scale_safe
    else:
        range_safe = q.input_range.abs() + EPS
        tuned_low, tuned_range = tune_range(q.input_low.detach(), range_safe.detach(), q.levels)
        straight_low = q.input_low + (tuned_low - q.input_low).detach()
        straight_range = range_safe + (tuned_range - range_safe).detach()
        low, rng = tuned_low, tuned_range
    low, rng, xd = low.detach(), rng.detach(), x.detach()
    out = reference_fake_quantize(xd, low, rng, q.levels)
    above, below = xd > low + rng, xd < low
    ratio = q.level_low / q.level_high
    offset = 0 if straight_low is None else straight_low
    value = torch.where(
        ~(above | below),
        x + straight_range * ((out - xd) / rng),
        torch.where(above, offset + straight_range, offset + straight_range * ratio),
    )
    return list(torch.autograd.grad((value * upstream).sum(), [x, *params]))


@pytest.mark.parametrize(("spec", "gran"), [c for c in CASES if c.values[0].bits in (2, 4, 8)])
def test_backward_matches_straight_through_rules(spec: QuantizerSpec, gran: str) -> None:
    gen = torch.Generator().manual_seed(2)
    q = random_quantizer(spec, gran, gen)
    x = torch.randn(GRANULARITIES[gran][2], generator=gen) * 2
    upstream = torch.randn(x.shape, generator=gen)
    xg = x.clone().requires_grad_(True)
    ours = torch.autograd.grad((q(xg) * upstream).sum(), [xg, *q.parameters()])
    for got, want, p in zip(ours, _surrogate_grads(q, x, upstream), [xg, *q.parameters()], strict=True):
        assert got.shape == p.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("signed", [True, False])
def test_ste_mask_for_x(signed: bool) -> None:
    q = make_quantizer(QuantizerSpec(bits=8, signed=signed), (1,), None)
    low, rng = q.quantization_range()
    high = (low + rng).item()
    x = torch.tensor([low.item() - 0.5, low.item(), 0.3, high, high + 0.5], requires_grad=True)
    q(x).sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(("low", "high"), [(-128, 127), (0, 255), (-64, 63), (-7, 7), (0, 2)])
def test_gradcheck_where_the_rules_are_true_derivatives(low: int, high: int) -> None:
    """Outside the range the symmetric output is ``scale`` or ``scale·low/high``: smooth in scale.

    Inside the range the rules are estimators (STE for x, LSQ-like for scale), not the
    derivative of a step function, so gradcheck cannot apply there; the straight-through
    test above covers them. Asymmetric TuneRange has no true straight-through derivative.
    """
    gen = torch.Generator().manual_seed(high)
    scale = (torch.rand(3, 1, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    x = torch.cat([torch.full((3, 4), 5.0), torch.full((3, 4), -5.0)], 1).double()
    x = (x + torch.rand(x.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)

    def fn(x: Tensor, scale: Tensor) -> Tensor:
        return symmetric_fake_quantize(x, scale.abs() + EPS, low, high)

    assert torch.autograd.gradcheck(fn, (x, scale), eps=1e-6, atol=1e-7)
