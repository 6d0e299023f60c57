"""Quantized weights kept across inference forwards, while nothing they depend on changes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class WeightCache:
    """Quantized weights kept across inference forwards.

    Weight fake-quantization costs about as much as a ResNet's whole FP32
    forward, so eval-mode forwards without autograd reuse the last result while
    the parameter and every tensor of its quantizer are unchanged: same storage
    and same version counter.  In-place edits through ``.data`` bypass version
    counters; call :meth:`clear` after such edits (``model.nncf.clear_weight_cache()``).
    """

    enabled: bool = True
    entries: dict[str, tuple[tuple[int, ...], Tensor]] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every cached quantized weight."""
        self.entries.clear()


def state_key(param: Tensor, quantizer: nn.Module) -> tuple[int, ...]:
    """What a cached quantized weight depends on: the quantizer, and storage and version of every tensor."""
    key = [id(quantizer), param.data_ptr(), param._version]
    for tensor in dependencies(quantizer):
        if tensor is not None:
            key += (tensor.data_ptr(), tensor._version)
    return tuple(key)


def dependencies(quantizer: nn.Module) -> list[Tensor | None]:
    """The tensors a weight transform reads besides the weight: its own, or what it declares.

    A sparsity mask wrapper (``MaskedWeight``) declares its masks and its inner quantizer's tensors
    through ``cache_tensors()``: they are not its parameters or buffers.
    """
    declared = getattr(quantizer, "cache_tensors", None)
    if callable(declared):
        return list(declared())
    return [*quantizer._parameters.values(), *quantizer._buffers.values()]


def needs_autograd(param: Tensor, quantizer: nn.Module) -> bool:
    """Whether quantizing ``param`` now records a graph (then the result must not be reused)."""
    if not torch.is_grad_enabled():
        return False
    return param.requires_grad or any(
        p.requires_grad for p in quantizer._parameters.values() if p is not None
    )
