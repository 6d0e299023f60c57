"""Fake-quantizer modules with NNCF's parameters, buffers and state-dict names.

``SymmetricQuantizer`` holds ``scale``, ``signed_tensor``, ``_num_bits``, ``enabled``;
``AsymmetricQuantizer`` holds ``input_low``, ``input_range``, ``_num_bits``, ``enabled``
(reference doc §5.7), so checkpoints keep NNCF's keys.

With ``logarithm_scale`` the ``scale`` / ``input_range`` parameter stores the logarithm
of the value; ``state_dict`` and ``load_state_dict`` still exchange the real value, and
`BaseQuantizer.quantization_range` returns real values.

Examples:
    >>> q = make_quantizer(QuantizerSpec(bits=4, signed=True), scale_shape=(1,), channel_axis=None)
    >>> q.apply_minmax_init(torch.tensor([-2.0]), torch.tensor([1.0]))
    >>> (q.level_low, q.level_high, q.scale.item())
    (-8, 7, 2.0)
    >>> sorted(q.state_dict())
    ['_num_bits', 'enabled', 'scale', 'signed_tensor']
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from nncf_explore.compression.quantization.fake_quantize import (
    EPS,
    _needs_grad,
    asymmetric_fake_quantize,
    symmetric_fake_quantize,
    symmetric_range,
    tune_range,
)
from nncf_explore.compression.quantization.kernel import fused_fake_quantize
from nncf_explore.compression.quantization.spec import QuantizerSpec, check_scale_shape, level_bounds

SCALE_LOWER_THRESHOLD = 0.1
"""Symmetric range init never sets a scale below this (NNCF applies it to weights too)."""

ASYMMETRIC_MIN_RANGE_FRACTION = 0.01
"""Asymmetric range init widens each channel's range to at least this fraction of the widest."""


def _load_pre_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Mark the quantizer initialized, convert log-stored params, and fill optional buffers."""
    assert isinstance(module, BaseQuantizer)
    for name in module.range_param_names():
        if prefix + name in state_dict:
            module.initialized = True
            if name in module.log_param_names():
                state_dict[prefix + name] = torch.log(torch.abs(state_dict[prefix + name]))
    # NNCF treats these two buffers as optional, so older checkpoints still load strictly.
    for name in ("_num_bits", "enabled"):
        state_dict.setdefault(prefix + name, getattr(module, name).clone())


def _state_dict_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Expose log-stored parameters as their real values."""
    assert isinstance(module, BaseQuantizer)
    for name in module.log_param_names():
        state_dict[prefix + name] = torch.exp(state_dict[prefix + name])


@dataclasses.dataclass(frozen=True)
class InferenceGrid:
    """A quantizer's grid for forwards without autograd: Python floats per tensor, tensors per channel.

    Attributes:
        low: ``input_low``, the clamp's lower bound.
        high: ``input_low + input_range``, the clamp's upper bound.
        s: ``(levels - 1) / input_range``, levels per unit.
        zero_point: ``round(-input_low * s)``.
        subtract_low: Whether ``low`` has a non-zero value (else its subtraction is skipped).
        subtract_zero_point: Whether ``zero_point`` has a non-zero value.
        arrays: ``(low, high, s, zero_point)`` flattened, one value per channel, for the fused kernel.
        enabled: Whether the quantizer was enabled (its ``enabled`` buffer is part of the cache key).
    """

    low: float | Tensor
    high: float | Tensor
    s: float | Tensor
    zero_point: float | Tensor
    subtract_low: bool
    subtract_zero_point: bool
    arrays: tuple[Tensor, Tensor, Tensor, Tensor]
    enabled: bool = True

    @classmethod
    def of(
        cls,
        low: Tensor,
        high: Tensor,
        s: Tensor,
        zero_point: Tensor,
        *,
        per_tensor: bool,
        enabled: bool = True,
    ) -> InferenceGrid:
        """The grid of these range tensors, as floats when ``per_tensor``."""
        nonzero_low, nonzero_zp = bool(low.ne(0).any()), bool(zero_point.ne(0).any())
        a, b, c, d = (t.detach().reshape(-1).contiguous() for t in (low, high, s, zero_point))
        if per_tensor:
            return cls(a.item(), b.item(), c.item(), d.item(), nonzero_low, nonzero_zp, (a, b, c, d), enabled)
        return cls(low, high, s, zero_point, nonzero_low, nonzero_zp, (a, b, c, d), enabled)


