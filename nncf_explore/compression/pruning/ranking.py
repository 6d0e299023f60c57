"""Which filters go: filter importance, per-layer and global ranking, and FLOPs of a pruned graph.

A group's filter importance is the mean, over its convolutions, of each layer's filter norms
(``L1``, ``L2``) or geometric-median distances, so the filters of a residual group are ranked once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from nncf_explore.compression.precision.complexity import node_macs
from nncf_explore.compression.pruning.groups import ChannelAnalysis, PruningGroup, channel_mask
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.ops import OpCategory

FILTER_IMPORTANCE = ("L2", "L1", "geometric_median")


def filter_importance(weight: Tensor, kind: str) -> Tensor:
    """One importance per output filter (axis 0) of ``weight``.

    ``geometric_median`` scores a filter by its summed distance to every other filter: filters
    near the geometric median are the most replaceable, as in NNCF's FPGM criterion.

    Examples:
        >>> w = torch.tensor([[3.0, 4.0], [1.0, 0.0], [-1.0, 0.0]])
        >>> filter_importance(w, "L2").tolist(), filter_importance(w, "L1").tolist()
        ([5.0, 1.0, 1.0], [7.0, 1.0, 1.0])
        >>> [round(v, 2) for v in filter_importance(w, "geometric_median").tolist()]
        [10.13, 6.47, 7.66]
    """
    flat = weight.detach().flatten(1).float()
    if kind in ("L2", "L1"):
        norms: Tensor = flat.norm(p=2 if kind == "L2" else 1, dim=1)
        return norms
    if kind == "geometric_median":
        return torch.cdist(flat, flat).sum(dim=1)
    raise ValueError(f"filter_importance {kind!r} is not one of {', '.join(FILTER_IMPORTANCE)}")


def group_importance(group: PruningGroup, weights: Mapping[str, Tensor], kind: str) -> Tensor:
    """Mean importance of each filter of ``group`` over its convolutions (``weights`` by node name)."""
    scores = [filter_importance(weights[name], kind) for name in group.sources]
    return torch.stack(scores).mean(dim=0)


def _keep_lowest_out(scores: Tensor, pruned: int) -> list[bool]:
    pruned = min(max(pruned, 0), scores.numel() - 1)  # a layer always keeps one filter
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if pruned:
        keep[torch.argsort(scores, stable=True)[:pruned]] = False
    return [bool(v) for v in keep.tolist()]


def keep_flags(scores: Mapping[int, Tensor], level: float, all_weights: bool) -> dict[int, list[bool]]:
    """Group id -> kept-filter flags at pruning ``level``.

    Per layer (``all_weights`` false) every group loses ``floor(level * channels)`` filters.
    Globally, each group's scores are divided by their L2 norm so that layers compare, and the
    ``level`` share of all filters with the lowest normalised scores goes.

    Examples:
        >>> keep_flags({0: torch.tensor([1.0, 3.0, 2.0, 4.0])}, 0.5, False)
        {0: [False, True, False, True]}
        >>> flags = keep_flags({0: torch.tensor([1.0, 9.0]), 1: torch.tensor([5.0, 5.0])}, 0.5, True)
        >>> flags
        {0: [False, True], 1: [False, True]}
    """
    if not all_weights:
        return {gid: _keep_lowest_out(s, math.floor(level * s.numel() + 1e-9)) for gid, s in scores.items()}
    if not scores:
        return {}
    normed = {gid: s / s.norm(p=2).clamp_min(1e-12) for gid, s in scores.items()}
    every = torch.cat(list(normed.values()))
    count = math.floor(level * every.numel() + 1e-9)
    if count <= 0:
        return {gid: [True] * s.numel() for gid, s in normed.items()}
    order = torch.argsort(every, stable=True)
    dropped = torch.zeros(every.numel(), dtype=torch.bool)
    dropped[order[:count]] = True
    flags: dict[int, list[bool]] = {}
    start = 0
    for gid, s in normed.items():
        part = dropped[start : start + s.numel()]
        start += s.numel()
        flags[gid] = _keep_lowest_out(s, int(part.sum())) if part.any() else [True] * s.numel()
    return flags


def flops_and_params(
    graph: Graph, analysis: ChannelAnalysis, flags: Mapping[int, Sequence[bool]]
) -> tuple[int, int]:
    """FLOPs (2 x multiply-accumulates) and weight elements of convolutions and linear layers.

    Each layer's count is scaled by the share of its output and input channels kept.
    """
    flops = params = 0
    for node in graph.nodes:
        if node.category not in (OpCategory.CONVOLUTION, OpCategory.DEPTHWISE_CONVOLUTION, OpCategory.LINEAR):
            continue
        shape = node.attrs.get("weight_shape")
        if not shape:
            continue
        out_share, in_share = _kept_shares(analysis, node.name, node.category, flags)
        share = out_share * in_share
        flops += round(2 * node_macs(graph, node) * share)
        params += round(math.prod(int(s) for s in shape) * share)
    return flops, params


def _kept_shares(
    analysis: ChannelAnalysis, name: str, category: OpCategory, flags: Mapping[int, Sequence[bool]]
) -> tuple[float, float]:
    layout = analysis.inputs.get(name, ())
    kept_in = channel_mask(layout, flags)
    in_share = sum(kept_in) / len(kept_in) if kept_in else 1.0
    if category is OpCategory.DEPTHWISE_CONVOLUTION:
        return in_share, 1.0
    group = analysis.group(name)
    out = flags.get(group.id) if group is not None else None
    out_share = sum(out) / len(out) if out else 1.0
    return out_share, in_share


def level_for_flops(
    flops_at: Callable[[float], int], full_flops: int, flops_level: float, steps: int = 20
) -> float:
    """The smallest filter pruning level whose pruned model has at most ``1 - flops_level`` of the FLOPs.

    ``flops_at(level)`` gives the FLOPs of the model pruned at ``level``; the search is a
    bisection, since FLOPs fall as the level grows.

    Examples:
        >>> round(level_for_flops(lambda lv: round(1e6 * (1 - lv) ** 2), 10**6, 0.75), 3)
        0.5
    """
    if flops_level <= 0:
        return 0.0
    goal = (1.0 - flops_level) * full_flops
    low, high = 0.0, 1.0
    for _ in range(steps):
        mid = (low + high) / 2
        if flops_at(mid) <= goal:
            high = mid
        else:
            low = mid
    return high
