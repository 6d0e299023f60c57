"""Physically remove pruned filters: smaller convolutions, BatchNorms and linear layers.

Masked filters output zeros (their weight, bias and following BatchNorm are masked), so a
layer that consumes them can drop those input channels without changing its output.  The
copy therefore computes what the masked model computes, with fewer parameters and FLOPs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nncf_explore.compression.interface import PRUNING_MASKS, SPARSITY_MASKS, compression_interface
from nncf_explore.compression.pruning.groups import ChannelAnalysis, channel_mask
from nncf_explore.compression.pruning.masks import PruningMasks
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.compression.sparsity import mask_key
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.ops import OpCategory

_CONSUMERS = (OpCategory.CONVOLUTION, OpCategory.LINEAR)


def pruned_copy(model: nn.Module) -> nn.Module | None:
    """A copy of compressed ``model`` without its pruned filters; None when it has no pruning masks."""
    if compression_interface(model)._modules.get(PRUNING_MASKS) is None:
        return None
    copied = copy.deepcopy(model)
    remove_pruned_filters(copied)
    return copied


def remove_pruned_filters(model: nn.Module) -> None:
    """Cut every pruned filter out of compressed ``model`` in place, and drop its pruning masks."""
    interface = compression_interface(model)
    masks: PruningMasks = getattr(interface, PRUNING_MASKS)
    graph: Graph = interface.graph
    flags = masks.flags()
    cuts = _cuts(graph, masks.analysis, flags)
    if cuts:
        _cut_activation_quantizers(model, masks.analysis, flags)
    for node, dim, keep in cuts:
        _cut_node(model, node, dim, keep)
    del interface._modules[PRUNING_MASKS]
    interface.invalidate_plan()


def _cuts(
    graph: Graph, analysis: ChannelAnalysis, flags: dict[int, list[bool]]
) -> list[tuple[Node, int, list[bool]]]:
    """``(node, axis 0 = filters or 1 = inputs, keep flags)`` for every layer that shrinks."""
    cuts: list[tuple[Node, int, list[bool]]] = []
    for gid, keep in flags.items():
        if not all(keep):
            cuts += [(graph.node(name), 0, keep) for name in analysis.groups[gid].sources]
    for name, layout in analysis.inputs.items():
        keep = channel_mask(layout, flags)
        if all(keep):
            continue
        node = graph.node(name)
        cuts.append((node, 1 if node.category in _CONSUMERS else 0, keep))
    return cuts


def _cut_activation_quantizers(
    model: nn.Module, analysis: ChannelAnalysis, flags: dict[int, list[bool]]
) -> None:
    """Cut per-channel activation quantizers (NNCF puts them before depthwise convolutions)."""
    interface = compression_interface(model)
    for points, quantizer in interface.groups():
        if points[0].kind == "weight" or quantizer.channel_axis is None:
            continue
        size = quantizer.scale_shape[quantizer.channel_axis]
        layouts = [
            analysis.inputs[op] for p in points for op in p.directly_quantized_ops if op in analysis.inputs
        ]
        keeps = [channel_mask(layout, flags) for layout in layouts]
        if not keeps or any(keep != keeps[0] or len(keep) != size for keep in keeps):
            raise ConfigError(
                f"strip/export with filter_pruning: activation quantizer {points[0].id!r} is per-channel "
                "on a tensor whose pruned channels nncf_explore cannot tell; set "
                "compression.activations.per_channel to false, or add the quantizer's op to the "
                "filter_pruning ignored_scopes"
            )
        if not all(keeps[0]):
            index = torch.tensor([i for i, k in enumerate(keeps[0]) if k], dtype=torch.long)
            _cut_quantizer(quantizer, quantizer.channel_axis, size, index)


def _cut_node(model: nn.Module, node: Node, dim: int, keep: Sequence[bool]) -> None:
    module = model.get_submodule(node.module)
    index = torch.tensor([i for i, k in enumerate(keep) if k], dtype=torch.long)
    for port, fqn in node.params.items():
        if port == node.attrs.get("weight_port"):
            _cut_param(model, fqn, dim, index)
        elif dim == 0:  # a bias follows the filters, not the inputs
            _cut_param(model, fqn, 0, index)
    kept = len(index)
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
        for name in ("running_mean", "running_var"):
            buffer = getattr(module, name)
            if buffer is not None:
                setattr(module, name, buffer.index_select(0, index.to(buffer.device)).clone())
        module.num_features = kept
    elif isinstance(module, nn.modules.conv._ConvNd):
        _resize_conv(module, node, dim, kept)
    elif isinstance(module, nn.Linear):
        if dim == 0:
            module.out_features = kept
        else:
            module.in_features = kept


def _resize_conv(module: nn.modules.conv._ConvNd, node: Node, dim: int, kept: int) -> None:
    if node.category is OpCategory.DEPTHWISE_CONVOLUTION:
        module.in_channels = module.out_channels = module.groups = kept
    elif dim == 0:
        module.out_channels = kept
    else:
        module.in_channels = kept


def _cut_param(model: nn.Module, fqn: str, axis: int, index: Tensor) -> None:
    owner_name, _, name = fqn.rpartition(".")
    owner = model.get_submodule(owner_name)
    old = owner._parameters[name]
    assert old is not None
    size = old.shape[axis]
    new = nn.Parameter(old.detach().index_select(axis, index.to(old.device)).clone())
    new.requires_grad_(old.requires_grad)
    owner._parameters[name] = new
    interface = compression_interface(model)
    for point in interface.setup.weights:
        if point.weight_param == fqn:
            _cut_quantizer(interface.quantizer(point.id), axis, size, index)
    sparsity = interface._modules.get(SPARSITY_MASKS)
    key = mask_key(fqn)
    if sparsity is not None and key in sparsity._buffers:
        mask = sparsity._buffers[key]
        assert mask is not None
        sparsity._buffers[key] = mask.index_select(axis, index.to(mask.device)).clone()


def _cut_quantizer(quantizer: BaseQuantizer, axis: int, size: int, index: Tensor) -> None:
    shape = tuple(quantizer.scale_shape)
    if quantizer.channel_axis != axis or not shape or shape[axis] != size:
        return  # per-tensor, or per-channel along the other axis: nothing to cut
    for name, param in list(quantizer._parameters.items()):
        if param is not None and tuple(param.shape) == shape:
            cut = param.detach().index_select(axis, index.to(param.device)).clone()
            quantizer._parameters[name] = nn.Parameter(cut, param.requires_grad)
    for name, buffer in list(quantizer._buffers.items()):
        if buffer is not None and tuple(buffer.shape) == shape:
            quantizer._buffers[name] = buffer.index_select(axis, index.to(buffer.device)).clone()
    quantizer.scale_shape = (*shape[:axis], len(index), *shape[axis + 1 :])
