"""Progress bars of init passes have the right total (issue 12: "BN adaptation" ended red at 22/32)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
import tqdm.auto
from torch import nn

from nncf_explore.compression.batchnorm_adaptation import adapt_batchnorm
from nncf_explore.compression.init_data import init_batches


class _Recording(tqdm.auto.tqdm):  # type: ignore[misc, name-defined]
    bars: ClassVar[list[Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "disable": False})
        _Recording.bars.append(self)


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    _Recording.bars = []
    monkeypatch.setattr(tqdm.auto, "tqdm", _Recording)
    return _Recording.bars


def test_bn_adaptation_total_is_the_loaders_length_when_it_is_shorter(bars: list[Any]) -> None:
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(22 * 4, 3)), batch_size=4)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    # 2000 samples at batch 4 would be 500 batches; the loader has 22.
    adapt_batchnorm(net, [(x, 0) for (x,) in loader], 2000)
    assert bars[-1].total == 22 and bars[-1].n == 22


def test_a_loader_without_batch_size_gets_a_total_from_its_first_batch(bars: list[Any]) -> None:
    data = [(torch.zeros(4, 3), 0) for _ in range(10)]  # a list: no batch_size attribute
    list(init_batches(data, 16, torch.device("cpu"), desc="Range init"))
    assert bars[-1].total == 4 and bars[-1].n == 4  # not "4/?"
