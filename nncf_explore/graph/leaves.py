"""Arguments and outputs of torch calls as flat lists of leaves, in NNCF's port order.

A call's input ports are the leaves of its arguments, nested lists and tuples
flattened (``torch.cat([a, b])`` has ports 0 and 1); its output ports are the
tensors of its result in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

Args = tuple[Any, ...]
Kwargs = dict[str, Any]

_SEQUENCES = (list, tuple)  # a tuple of types: isinstance checks it faster than ``list | tuple``


def flatten_leaves(args: Args, kwargs: Kwargs) -> list[Any]:
    """Leaves of a call's arguments in NNCF's port order: nested lists and tuples flattened."""
    leaves: list[Any] = []
    _flatten_into(args, leaves)
    if kwargs:
        _flatten_into(kwargs.values(), leaves)
    return leaves


def _flatten_into(values: Iterable[Any], leaves: list[Any]) -> None:
    for item in values:
        if isinstance(item, _SEQUENCES) and not isinstance(item, torch.Size):
            _flatten_into(item, leaves)
        else:
            leaves.append(item)


def replace_leaves(args: Args, kwargs: Kwargs, new: dict[int, Any]) -> tuple[Args, Kwargs]:
    """Rebuild ``(args, kwargs)`` with the leaves at the given ports replaced."""
    last = max(new)
    if last < len(args) and not any(isinstance(a, _SEQUENCES) for a in args[:last]):
        # Every port is a top-level positional argument (a conv's weight, say): ports are indices.
        items = list(args)
        for port, value in new.items():
            items[port] = value
        return tuple(items), kwargs
    counter = iter(range(1 << 30))

    def rebuild(value: Any) -> Any:
        if isinstance(value, _SEQUENCES) and not isinstance(value, torch.Size):
            items = [rebuild(v) for v in value]
            return type(value)(items) if isinstance(value, list) else tuple(items)
        port = next(counter)
        return new.get(port, value)

    new_args = tuple(rebuild(a) for a in args)
    new_kwargs = {k: rebuild(v) for k, v in kwargs.items()}
    return new_args, new_kwargs


def tensor_leaves(value: Any) -> Iterator[torch.Tensor]:
    """Tensors in a nested output structure (tuples, lists, dicts, dataclass-free), in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from tensor_leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensor_leaves(v)


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor of a nested structure, keeping its shape and container types."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(map_tensors(v, fn) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return type(value)((k, map_tensors(v, fn)) for k, v in value.items())
    return value
