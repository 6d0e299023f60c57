"""What a single quantizer is: bit width, mode, granularity and integer level bounds.

`QuantizerSpec` is pure data (frozen, JSON round-trippable); the modules in
`quantizers.py` are built from it. Level arithmetic follows NNCF's
`src/nncf/common/quantization/quantizers.py` semantics (reference doc §5.1).

Examples:
    >>> spec = QuantizerSpec(bits=8, mode="symmetric", per_channel=True, signed=True, narrow_range=True)
    >>> spec.label()
    'B:8 M:S SGN:S PC:Y NR:Y'
    >>> level_bounds(8, "symmetric", signed=True, narrow_range=True, half_range=False)
    (-127, 127)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

QuantizationMode = Literal["symmetric", "asymmetric"]

MIN_BITS = 2
MAX_BITS = 16


def _check_bits(bits: int, half_range: bool) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int, got {bits!r}")
    effective = bits - 1 if half_range else bits
    if not MIN_BITS <= effective <= MAX_BITS:
        hint = (
            f" (half_range quantizes with bits-1, so it needs bits >= {MIN_BITS + 1})" if half_range else ""
        )
        raise ValueError(f"bits={bits} is out of range; use {MIN_BITS}..{MAX_BITS}{hint}")


def level_bounds(
    bits: int, mode: QuantizationMode, signed: bool, narrow_range: bool, half_range: bool
) -> tuple[int, int]:
    """Integer level bounds ``(low, high)`` of a quantizer.

    Symmetric signed uses ``-2^(b-1)..2^(b-1)-1``, symmetric unsigned and asymmetric
    ``0..2^b-1``; narrow range drops the most negative level (or the top level when
    ``low == 0``); half range (NNCF's overflow fix) uses ``b - 1`` bits.

    Examples:
        >>> level_bounds(8, "symmetric", signed=True, narrow_range=False, half_range=True)
        (-64, 63)
        >>> level_bounds(4, "asymmetric", signed=True, narrow_range=True, half_range=False)
        (1, 15)
    """
    _check_bits(bits, half_range)
    if mode not in get_args(QuantizationMode):
        raise ValueError(f"mode must be one of {get_args(QuantizationMode)}, got {mode!r}")
    b = bits - 1 if half_range else bits
    if mode == "symmetric" and signed:
        low, high = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    else:
        low, high = 0, 2**b - 1
    if narrow_range:
        if mode == "asymmetric" or low < 0:
            low += 1
        else:
            high -= 1
    return low, high


@dataclass(frozen=True)
class QuantizerSpec:
    """Configuration of one fake quantizer.

    Attributes:
        bits: configured bit width (the quantizer uses ``bits - 1`` when ``half_range``).
        mode: ``"symmetric"`` (trainable ``scale``) or ``"asymmetric"``
            (trainable ``input_low``/``input_range``).
        per_channel: one scale per channel instead of one per tensor.
        signed: forced signedness; ``None`` lets range init decide (``min < 0``).
        narrow_range: drop one level so the grid is symmetric around zero.
        half_range: NNCF's overflow fix, quantize with ``bits - 1`` on the same step.
        logarithm_scale: store ``log(scale)`` as the trainable parameter.

    Examples:
        >>> QuantizerSpec.from_dict({"bits": 4, "mode": "asymmetric"}).label()
        'B:4 M:A SGN:ANY PC:N NR:N'
    """

    bits: int = 8
    mode: QuantizationMode = "symmetric"
    per_channel: bool = False
    signed: bool | None = None
    narrow_range: bool = False
    half_range: bool = False
    logarithm_scale: bool = False

    def __post_init__(self) -> None:
        _check_bits(self.bits, self.half_range)
        if self.mode not in get_args(QuantizationMode):
            raise ValueError(f"mode must be one of {get_args(QuantizationMode)}, got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizerSpec:
        """Inverse of `to_dict`; missing keys take the field defaults, unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown QuantizerSpec keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**dict(data))

    def label(self) -> str:
        """NNCF's ``QuantizerConfig`` string, e.g. ``'B:8 M:S SGN:ANY PC:N NR:N'``."""
        sign = "ANY" if self.signed is None else ("S" if self.signed else "U")
        mode = "S" if self.mode == "symmetric" else "A"
        yes_no = {True: "Y", False: "N"}
        return (
            f"B:{self.bits} M:{mode} SGN:{sign} PC:{yes_no[self.per_channel]} NR:{yes_no[self.narrow_range]}"
        )


def check_scale_shape(spec: QuantizerSpec, scale_shape: tuple[int, ...], channel_axis: int | None) -> None:
    """Raise ValueError unless ``scale_shape``/``channel_axis`` fit ``spec.per_channel``."""
    if not scale_shape or any(d < 1 for d in scale_shape):
        raise ValueError(f"scale_shape must be a non-empty tuple of positive sizes, got {scale_shape}")
    if not spec.per_channel:
        if math.prod(scale_shape) != 1:
            raise ValueError(f"a per-tensor quantizer needs scale_shape of ones, got {scale_shape}")
        return
    if channel_axis is None or not -len(scale_shape) <= channel_axis < len(scale_shape):
        raise ValueError(f"per-channel quantizer needs channel_axis inside scale_shape {scale_shape}")
    others = [d for i, d in enumerate(scale_shape) if i != channel_axis % len(scale_shape)]
    if any(d != 1 for d in others):
        raise ValueError(f"scale_shape {scale_shape} must be 1 everywhere except channel_axis={channel_axis}")
