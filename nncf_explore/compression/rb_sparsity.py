"""Regularisation-based sparsity (NNCF's ``rb_sparsity``): masks learned with a sparsity loss.

Each sparsified weight gets a tensor of mask logits, a parameter the user's
optimizer trains with the weights.  In training the mask is a sample of
``sigmoid(logits + logistic noise) > 0.5`` whose gradient passes straight
through the threshold to the sigmoid; in eval it is ``logits > 0``.  As in NNCF,
logits start at ``logit(0.99)`` (every weight kept): ``sparsity_init`` is the
first *target* of the loss, which the training then reaches.  The masks sit in
``_nncf.sparsity_masks``, the slot magnitude sparsity uses, so the masked weight
is what the weight quantizer sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.controller import CompressionLoss, CompressionStage, ModelController
from nncf_explore.compression.interface import SPARSITY_MASKS, compression_interface
from nncf_explore.compression.quantization.scope_checks import section_path
from nncf_explore.compression.schedulers import SparsityScheduler
from nncf_explore.compression.sparsity import install_masks, mask_key, section_weights
from nncf_explore.compression.statistics import NNCFStatistics, SparsityStatistics
from nncf_explore.config.sections import resolve
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs

if TYPE_CHECKING:
    from nncf_explore.compression.algorithms import BuildContext

ALGORITHM = "rb_sparsity"
INITIAL_KEEP_PROBABILITY = 0.99
"""NNCF's initial mask probability: every weight starts kept, with room to move."""
LOSS_SCALE = 0.05
"""NNCF's ``p``: the loss is ``((density - target density) / p) ** 2``."""
_NOISE_EPS = 1e-6


class _StraightThrough(torch.autograd.Function):
    """``x > 0.5`` forward, identity backward: a binary mask that its probabilities still learn through."""

    @staticmethod
    def forward(ctx: Any, probabilities: Tensor) -> Tensor:
        return (probabilities > 0.5).to(probabilities.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def binary_mask(logits: Tensor) -> Tensor:
    """The deterministic mask of ``logits`` (``logits > 0``), with a straight-through gradient.

    Examples:
        >>> binary_mask(torch.tensor([-1.0, 0.5])).tolist()
        [0.0, 1.0]
    """
    result: Tensor = _StraightThrough.apply(torch.sigmoid(logits))  # type: ignore[no-untyped-call]
    return result


class GradientScale:
    """A tensor hook multiplying the gradient (NNCF's ``compression_lr_multiplier``, as NNCF applies it)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, grad: Tensor) -> Tensor:
        return grad * self.factor


class LearnedMasks(nn.Module):
    """Mask logits (parameters) keyed by :func:`mask_key` of the parameter name.

    Args:
        weights: The weights to sparsify, by parameter name.
        lr_multiplier: ``compression_lr_multiplier``: scales the logits' gradients (None: unscaled).

    Examples:
        >>> masks = LearnedMasks({"fc.weight": torch.ones(2, 3)})
        >>> masks.eval().mask("fc.weight").tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, weights: Mapping[str, Tensor], lr_multiplier: float | None = None) -> None:
        super().__init__()
        self.algorithm = ALGORITHM
        self.frozen = False
        start = math.log(INITIAL_KEEP_PROBABILITY / (1 - INITIAL_KEEP_PROBABILITY))
        for name, weight in weights.items():
            logits = nn.Parameter(torch.full_like(weight.detach(), start))
            if lr_multiplier is not None:
                logits.register_hook(GradientScale(lr_multiplier))  # type: ignore[no-untyped-call]
            self.register_parameter(mask_key(name), logits)

    def logits(self, param: str) -> Tensor:
        """The mask logits of parameter ``param``."""
        logits: Tensor = getattr(self, mask_key(param))
        return logits

    def mask(self, param: str) -> Tensor:
        """A sampled mask in training (until frozen), the deterministic one otherwise."""
        logits = self.logits(param)
        if not self.training:
            # a plain comparison, so eval forwards export and strip without a custom autograd op
            return (logits > 0).to(logits.dtype)
        if self.frozen:
            return binary_mask(logits)
        uniform = torch.rand_like(logits).clamp(_NOISE_EPS, 1 - _NOISE_EPS)
        return binary_mask(logits + torch.log(uniform / (1 - uniform)))

    def names(self) -> list[str]:
        """Parameter names with a mask."""
        return [key.replace("/", ".") for key, _ in self.named_parameters()]

    def level(self, param: str) -> float:
        """Fraction of weights the deterministic mask zeroes."""
        logits = self.logits(param)
        return float((logits <= 0).sum().item() / max(logits.numel(), 1))

    def freeze(self) -> None:
        """Stop learning: deterministic masks from now on, logits no longer trained."""
        self.frozen = True
        for logits in self.parameters():
            logits.requires_grad_(False)


