"""Export-time forms of a quantizer: ONNX QuantizeLinear/DequantizeLinear and torch ``FakeQuantize``.

Both use torch's fused fake-quantize kernels, whose formula
``(clamp(round(x / step) + zp, qmin, qmax) - zp) * step`` is what ONNX runtimes and
``torch.ao`` compute. It matches the quantizer's own forward to the last bit or two,
except for inputs within a rounding error of a half-step boundary, where the two can
land one level apart (see ``fake_quantize.py``).

ONNX only has 8-bit Q/DQ pairs (int8 ``-128..127`` or uint8 ``0..255``). A quantizer
whose levels are a sub-range of that (2..7 bits, narrow range, half range) is emulated:
its grid is a subset of the 8-bit grid with the same step and zero point, so the input
is clamped to the low-bit range first (``Clip`` for per-tensor, ``Max``/``Min`` for
per-channel), then quantized with the 8-bit pair. Half range (NNCF's overflow fix) thus
exports as ``Clip`` to ``-64..63`` plus an int8 pair with step ``scale/63``. NNCF itself
writes a 256-level FakeQuantize with doubled range there and relies on weights being
pre-quantized; the extra ``Clip`` keeps the exported model exact for any input.

Examples:
    >>> from nncf_explore.compression.quantization.quantizers import make_quantizer
    >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
    >>> q = make_quantizer(QuantizerSpec(bits=4, signed=True), (1,), None)
    >>> step, zero_point, qmin, qmax = grid_params(q)
    >>> (round(step.item(), 6), zero_point.item(), qmin, qmax)
    (0.142857, 0, -8, 7)
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.ao.quantization import FakeQuantize, MinMaxObserver, PerChannelMinMaxObserver
from torch.jit._trace import TracerWarning, is_tracing

from nncf_explore.compression.quantization.quantizers import BaseQuantizer


def grid_params(quantizer: BaseQuantizer) -> tuple[Tensor, Tensor, int, int]:
    """``(step, zero_point, quant_min, quant_max)`` of the fused-kernel formula for ``quantizer``.

    ``step = input_range / (levels - 1)`` (float32, ``scale_shape``) and an int32 zero point.
    Symmetric quantizers use ``quant_min..quant_max = level_low..level_high`` with zero
    point 0; asymmetric ones ``0..levels-1`` with NNCF's ``round(-input_low * s)``.
    """
    with torch.no_grad():
        input_low, input_range = quantizer.quantization_range(torch.float32)
        n = quantizer.levels - 1
        if quantizer.spec.mode == "symmetric":
            zero_point = torch.zeros_like(input_low, dtype=torch.int32)
            qmin, qmax = quantizer.level_low, quantizer.level_high
        else:
            zero_point = torch.round(-input_low * (n / input_range)).to(torch.int32)
            qmin, qmax = 0, n
        return (input_range / n).detach(), zero_point, qmin, qmax


def _channel_axis(quantizer: BaseQuantizer, x: Tensor) -> int | None:
    if not quantizer.spec.per_channel or quantizer.channel_axis is None:
        return None
    return quantizer.channel_axis + x.dim() - len(quantizer.scale_shape)


def qdq_forward(quantizer: BaseQuantizer, x: Tensor) -> Tensor:
    """The quantizer's forward written so that ONNX export gives standard Q/DQ nodes.

    Export with ``torch.onnx.export(..., dynamo=False)``; the result contains
    ``QuantizeLinear``/``DequantizeLinear`` plus ``Clip`` (per-tensor) or ``Max``/``Min``
    (per-channel) for bit widths below the 8-bit container.

    Examples:
        >>> from nncf_explore.compression.quantization.quantizers import make_quantizer
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> q = make_quantizer(QuantizerSpec(bits=2, signed=True), (1,), None)
        >>> qdq_forward(q, torch.tensor([-5.0, -0.4, 0.6, 5.0]))
        tensor([-2.,  0.,  1.,  1.])
    """
    with warnings.catch_warnings():
        # Under tracing, reading bits/enabled as Python values and baking the range in as
        # constants is the intent: the exported quantizer is frozen.
        warnings.simplefilter("ignore", TracerWarning)
        if not quantizer.is_enabled:
            return x
        step, zero_point, qmin, qmax = grid_params(quantizer)
        lower, upper = (qmin - zero_point) * step, (qmax - zero_point) * step
        if is_tracing():  # type: ignore[no-untyped-call]
            step, zero_point, lower, upper = (
                torch.tensor(t.tolist(), dtype=t.dtype, device=t.device)
                for t in (step, zero_point, lower, upper)
            )
    low8, high8 = (-128, 127) if qmin < 0 else (0, 255)
    if qmin < low8 or qmax > high8:
        raise ValueError(
            f"ONNX QuantizeLinear/DequantizeLinear hold at most 8 bits, but this quantizer uses levels "
            f"{qmin}..{qmax}; call set_bits(8) or lower before export"
        )
    axis = _channel_axis(quantizer, x)
    if (qmin, qmax) != (low8, high8):
        if axis is None:
            x = torch.clamp(x, lower.reshape(()), upper.reshape(()))
        else:
            x = torch.clamp(x, lower.to(x.dtype), upper.to(x.dtype))
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, step.reshape(()), zero_point.reshape(()), low8, high8)
    return torch.fake_quantize_per_channel_affine(x, step.flatten(), zero_point.flatten(), axis, low8, high8)


def to_torch_fake_quantize(quantizer: BaseQuantizer) -> FakeQuantize:
    """A plain ``torch.ao.quantization.FakeQuantize`` with the quantizer's forward numerics.

    The observer is disabled and fake quantization enabled. Unlike NNCF's ``strip``
    (8-bit only, narrow/half range widened to the full 8-bit interval), the module keeps
    the quantizer's exact level range, so any bit width strips without touching weights.
    Unsigned symmetric quantizers get an *affine* qscheme, because torch's symmetric
    ``quint8`` convention puts the zero point at 128.

    Examples:
        >>> from nncf_explore.compression.quantization.quantizers import make_quantizer
        >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
        >>> fq = to_torch_fake_quantize(make_quantizer(QuantizerSpec(bits=4, signed=True), (1,), None))
        >>> (fq.quant_min, fq.quant_max, fq.qscheme, fq.dtype)
        (-8, 7, torch.per_tensor_symmetric, torch.qint8)
    """
    step, zero_point, qmin, qmax = grid_params(quantizer)
    if -128 <= qmin < 0 and qmax <= 127:
        dtype = torch.qint8
    elif qmin >= 0 and qmax <= 255:
        dtype = torch.quint8
    else:
        dtype = torch.qint32
    per_channel = quantizer.spec.per_channel
    symmetric = quantizer.spec.mode == "symmetric" and quantizer.signed
    qscheme = {
        (False, False): torch.per_tensor_affine,
        (False, True): torch.per_tensor_symmetric,
        (True, False): torch.per_channel_affine,
        (True, True): torch.per_channel_symmetric,
    }[per_channel, symmetric]
    observer = PerChannelMinMaxObserver if per_channel else MinMaxObserver
    axis_kwargs: dict[str, Any] = {"ch_axis": quantizer.channel_axis} if per_channel else {}
    fq = FakeQuantize(observer, qmin, qmax, dtype=dtype, qscheme=qscheme, **axis_kwargs)  # type: ignore[no-untyped-call]
    fq.scale = step.flatten().clone()
    fq.zero_point = zero_point.flatten().clone()
    fq.disable_observer()
    fq.enable_fake_quant()
    if not quantizer.is_enabled:
        fq.disable_fake_quant()
    return fq
