"""Bad calibration data gets our own error (naming the quantizer or batch, and the fix), never NaN ranges."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.compression.batchnorm_adaptation import adapt_batchnorm
from nncf_explore.compression.quantization.range_init import make_collector
from nncf_explore.compression.quantization.range_stats import SAFE_RANGE_LIMIT, RangeInitWarning
from nncf_explore.errors import InitDataError, NNCFExploreError, RangeInitError
from tests.compression.tiny import TinyConv

SHAPE = (2, 3, 6, 6)
INPUT_QUANTIZER = "/nncf_model_input_0|OUTPUT"


def batches(*fills: float | None, n: int = 3) -> list[tuple[torch.Tensor, int]]:
    """``n`` random batches; a fill value replaces one element of the batch at that position."""
    generator = torch.Generator().manual_seed(0)
    out = [(torch.randn(SHAPE, generator=generator), 0) for _ in range(n)]
    for index, fill in enumerate(fills):
        if fill is not None:
            out[index][0][0, 0, 0, 0] = fill
    return out


def config(loader: list[Any], **quantization: Any) -> NNCFConfig:
    cfg = NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": list(SHAPE)},
            "compression": {"algorithm": "quantization", **quantization},
        }
    )
    return register_default_init_args(cfg, loader)


def create(loader: list[Any], **quantization: Any) -> tuple[Any, nn.Module]:
    torch.manual_seed(0)
    return create_compressed_model(TinyConv().eval(), config(loader, **quantization), dump_graphs=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_init_data_is_refused_naming_the_quantizer_batch_and_fix(bad: float) -> None:
    with pytest.raises(RangeInitError) as info:
        create(batches(None, bad))
    message = str(info.value)
    assert message.startswith(
        "range init: batch 1 of the init data loader (counting from 0) gives 1 non-finite value(s) "
        f"(NaN or inf) of 216 at the input of quantizer '{INPUT_QUANTIZER}'"
    )
    assert "clean or filter the dataset (e.g. torch.nan_to_num" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, NNCFExploreError)


def test_non_finite_weight_is_refused_naming_the_quantizer() -> None:
    model = TinyConv().eval()
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")  # fc's output has no quantizer: only the weight check sees it
    with pytest.raises(RangeInitError, match=r"weight 'fc.weight' of quantizer 'TinyConv/Linear\[fc\]/"):
        create_compressed_model(model, config(batches()), dump_graphs=False)


@pytest.mark.parametrize(
    "quantization",
    [
        {},
        {"activations": {"mode": "asymmetric"}},
        {"initializer": {"range": {"type": "threesigma"}}},
        {"initializer": {"range": {"type": "mean_min_max"}}},
        {"initializer": {"range": {"type": "percentile", "params": {"max_percentile": 100}}}},
    ],
    ids=["mixed_min_max", "asymmetric", "threesigma", "mean_min_max", "percentile"],
)
@pytest.mark.parametrize("outlier", [1.7e38, -3.4e38])
def test_a_finite_outlier_never_makes_outputs_nan(quantization: dict[str, Any], outlier: float) -> None:
    loader = batches(None, outlier)
    # Every sample gets outliers (so per-sample means see them), 3 apart so that no 3x3 conv window
    # adds two of them up to inf, which range init would rightly refuse as non-finite.
    loader[1][0][:, :, ::3, ::3] = outlier
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ctrl, q = create(loader, **quantization)
    with torch.no_grad():
        out = q(batches()[2][0])
    assert torch.isfinite(out).all()
    for quantizer in q.nncf.quantizers().values():
        assert all(torch.isfinite(t).all() for t in quantizer.quantization_range())
    clamped = [str(w.message) for w in caught if issubclass(w.category, RangeInitWarning)]
    if "threesigma" in str(quantization):
        assert not clamped  # median ± 3 MAD is robust to 11 % outliers
        return
    assert len(clamped) == 1 and "clamped there so that quantization stays finite" in clamped[0]
    assert repr(INPUT_QUANTIZER) in clamped[0]


def test_statistics_stay_finite_in_float32_for_huge_values() -> None:
    collector = make_collector("threesigma")
    collector.register(torch.tensor([[-3.4e38, 3.4e38, 3.4e38, -3.4e38]]))
    low, high = collector.min_max()
    assert torch.isfinite(low).all() and torch.isfinite(high).all()
    assert SAFE_RANGE_LIMIT < 3.4e38 / 2**16


def test_a_batch_of_the_wrong_shape_names_the_batch_and_the_traced_shape() -> None:
    loader = batches()
    loader[2] = (torch.randn(2, 4, 6, 6), 0)
    with pytest.raises(RangeInitError) as info:
        create(loader)
    message = str(info.value)
    assert message.startswith(
        "range init: batch 2 of the init data loader (counting from 0): the model's forward failed with "
        "RuntimeError: "
    )
    assert "shaped like the inputs the model was traced with (traced with [2, 3, 6, 6])" in message
    assert "this batch holds tensors of shape [2, 4, 6, 6]" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_an_empty_loader_names_the_loader_and_the_fix() -> None:
    with pytest.raises(RangeInitError, match=r"range init: the init data loader \(a list\) yielded no batch"):
        create([])


def test_an_empty_loader_without_input_info_is_refused_before_tracing() -> None:
    cfg = register_default_init_args(NNCFConfig.from_dict({"compression": {"algorithm": "quantization"}}), [])
    with pytest.raises(InitDataError, match=r"input_info: the config has no input_info, .* yielded no batch"):
        create_compressed_model(TinyConv().eval(), cfg, dump_graphs=False)


class TinyBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def test_batchnorm_adaptation_refuses_an_empty_loader_and_restores_the_model() -> None:
    model = TinyBN().eval()
    before = model.bn.running_mean.clone()
    with pytest.raises(
        InitDataError, match=r"BatchNorm adaptation: the init data loader \(a list\) yielded no"
    ):
        adapt_batchnorm(model, [], 8, progress=False)
    assert torch.equal(model.bn.running_mean, before) and not model.training


def test_batchnorm_adaptation_names_the_batch_of_the_wrong_shape() -> None:
    model = TinyBN().eval()
    loader = [(torch.randn(2, 3, 6, 6), 0), (torch.randn(2, 5, 6, 6), 0)]
    with pytest.raises(InitDataError, match=r"BatchNorm adaptation: batch 1 of the init data loader") as info:
        adapt_batchnorm(model, loader, 8, progress=False)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "tensors of shape [2, 5, 6, 6]" in str(info.value)
