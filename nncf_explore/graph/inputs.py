"""Mock inputs from NNCF's ``input_info``.

NNCF semantics: ``sample_size`` is the full shape including the batch
dimension, ``type`` ``"long"`` gives int64 and anything else float32, the
default ``filler`` is ``ones`` (``zeros`` and ``random``, i.e. ``torch.rand``,
also exist), and ``keyword`` passes the tensor as a keyword argument instead of
positionally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nncf_explore.config.sections import resolve
from nncf_explore.errors import ConfigError

InputInfo = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_FILLERS = {"ones": torch.ones, "zeros": torch.zeros, "random": torch.rand}


def input_info_list(input_info: InputInfo) -> list[Mapping[str, Any]]:
    """``input_info`` as a list of entries (NNCF accepts one dict or a list)."""
    return [input_info] if isinstance(input_info, Mapping) else list(input_info)


def make_mock_inputs(
    input_info: InputInfo, device: torch.device | str = "cpu"
) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """Build ``(args, kwargs)`` of mock tensors from ``input_info``.

    Examples:
        >>> args, kwargs = make_mock_inputs([{"sample_size": [1, 4]}, {"sample_size": [1, 7], "type": "long",
        ...                                   "keyword": "ids", "filler": "zeros"}])
        >>> args[0].shape, kwargs["ids"].dtype
        (torch.Size([1, 4]), torch.int64)
    """
    args: list[torch.Tensor] = []
    kwargs: dict[str, torch.Tensor] = {}
    for i, entry in enumerate(input_info_list(input_info)):
        path = f"input_info[{i}]"
        if "sample_size" not in entry:
            raise ConfigError(
                f"{path}: 'sample_size' is required, e.g. {{\"sample_size\": [1, 3, 224, 224]}}"
            )
        shape = entry["sample_size"]
        if not isinstance(shape, list | tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ConfigError(f"{path}.sample_size: expected a list of non-negative integers, got {shape!r}")
        filler_name = resolve(entry, "filler", under="input_info")
        if filler_name not in _FILLERS:
            raise ConfigError(f"{path}.filler: {filler_name!r} is not one of {sorted(_FILLERS)}")
        dtype = torch.long if resolve(entry, "type", under="input_info") == "long" else torch.float32
        filler = _FILLERS[filler_name]
        if filler is torch.rand and dtype == torch.long:
            tensor = torch.randint(0, 2, tuple(shape), dtype=dtype, device=device)
        else:
            tensor = filler(tuple(shape), dtype=dtype, device=device)
        if entry.get("keyword"):
            kwargs[str(entry["keyword"])] = tensor
        else:
            args.append(tensor)
    return tuple(args), kwargs
