"""Magnitude sparsity: zero the least important weights, at a level set by a schedule.

Importance is ``|w|`` (``abs``) or ``|w| / ||w||_2`` (``normed_abs``, NNCF's
default, which makes layers comparable).  The ``global`` mode keeps one
threshold over all sparsified weights; ``local`` gives each weight the target
level.  Masks are buffers (``_nncf.sparsity_masks.<param>``) multiplied into the
weights on every forward, before quantization when both algorithms run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.interface import SPARSITY_MASKS, compression_interface
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.ops import OpCategory
from nncf_explore.graph.scope import matches_any

SPARSIFIED_CATEGORIES = frozenset(
    {OpCategory.CONVOLUTION, OpCategory.DEPTHWISE_CONVOLUTION, OpCategory.LINEAR, OpCategory.MATMUL}
)


def mask_key(param: str) -> str:
    """ModuleDict/buffer-safe key for a parameter name (dots are not allowed in module names)."""
    return param.replace(".", "/")


def sparsifiable_weights(
    graph: Graph, ignored_scopes: Sequence[str] = (), target_scopes: Sequence[str] | None = None
) -> dict[str, str]:
    """Parameter name -> node name of every weight magnitude sparsity may prune."""
    weights: dict[str, str] = {}
    for node in graph.nodes:
        if node.weight is None or node.category not in SPARSIFIED_CATEGORIES:
            continue
        if matches_any(ignored_scopes, node.name):
            continue
        if target_scopes is not None and not matches_any(target_scopes, node.name):
            continue
        weights.setdefault(node.weight, node.name)
    return weights


def importance(weight: Tensor, kind: str) -> Tensor:
    """Importance of each element of ``weight``."""
    magnitude = weight.detach().abs()
    if kind == "normed_abs":
        norm: Tensor = weight.detach().norm(p=2).clamp_min(1e-12)
        return magnitude / norm
    if kind == "abs":
        return magnitude
    raise ValueError(
        f"magnitude_sparsity params.weight_importance {kind!r} is not one of 'abs', 'normed_abs'"
    )


def _threshold(values: Tensor, level: float) -> Tensor:
    # The k-th smallest importance, so that a fraction ``level`` of elements is at or below it.
    k = int(level * values.numel())
    if k <= 0:
        return torch.tensor(-1.0)
    return values.flatten().kthvalue(min(k, values.numel())).values


def compute_masks(
    weights: Mapping[str, Tensor], level: float, importance_kind: str = "normed_abs", mode: str = "global"
) -> dict[str, Tensor]:
    """Binary masks (1 keeps, 0 prunes) at sparsity ``level``.

    Examples:
        >>> masks = compute_masks({"w": torch.tensor([0.1, -2.0, 0.3, 4.0])}, 0.5, "abs")
        >>> masks["w"].tolist()
        [0.0, 1.0, 0.0, 1.0]
    """
    scores = {name: importance(w, importance_kind) for name, w in weights.items()}
    if mode == "global":
        if not scores:
            return {}
        threshold = _threshold(torch.cat([s.flatten() for s in scores.values()]), level)
        return {name: (s > threshold).to(s.dtype) for name, s in scores.items()}
    if mode == "local":
        return {name: (s > _threshold(s, level)).to(s.dtype) for name, s in scores.items()}
    raise ValueError(
        f"magnitude_sparsity params.sparsity_level_setting_mode {mode!r} is not 'global' or 'local'"
    )


class SparsityMasks(nn.Module):
    """Mask buffers keyed by :func:`mask_key` of the parameter name.

    Args:
        weights: The weights to mask, by parameter name (masks start all ones).
        algorithm: The algorithm that owns the masks, for messages.
    """

    def __init__(self, weights: Mapping[str, Tensor], algorithm: str = "magnitude_sparsity") -> None:
        super().__init__()
        self.algorithm = algorithm
        for name, weight in weights.items():
            self.register_buffer(mask_key(name), torch.ones_like(weight))

    def mask(self, param: str) -> Tensor:
        """The mask of parameter ``param``."""
        mask: Tensor = getattr(self, mask_key(param))
        return mask

    def names(self) -> list[str]:
        """Parameter names with a mask."""
        return [key.replace("/", ".") for key, _ in self.named_buffers()]

    def update(self, masks: Mapping[str, Tensor]) -> None:
        """Copy new masks into the buffers."""
        for name, mask in masks.items():
            self.mask(name).copy_(mask)

    def level(self, param: str) -> float:
        """Fraction of zeros in ``param``'s mask."""
        mask = self.mask(param)
        return float(1.0 - mask.sum().item() / max(mask.numel(), 1))


def install_masks(model: nn.Module, masks: nn.Module, where: str) -> None:
    """Make ``masks`` the weight masks of ``model``: every forward multiplies them in before quantization.

    ``masks`` offers ``mask(param)`` and ``names()`` (:class:`SparsityMasks`, or RB sparsity's learned
    masks); it becomes ``model._nncf.sparsity_masks``, so its tensors are in the model's state dict.

    Raises:
        ConfigError: Another sparsity algorithm of the config already masks the weights.
    """
    interface = compression_interface(model)
    existing = interface._modules.get(SPARSITY_MASKS)
    if existing is not None:
        raise ConfigError(
            f"{where}: {getattr(masks, 'algorithm', '?')} and {getattr(existing, 'algorithm', '?')} both "
            "sparsify the weights, and one model holds one set of sparsity masks (as in NNCF); keep one "
            "sparsity algorithm in 'compression'"
        )
    interface.add_module(SPARSITY_MASKS, masks)
    interface.invalidate_plan()


def section_weights(graph: Graph, section: Mapping[str, Any]) -> dict[str, str]:
    """:func:`sparsifiable_weights` within an algorithm section's ``target_scopes``/``ignored_scopes``."""

    def scopes(value: Any) -> list[str]:
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    target = section.get("target_scopes")
    ignored = scopes(section.get("ignored_scopes"))
    return sparsifiable_weights(graph, ignored, scopes(target) if target else None)