def sparsity_loss(masks: LearnedMasks, names: list[str], level: float, mode: str) -> Tensor:
    """NNCF's ``SparseLoss``: how far the kept fraction is from ``1 - level``, in units of 0.05, squared.

    ``global`` compares the kept fraction over all sparsified weights; ``local`` (NNCF's
    per-layer loss) adds up each layer's distance ``|kept_l / n_l - (1 - level)|`` before
    squaring, so every layer has to reach the level.

    Examples:
        >>> masks = LearnedMasks({"w": torch.ones(4)})
        >>> sparsity_loss(masks, ["w"], 0.0, "global").item()
        0.0
        >>> round(sparsity_loss(masks, ["w"], 0.5, "global").item(), 3)  # ((1 - 0.5) / 0.05) ** 2
        100.0
    """
    kept = [binary_mask(masks.logits(name)) for name in names]
    if not kept:
        return torch.zeros([])
    target = 1.0 - level
    if mode == "local":
        distance = sum((torch.abs(k.sum() / k.numel() - target) for k in kept), torch.zeros([]))
        return (distance / LOSS_SCALE).pow(2)
    total = sum(k.numel() for k in kept)
    density = sum((k.sum() for k in kept), torch.zeros([])) / total
    return ((density - target) / LOSS_SCALE).pow(2)


class RBSparsityController(ModelController):
    """Learns masks towards the scheduled level; ``loss()`` is the sparsity loss to add to the task loss.

    Args:
        model: The compressed model.
        example_inputs: The tracing inputs.
        section: The config's ``rb_sparsity`` section.
        graph: The traced graph.
        where: The section's JSON path, for messages.
        lr_multiplier: ``compression_lr_multiplier`` (section or top level): scales the gradients of
            the mask logits.
    """

    name = ALGORITHM

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Args, Kwargs],
        section: Mapping[str, Any],
        graph: Graph,
        where: str = "compression",
        lr_multiplier: float | None = None,
    ) -> None:
        super().__init__(model, example_inputs)

        def get(path: str) -> Any:
            return resolve(section, path, algorithm=ALGORITHM)

        self.weights = section_weights(graph, section)
        self.mode = str(get("params.sparsity_level_setting_mode"))
        params = {n: model.get_parameter(n) for n in self.weights}
        install_masks(model, LearnedMasks(params, lr_multiplier), where)
        self.level = 0.0
        self.loss_enabled = True
        self.loss = CompressionLoss(model, [self._loss])
        self.schedule = SparsityScheduler.from_section(
            self.set_sparsity_level,
            get,
            section.get("params", {}),
            patience=int(get("params.patience")),
            achieved_level=lambda: self.sparsity_level,
            on_freeze=self.freeze,
            algorithm=f"{where} ({ALGORITHM})",
        )
        self.scheduler = self.schedule

    @property
    def masks(self) -> LearnedMasks:
        """The mask logits module (``model._nncf.sparsity_masks``)."""
        masks: LearnedMasks = getattr(compression_interface(self.model), SPARSITY_MASKS)
        return masks

    @property
    def target_level(self) -> float:
        """The level the schedule ends at."""
        return self.schedule.target

    def set_sparsity_level(self, level: float) -> None:
        """Make ``level`` the loss's target (the masks follow through training)."""
        self.level = level

    def freeze(self) -> None:
        """NNCF's freeze: the loss turns to zero and the masks stop changing."""
        self.loss_enabled = False
        self.masks.freeze()

    def _loss(self) -> Tensor:
        if not self.loss_enabled:
            return torch.zeros([])
        return sparsity_loss(self.masks, list(self.weights), self.level, self.mode)

    @property
    def sparsity_level(self) -> float:
        """Fraction of weights the deterministic masks zero, over all sparsified weights."""
        logits = [self.masks.logits(name) for name in self.weights]
        total = sum(t.numel() for t in logits)
        return float(sum(int((t <= 0).sum()) for t in logits) / max(total, 1))

    def compression_stage(self) -> CompressionStage:
        # NNCF judges by the scheduled level; in local mode every layer has the target from the start.
        if self.mode == "local":
            return CompressionStage.FULLY_COMPRESSED
        if self.level <= 0.0:
            return CompressionStage.UNCOMPRESSED
        if self.level >= self.target_level:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def statistics(self, quickly_collected_only: bool = False) -> NNCFStatistics:
        levels = {name: self.masks.level(name) for name in self.weights}
        # NNCF's "mean sparse prob" is the mean of sigmoid(logits), the mean probability of *keeping*
        probability = [torch.sigmoid(self.masks.logits(n).detach()) for n in self.weights]
        total = max(sum(p.numel() for p in probability), 1)
        mean_prob = float(sum(float(p.sum()) for p in probability) / total)
        stats = SparsityStatistics(
            levels,
            self.level,
            self.sparsity_level,
            algorithm="RB-sparsity",
            extra=(("Mean sparse prob", f"{mean_prob:.3f}"),),
        )
        return NNCFStatistics(rb_sparsity=stats)

    def builder_state(self) -> dict[str, Any]:
        return {self.name: {"weights": sorted(self.weights)}}


def build(ctx: BuildContext) -> RBSparsityController:
    """The ``rb_sparsity`` builder of :data:`~nncf_explore.compression.algorithms.BUILDERS`."""
    where = section_path(ctx.config, ctx.section)
    view = next(s for s in ctx.config.algorithm_configs() if s.path == where)
    multiplier = view.get("compression_lr_multiplier")  # the section's, else the top level's
    return RBSparsityController(
        ctx.compressed,
        ctx.example_inputs,
        ctx.section,
        ctx.graph,
        where,
        None if multiplier is None else float(multiplier),
    )