class BaseQuantizer(nn.Module, ABC):
    """Common state and API of the symmetric and asymmetric fake quantizers."""

    _num_bits: Tensor
    enabled: Tensor

    def __init__(self, spec: QuantizerSpec, scale_shape: tuple[int, ...], channel_axis: int | None) -> None:
        super().__init__()
        scale_shape = tuple(scale_shape)
        check_scale_shape(spec, scale_shape, channel_axis)
        self._spec = spec
        self.scale_shape = scale_shape
        per_channel_axis = channel_axis if spec.per_channel else None
        self.channel_axis = None if per_channel_axis is None else per_channel_axis % len(scale_shape)
        self.initialized = False
        self._grid_cache: tuple[tuple[Any, ...], InferenceGrid] | None = None
        self.register_buffer("_num_bits", torch.tensor([spec.bits], dtype=torch.int32))
        self.register_buffer("enabled", torch.tensor([1], dtype=torch.int32))
        self.register_load_state_dict_pre_hook(_load_pre_hook)  # type: ignore[no-untyped-call]
        self.register_state_dict_post_hook(_state_dict_hook)  # type: ignore[no-untyped-call]

    @abstractmethod
    def range_param_names(self) -> tuple[str, ...]:
        """Names of the trainable range parameters."""

    def log_param_names(self) -> tuple[str, ...]:
        """Range parameters that hold a logarithm (only with ``logarithm_scale``)."""
        return self.range_param_names()[-1:] if self._spec.logarithm_scale else ()

    @abstractmethod
    def quantization_range(self, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """Effective ``(input_low, input_range)`` used by forward (TuneRange applied)."""

    @abstractmethod
    def apply_minmax_init(self, min_values: Tensor, max_values: Tensor) -> None:
        """Set the range from collected statistics (reference doc §5.4) and mark it initialized.

        It always applies; skipping quantizers restored from a checkpoint (NNCF's rule)
        is the caller's decision, via `is_initialized`.
        """

    @abstractmethod
    def _quantize(self, x: Tensor) -> Tensor: ...

    @property
    def spec(self) -> QuantizerSpec:
        """The construction spec with the current bit width."""
        return dataclasses.replace(self._spec, bits=self.num_bits)

    @property
    def num_bits(self) -> int:
        """The current bit width (the ``_num_bits`` buffer)."""
        return int(self._num_bits.item())

    @property
    def signed(self) -> bool:
        """Whether the grid has negative levels (always False for the base and asymmetric grids)."""
        return False

    @property
    def level_low(self) -> int:
        """The lowest integer level of the current grid."""
        return self._bounds()[0]

    @property
    def level_high(self) -> int:
        """The highest integer level of the current grid."""
        return self._bounds()[1]

    @property
    def levels(self) -> int:
        """Number of levels of the current grid."""
        low, high = self._bounds()
        return high - low + 1

    @property
    def is_enabled(self) -> bool:
        """Whether forward quantizes (False: identity)."""
        return bool(self.enabled.item())

    @property
    def is_initialized(self) -> bool:
        """Whether the range came from statistics or a loaded state, not the initial value."""
        return self.initialized

    def _bounds(self) -> tuple[int, int]:
        s = self._spec
        return level_bounds(self.num_bits, s.mode, self.signed, s.narrow_range, s.half_range)

    def set_bits(self, bits: int) -> None:
        """Change the precision in place, keeping the range parameters."""
        level_bounds(bits, self._spec.mode, self.signed, self._spec.narrow_range, self._spec.half_range)
        self._num_bits.fill_(bits)

    def enable(self) -> None:
        """Make forward quantize again."""
        self.enabled.fill_(1)

    def disable(self) -> None:
        """Make forward the identity (parameters keep their values)."""
        self.enabled.fill_(0)

    def enable_gradients(self) -> None:
        """Let the range parameters train."""
        for p in self.parameters(recurse=False):
            p.requires_grad_(True)

    def disable_gradients(self) -> None:
        """Freeze the range parameters."""
        for p in self.parameters(recurse=False):
            p.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self._fake_quantize(x, overwrite=False)

    def quantize_owned(self, x: Tensor) -> Tensor:
        """Like ``forward``, for a tensor no one else holds: without autograd its memory is reused.

        The compressed model's forward passes op outputs that are not views of, or
        the same storage as, the op's inputs; quantizing them in place saves an
        allocation per activation quantizer.

        Examples:
            >>> q = make_quantizer(QuantizerSpec(bits=2, signed=False), (1,), None)
            >>> x = torch.tensor([0.1, 0.4, 9.0])
            >>> with torch.no_grad():
            ...     out = q.quantize_owned(x)
            >>> out is x, x.tolist()
            (True, [0.0, 0.3333333432674408, 1.0])
        """
        return self._fake_quantize(x, overwrite=True)

    def _fake_quantize(self, x: Tensor, *, overwrite: bool) -> Tensor:
        if torch.is_grad_enabled() and _needs_grad(
            x, *(p for p in self._parameters.values() if p is not None)
        ):
            return self._quantize(x) if self.is_enabled else x  # autograd: never in place
        grid = self._inference_grid(x.dtype)  # carries the enabled flag: no .item() per call
        return self._quantize_inference(x, grid, overwrite=overwrite) if grid.enabled else x

    def _quantize_inference(self, x: Tensor, grid: InferenceGrid, *, overwrite: bool) -> Tensor:
        # The same float32 values and ops as ``_quantize``, with the grid computed once
        # and kept while no parameter or buffer changes: in one pass by the fused kernel
        # where it applies (kernel.py), else as torch passes.  Subtracting a zero
        # ``input_low`` or zero point (unsigned symmetric grids) leaves every value as it
        # is, so those steps are skipped.
        # The kernel's channel axis is the grid's; a grid broadcast from fewer dimensions
        # than ``x`` runs along another axis of ``x``, so only the torch steps handle it.
        if self.channel_axis is None or x.dim() == len(self.scale_shape):
            subtract = (grid.subtract_low, grid.subtract_zero_point)
            out = x if overwrite else None
            fused = fused_fake_quantize(x, grid.arrays, subtract, self.channel_axis, out=out)
            if fused is not None:
                return fused
        # Floats are accepted as bounds, despite the stubs.
        out = x.clamp_(grid.low, grid.high) if overwrite else torch.clamp(x, grid.low, grid.high)  # type: ignore[arg-type]
        if grid.subtract_low:
            out.sub_(grid.low)
        out.mul_(grid.s)
        if grid.subtract_zero_point:
            out.sub_(grid.zero_point)
        return out.round_().div_(grid.s)

    def _inference_grid(self, dtype: torch.dtype) -> InferenceGrid:
        key: tuple[Any, ...] = (dtype,)
        for tensor in (*self._parameters.values(), *self._buffers.values()):
            if tensor is not None:
                key += (tensor.data_ptr(), tensor._version)
        cached = self._grid_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            input_low, input_range = self.quantization_range(dtype)
            s = (self.levels - 1) / input_range
            zero_point = torch.round(-input_low * s)
            high = input_low + input_range
            per_tensor = self.channel_axis is None
            grid = InferenceGrid.of(
                input_low, high, s, zero_point, per_tensor=per_tensor, enabled=self.is_enabled
            )
        self._grid_cache = (key, grid)
        return grid

    def broadcast_from(self, src: int = 0) -> None:
        """Copy parameters and buffers from rank ``src``; a no-op without ``torch.distributed``."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        with torch.no_grad():
            for tensor in [*self.parameters(recurse=False), *self.buffers(recurse=False)]:
                dist.broadcast(tensor.data, src)

    def extra_repr(self) -> str:
        state = "" if self.is_enabled else ", disabled"
        return f"{self.spec.label()}, levels={self.level_low}..{self.level_high}{state}"

    def _param_value(self, name: str, dtype: torch.dtype | None) -> Tensor:
        """A range parameter cast to ``dtype``, as a positive-safe or real value."""
        param: Tensor = getattr(self, name)
        if dtype is not None:
            param = param.to(dtype)
        if name in self.log_param_names():
            return torch.exp(param)
        if name == self.range_param_names()[-1]:
            return torch.abs(param) + EPS
        return param

    def _set_param(self, name: str, value: Tensor) -> None:
        param: Tensor = getattr(self, name)
        value = value.to(param).reshape(param.shape)
        with torch.no_grad():
            param.copy_(torch.log(value) if name in self.log_param_names() else value)

    def _checked_stats(self, min_values: Tensor, max_values: Tensor) -> tuple[Tensor, Tensor]:
        size = math.prod(self.scale_shape)
        out = []
        for name, t in (("min_values", min_values), ("max_values", max_values)):
            if t.numel() != size:
                raise ValueError(f"{name} has {t.numel()} values, expected {size} for {self.scale_shape}")
            out.append(t.detach().to(torch.float32).reshape(self.scale_shape))
        if not (torch.isfinite(out[0]).all() and torch.isfinite(out[1]).all()):
            raise ValueError(
                f"range-init statistics are not finite (min={out[0]}, max={out[1]}); the quantizer's "
                "input was probably never reached by the init data loader, or it contains inf/nan"
            )
        return out[0], out[1]


class SymmetricQuantizer(BaseQuantizer):
    """``out = round(clamp(x·high/scale, low, high))·scale/high`` with a trainable ``scale``."""

    scale: nn.Parameter
    signed_tensor: Tensor

    def __init__(self, spec: QuantizerSpec, scale_shape: tuple[int, ...], channel_axis: int | None) -> None:
        super().__init__(spec, scale_shape, channel_axis)
        self.register_buffer("signed_tensor", torch.tensor([int(bool(spec.signed))], dtype=torch.int32))
        initial = 0.0 if spec.logarithm_scale else 1.0
        self.scale = nn.Parameter(torch.full(self.scale_shape, initial))

    def range_param_names(self) -> tuple[str, ...]:
        return ("scale",)

    @property
    def signed(self) -> bool:
        """Whether the grid has negative levels (set by range init unless forced)."""
        return bool(self.signed_tensor.item())

    @signed.setter
    def signed(self, value: bool) -> None:
        self.signed_tensor.fill_(int(value))

    def quantization_range(self, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        return symmetric_range(self._param_value("scale", dtype), self.level_low, self.level_high)

    def _quantize(self, x: Tensor) -> Tensor:
        scale_safe = self._param_value("scale", x.dtype)
        return symmetric_fake_quantize(x, scale_safe, self.level_low, self.level_high)

    def apply_minmax_init(self, min_values: Tensor, max_values: Tensor) -> None:
        """``signed = any(min < 0)`` unless forced; ``scale = max(|min|, |max|)``, floored at 0.1.

        Examples:
            >>> q = SymmetricQuantizer(QuantizerSpec(), (1,), None)
            >>> q.apply_minmax_init(torch.tensor([0.0]), torch.tensor([0.05]))
            >>> (q.signed, round(q.scale.item(), 4))
            (False, 0.1)
        """
        low, high = self._checked_stats(min_values, max_values)
        forced = self._spec.signed
        self.signed = bool((low < 0).any()) if forced is None else forced
        scale = torch.maximum(high.abs(), low.abs())
        self._set_param("scale", torch.where(scale <= SCALE_LOWER_THRESHOLD, SCALE_LOWER_THRESHOLD, scale))
        self.initialized = True


class AsymmetricQuantizer(BaseQuantizer):
    """Trainable ``input_low`` and ``input_range``; zero is kept on a level (TuneRange)."""

    input_low: nn.Parameter
    input_range: nn.Parameter

    def __init__(self, spec: QuantizerSpec, scale_shape: tuple[int, ...], channel_axis: int | None) -> None:
        super().__init__(spec, scale_shape, channel_axis)
        self.input_low = nn.Parameter(torch.zeros(self.scale_shape))
        initial = 0.0 if spec.logarithm_scale else 1.0
        self.input_range = nn.Parameter(torch.full(self.scale_shape, initial))

    def range_param_names(self) -> tuple[str, ...]:
        return ("input_low", "input_range")

    def quantization_range(self, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        low = self._param_value("input_low", dtype)
        return tune_range(low, self._param_value("input_range", dtype), self.levels)

    def _quantize(self, x: Tensor) -> Tensor:
        low = self._param_value("input_low", x.dtype)
        range_safe = self._param_value("input_range", x.dtype)
        return asymmetric_fake_quantize(x, low, range_safe, self.level_low, self.level_high)

    def apply_minmax_init(self, min_values: Tensor, max_values: Tensor) -> None:
        """Each channel's range is widened to at least 1% of the widest channel's range.

        Examples:
            >>> q = AsymmetricQuantizer(QuantizerSpec(mode="asymmetric", per_channel=True), (2, 1), 0)
            >>> q.apply_minmax_init(torch.tensor([0.0, 1.0]), torch.tensor([10.0, 1.0]))
            >>> [round(v, 4) for v in [*q.input_low.flatten().tolist(), *q.input_range.flatten().tolist()]]
            [0.0, 0.95, 10.0, 0.1]
        """
        low, high = self._checked_stats(min_values, max_values)
        width = high - low
        widest = width.max()
        correction = (torch.clamp(width, ASYMMETRIC_MIN_RANGE_FRACTION * widest, widest) - width) / 2
        self._set_param("input_range", width + 2 * correction)
        self._set_param("input_low", low - correction)
        self.initialized = True


def make_quantizer(
    spec: QuantizerSpec, scale_shape: tuple[int, ...], channel_axis: int | None
) -> BaseQuantizer:
    """Build the quantizer module for ``spec``.

    Args:
        spec: bit width, mode and granularity.
        scale_shape: shape of the range parameters, e.g. ``(1,)``, ``(C_out, 1, 1, 1)``, ``(1, C, 1, 1)``.
        channel_axis: the axis of ``scale_shape`` holding channels; ``None`` for per-tensor.

    Examples:
        >>> make_quantizer(QuantizerSpec(mode="asymmetric"), (1,), None)
        AsymmetricQuantizer(B:8 M:A SGN:ANY PC:N NR:N, levels=0..255)
    """
    cls = SymmetricQuantizer if spec.mode == "symmetric" else AsymmetricQuantizer
    return cls(spec, scale_shape, channel_axis)
