"""Init data: forward arguments from an init data loader, batch by batch, up to a sample budget.

The loader contract is :class:`~nncf_explore.config.init_args.InitializingDataLoader`'s
(reference doc §1.6): ``get_inputs(batch) -> (args, kwargs)``, by default
``(inputs,), {}`` from ``(inputs, target)`` items.  Tensors are moved to the
model's device, and ``ceil(num_samples / batch_size)`` batches are used.  Range
initialisation and BatchNorm adaptation both read their data through
:func:`init_batches`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nncf_explore.config.init_args import wrap_dataloader_for_init
from nncf_explore.graph.leaves import Args, Kwargs, map_tensors, tensor_leaves


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless model)."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def batch_inputs(loader: Iterable[Any], batch: Any) -> tuple[Args, Kwargs]:
    """The forward ``(args, kwargs)`` of one item of ``loader`` (its ``get_inputs``, or the default split).

    Examples:
        >>> args, kwargs = batch_inputs([], (torch.ones(2, 3), torch.zeros(2)))
        >>> args[0].shape, kwargs
        (torch.Size([2, 3]), {})
    """
    args, kwargs = wrap_dataloader_for_init(loader).get_inputs(batch)
    return tuple(args), dict(kwargs)


def _batch_size(args: Args, kwargs: Kwargs) -> int:
    for tensor in tensor_leaves((args, kwargs)):
        return int(tensor.shape[0]) if tensor.dim() else 1
    return 1


def init_batches(
    loader: Iterable[Any], num_samples: int, device: torch.device, *, desc: str, progress: bool = True
) -> Iterator[tuple[Args, Kwargs, int]]:
    """``(args, kwargs, batch_size)`` on ``device`` until ``num_samples`` samples were yielded.

    That is ``ceil(num_samples / batch_size)`` batches, fewer if the loader ends
    first.  A ``tqdm.auto`` bar shows progress in terminals and notebooks.

    Examples:
        >>> data = [(torch.zeros(4, 3), 0), (torch.ones(4, 3), 1), (torch.ones(4, 3), 2)]
        >>> [(args[0].shape[0], size) for args, _, size in init_batches(data, 5, torch.device("cpu"),
        ...                                                             desc="demo", progress=False)]
        [(4, 4), (4, 4)]
    """
    from tqdm.auto import tqdm  # imported late: tqdm.auto probes for a notebook front end

    init_loader = wrap_dataloader_for_init(loader)
    batch = init_loader.batch_size
    total = math.ceil(num_samples / batch) if batch else None
    seen = 0
    if num_samples <= 0:
        return
    with tqdm(total=total, desc=desc, unit="batch", disable=None if progress else True) as bar:
        for item in init_loader:
            args, kwargs = map_tensors(batch_inputs(init_loader, item), lambda t: t.to(device))
            size = _batch_size(args, kwargs)
            yield args, kwargs, size
            bar.update(1)
            seen += size
            if seen >= num_samples:
                break  # before fetching another batch, which may be expensive to load
