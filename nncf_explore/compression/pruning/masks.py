"""Filter masks: one keep-flag buffer per prunable group, and the parameters each one masks.

A buffer per group, not per parameter, so a residual group's convolutions, BatchNorms and
depthwise convolutions can never disagree, and the state dict holds each decision once
(``_nncf.pruning_masks.group_<id>``).  The interface multiplies :meth:`PruningMasks.mask` into
each parameter before its weight quantizer, as for sparsity masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nncf_explore.compression.pruning.groups import ChannelAnalysis, Layout, Segment
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.ops import OpCategory


@dataclass(frozen=True)
class MaskedParam:
    """A parameter masked along axis 0 by the channels of ``layout``."""

    layout: Layout
    ndim: int


def _buffer(gid: int) -> str:
    return f"group_{gid}"


def masked_params(
    graph: Graph, analysis: ChannelAnalysis, prunable: Sequence[int], prune_batch_norms: bool
) -> dict[str, MaskedParam]:
    """Parameter name -> how it is masked, for the filters of ``prunable`` groups and what follows them."""
    chosen = set(prunable)
    specs: dict[str, MaskedParam] = {}
    for group in analysis.groups:
        if group.id not in chosen:
            continue
        for name in group.sources:
            _add(specs, graph.node(name), ((group.id, group.channels),))
    for name in analysis.followers:
        node = graph.node(name)
        layout = analysis.inputs[name]
        if not any(s.group in chosen for s in layout):
            continue
        if node.category is OpCategory.NORMALIZATION and not prune_batch_norms:
            continue
        _add(specs, node, tuple((s.group if s.group in chosen else None, s.channels) for s in layout))
    return specs


def _add(specs: dict[str, MaskedParam], node: Node, segments: tuple[tuple[int | None, int], ...]) -> None:
    layout = tuple(Segment(gid, channels) for gid, channels in segments)
    shape = node.attrs.get("weight_shape", ())
    for port, param in node.params.items():
        # The weight has the layer's full rank; bias, and BatchNorm's weight and bias, are vectors.
        ndim = len(shape) if port == node.attrs.get("weight_port") else 1
        specs[param] = MaskedParam(layout, ndim)


class PruningMasks(nn.Module):
    """Keep flags (1 keeps a filter, 0 prunes it) per group, as buffers ``group_<id>``.

    Args:
        channels: Group id -> its number of filters.
        params: Parameter name -> how it is masked (see :func:`masked_params`).
        analysis: The channel analysis the groups come from; ``strip()`` reads it to cut the layers.
    """

    def __init__(
        self, channels: Mapping[int, int], params: Mapping[str, MaskedParam], analysis: ChannelAnalysis
    ) -> None:
        super().__init__()
        for gid, count in channels.items():
            self.register_buffer(_buffer(gid), torch.ones(count))
        self.params = dict(params)
        self.analysis = analysis

    def group(self, gid: int) -> Tensor:
        """The keep flags of group ``gid``."""
        flags: Tensor = getattr(self, _buffer(gid))
        return flags

    def group_ids(self) -> list[int]:
        """Ids of the masked groups."""
        return [int(name.split("_")[1]) for name, _ in self.named_buffers()]

    def names(self) -> list[str]:
        """Parameter names with a mask."""
        return list(self.params)

    def mask(self, param: str) -> Tensor:
        """``param``'s mask, shaped to broadcast over it (filters along axis 0)."""
        spec = self.params[param]
        parts = [
            self.group(s.group) if s.group is not None else torch.ones(s.channels, device=self._device())
            for s in spec.layout
        ]
        flags = parts[0] if len(parts) == 1 else torch.cat(parts)
        return flags.view(-1, *([1] * (spec.ndim - 1)))

    def _device(self) -> torch.device:
        return next((b.device for b in self.buffers()), torch.device("cpu"))

    def set_flags(self, flags: Mapping[int, Sequence[bool]]) -> None:
        """Copy new keep flags into the buffers."""
        for gid, keep in flags.items():
            buffer = self.group(gid)
            buffer.copy_(torch.tensor(keep, dtype=buffer.dtype, device=buffer.device))

    def flags(self) -> dict[int, list[bool]]:
        """Group id -> keep flags."""
        return {gid: [bool(v) for v in (self.group(gid) > 0.5).tolist()] for gid in self.group_ids()}
