"""Explorers on small real models, built the way the tests share."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from torch import nn

from nncf_explore.widgets import Explorer

TRIAL_CONFIG = {
    "input_info": {"sample_size": [1, 1, 8, 8]},
    "target_device": "TRIAL",
    "compression": {"algorithm": "quantization"},
}
"""Quantization for 1x8x8 inputs on the TRIAL target, where every bit width and mode is allowed."""


def trial_explorer(model: nn.Module, init_loader: Iterable[Any] | None = None) -> Explorer:
    """An Explorer on ``model`` with :data:`TRIAL_CONFIG`.

    Range-init warnings (no loader, or too few samples) are expected here and silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Explorer(model, TRIAL_CONFIG, init_loader=init_loader)
