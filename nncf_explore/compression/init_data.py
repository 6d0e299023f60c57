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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nncf_explore.config.init_args import wrap_dataloader_for_init
from nncf_explore.errors import InitDataError, NNCFExploreError
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


def expected_batches(loader: Iterable[Any], num_samples: int, batch_size: int | None) -> int | None:
    """Batches :func:`init_batches` will run: the sample budget's, or the loader's length if shorter.

    Examples:
        >>> expected_batches([0] * 22, 2000, 32), expected_batches([0] * 22, 64, 32)
        (22, 2)
        >>> expected_batches(iter([]), 64, None) is None
        True
    """
    wanted = math.ceil(num_samples / batch_size) if batch_size else None
    try:
        length: int | None = len(loader)  # type: ignore[arg-type]
    except TypeError:
        length = None
    known = [n for n in (wanted, length) if n is not None]
    return min(known) if known else None


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
    sized = init_loader.batch_size is not None
    total = expected_batches(init_loader, num_samples, init_loader.batch_size)
    seen = 0
    if num_samples <= 0:
        return
    with tqdm(total=total, desc=desc, unit="batch", disable=None if progress else True) as bar:
        for item in init_loader:
            args, kwargs = map_tensors(batch_inputs(init_loader, item), lambda t: t.to(device))
            size = _batch_size(args, kwargs)
            if not sized:  # a loader without batch_size: its first batch tells (no "4/?")
                sized = True
                bar.total = expected_batches(init_loader, num_samples, size)
                bar.refresh()
            yield args, kwargs, size
            bar.update(1)
            seen += size
            if seen >= num_samples:
                break  # before fetching another batch, which may be expensive to load


def _loader_name(loader: Iterable[Any]) -> str:
    inner = getattr(loader, "data_loader", loader)  # InitializingDataLoader wraps the user's loader
    return type(inner).__name__


def _shapes(args: Args, kwargs: Kwargs) -> str:
    shapes = [str(list(t.shape)) for t in tensor_leaves((args, kwargs))]
    return ", ".join(shapes) if shapes else "no tensors"


def run_init_batches(
    loader: Iterable[Any],
    num_samples: int,
    device: torch.device,
    step: Callable[[Args, Kwargs, int], None],
    *,
    desc: str,
    expected: str = "",
    error: type[InitDataError] = InitDataError,
    progress: bool = True,
) -> int:
    """Call ``step(args, kwargs, batch_size)`` on each batch of :func:`init_batches`; the batch count.

    Args:
        loader: The init data loader.
        num_samples: The sample budget; 0 or less runs nothing.
        device: Where the batch tensors go.
        step: Runs the model on one batch.
        desc: What the batches are for, e.g. ``"range init"``; starts every error message.
        expected: The input shapes the model was traced with, for the error message.
        error: The error class to raise.
        progress: Show a progress bar.

    Raises:
        InitDataError: (or ``error``) the loader yields no batch, or ``step`` fails on one; the
            message names the batch index (from 0) and its shapes.  Our own errors pass unchanged.

    Examples:
        >>> run_init_batches([], 4, torch.device("cpu"), lambda *_: None, desc="demo", progress=False)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nncf_explore.errors.InitDataError: demo: the init data loader (a list) yielded no batch; ...
    """
    if num_samples <= 0:
        return 0
    count = 0
    for args, kwargs, size in init_batches(loader, num_samples, device, desc=desc, progress=progress):
        try:
            step(args, kwargs, size)
        except NNCFExploreError:
            raise
        except Exception as exc:
            like = f" ({expected})" if expected else ""
            raise error(
                f"{desc}: batch {count} of the init data loader (counting from 0): the model's forward "
                f"failed with {type(exc).__name__}: {exc}. The loader must yield batches shaped like the "
                f"inputs the model was traced with{like}, but this batch holds tensors of shape "
                f"{_shapes(args, kwargs)}; fix the loader (or its get_inputs) or input_info"
            ) from exc
        count += 1
    if count == 0:
        raise error(
            f"{desc}: the init data loader (a {_loader_name(loader)}) yielded no batch; pass a loader "
            "with data (check its dataset's length, and drop_last with a batch size above the dataset "
            "size), or set num_init_samples (range init) / num_bn_adaptation_samples (BatchNorm "
            "adaptation) to 0 to skip this step"
        )
    return count
