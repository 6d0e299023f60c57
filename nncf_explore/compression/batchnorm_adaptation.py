"""BatchNorm adaptation: re-estimate BatchNorm running statistics with the quantizers active.

NNCF (reference doc §4.1 step 10, §8 item 7) runs
``ceil(num_bn_adaptation_samples / batch_size)`` forward passes under
``torch.no_grad()`` with only the BatchNorm layers in train mode, right after
range initialisation, whenever an init loader is registered.

How the new statistics replace the old ones is our choice: each BatchNorm's
running statistics are reset and accumulated as a plain average over the
adaptation batches (``momentum=None``), as ``torch.optim.swa_utils.update_bn``
does.  The result then depends neither on the layer's momentum nor on batch
order, and nothing of the FP32 statistics survives, which is the point of the
adaptation.  A layer that no batch reached keeps its old statistics rather
than the reset ones.  Other modules stay in eval mode (dropout off), and every
module's mode and every momentum are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from nncf_explore.compression.init_data import model_device, run_init_batches
from nncf_explore.config.fields import default_of


def _default_samples() -> int:
    value = default_of("initializer.batchnorm_adaptation.num_bn_adaptation_samples", algorithm="quantization")
    return int(value)


def _tracked_batchnorms(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def _snapshot(bn: _BatchNorm) -> dict[str, Tensor]:
    return {name: buf.detach().clone() for name, buf in bn.named_buffers(recurse=False) if buf is not None}


def adapt_batchnorm(
    model: nn.Module,
    loader: Iterable[Any],
    num_samples: int | None = None,
    *,
    expected: str = "",
    progress: bool = True,
) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``model`` from ``loader``.

    Args:
        model: Usually the compressed model (its quantizers stay active).
        loader: Items ``(inputs, target)``, or a loader with ``get_inputs(batch)``.
        num_samples: Samples to use; default ``num_bn_adaptation_samples`` (2000); 0 disables.
        expected: The input shapes the model was traced with, for error messages.
        progress: Show a progress bar.

    Returns:
        The number of batches run.

    Raises:
        InitDataError: The loader yields no batch, or the model's forward fails on one (the message
            names the batch index and its shapes).

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
        >>> data = [(torch.randn(8, 3) + 5, None) for _ in range(3)]
        >>> adapt_batchnorm(net, data, 16, progress=False), net.training
        (2, False)
    """
    num_samples = _default_samples() if num_samples is None else num_samples
    layers = _tracked_batchnorms(model)
    if num_samples <= 0 or not layers:
        return 0
    modes = [(m, m.training) for m in model.modules()]
    saved = [(bn, bn.momentum, _snapshot(bn)) for bn in layers]
    try:
        model.eval()
        for bn in layers:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        with torch.no_grad():
            return run_init_batches(
                loader,
                num_samples,
                model_device(model),
                lambda args, kwargs, _size: model(*args, **kwargs),
                desc="BatchNorm adaptation",
                expected=expected,
                progress=progress,
            )
    finally:
        _restore(saved, modes)


def _restore(
    saved: list[tuple[_BatchNorm, float | None, dict[str, Tensor]]], modes: list[tuple[nn.Module, bool]]
) -> None:
    for bn, momentum, buffers in saved:
        bn.momentum = momentum
        tracked = bn.num_batches_tracked
        if tracked is not None and int(tracked) == 0:
            with torch.no_grad():
                for name, value in buffers.items():
                    getattr(bn, name).copy_(value)
    for module, training in modes:
        module.training = training
