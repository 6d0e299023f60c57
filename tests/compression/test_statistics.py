"""ctrl.statistics(): counts as data, NNCF-like tables as text, and what stays in floating point and why."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import create_compressed_model
from nncf_explore.compression.statistics import NNCFStatistics, QuantizationStatistics
from tests import models
from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


def create(model: nn.Module, config: dict[str, Any]) -> tuple[Any, nn.Module]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, config, dump_graphs=False)


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]


@pytest.fixture(scope="module")
def w4a8_ignoring_conv2() -> tuple[Any, nn.Module]:
    config = digits.init_config(
        digits.quantization_config(4, 8, weights={"ignored_scopes": ["DigitsNet/Conv2d[conv2]/conv2d_0"]})
    )
    return create(digits.trained_fp32(), config)


def test_statistics_are_data_with_counts(w4a8_ignoring_conv2) -> None:
    ctrl, _ = w4a8_ignoring_conv2
    stats = ctrl.statistics()
    assert isinstance(stats, NNCFStatistics) and stats.magnitude_sparsity is None
    quantization = stats.quantization
    assert isinstance(quantization, QuantizationStatistics)
    assert [p.id for p in quantization.weight_points] == [
        "DigitsNet/Conv2d[conv1]/conv2d_0|WEIGHT",
        "DigitsNet/Conv2d[conv3]/conv2d_0|WEIGHT",
        "DigitsNet/Linear[fc]/linear_0|WEIGHT",
    ]
    assert len(quantization.activation_points) == len(ctrl.non_weight_quantizers) == 5
    assert quantization.potential_weights == 4
    assert quantization.ratio_of_enabled_quantizations == 100.0
    assert quantization.bitwidth_distribution() == {8: (0, 5), 4: (3, 0)}
    # input is signed (normalised digits), the ReLU outputs and the pooled ReLU output are not
    assert sorted(quantization.signed.items())[0] == ("/nncf_model_input_0|OUTPUT", True)
    assert sum(quantization.signed.values()) == 1 + 3  # the input and the three signed weight quantizers
    fp32_bytes = sum(p.numel() * 4 for p in digits.DigitsNet().parameters())
    quantized = {"conv1.weight", "conv3.weight", "fc.weight"}
    packed = sum(
        (p.numel() * 4 + 7) // 8 if n in quantized else p.numel() * 4
        for n, p in digits.DigitsNet().named_parameters()
    )
    assert (quantization.fp32_weight_bytes, quantization.quantized_weight_bytes) == (fp32_bytes, packed)


def test_statistics_print_nncf_like_tables(w4a8_ignoring_conv2) -> None:
    ctrl, _ = w4a8_ignoring_conv2
    text = ctrl.statistics().to_str()
    assert text == str(ctrl.statistics())
    sections = [line for line in text.splitlines() if line.startswith("Statistics of")]
    assert sections == [
        "Statistics of the quantization algorithm:",
        "Statistics of the quantization share:",
        "Statistics of the bitwidth distribution:",
    ]
    rows = table_rows(text)
    assert ["Ratio of enabled quantizations", "100.000"] in rows
    assert ["Symmetric WQs / All placed WQs", "100.00 % (3 / 3)"] in rows
    assert ["Placed WQs / Potential WQs", "75.00 % (3 / 4)"] in rows
    assert ["Signed AQs / All placed AQs", "20.00 % (1 / 5)"] in rows
    assert ["Unsigned AQs / All placed AQs", "80.00 % (4 / 5)"] in rows
    header = ["Num bits (N)", "N-bits WQs / Placed WQs", "N-bits AQs / Placed AQs", "N-bits Qs / Placed Qs"]
    index = rows.index(header)
    assert rows[index + 1 : index + 3] == [
        ["8", "0.00 % (0 / 3)", "100.00 % (5 / 5)", "62.50 % (5 / 8)"],
        ["4", "100.00 % (3 / 3)", "0.00 % (0 / 5)", "37.50 % (3 / 8)"],
    ]
    assert "Weight memory: 0.03 MiB quantized vs 0.09 MiB FP32" in text


def test_the_ignored_conv_is_listed_with_its_reason(w4a8_ignoring_conv2) -> None:
    ctrl, _ = w4a8_ignoring_conv2
    unquantized = ctrl.statistics().quantization.unquantized_weights
    assert [(u.node, u.weight, u.reason) for u in unquantized] == [
        ("DigitsNet/Conv2d[conv2]/conv2d_0", "conv2.weight", "matched by ignored_scopes")
    ]
    rows = table_rows(ctrl.statistics().to_str())
    assert ["DigitsNet/Conv2d[conv2]/conv2d_0", "conv2.weight", "matched by ignored_scopes"] in rows


def test_disabled_quantizers_lower_the_enabled_ratio(w4a8_ignoring_conv2) -> None:
    ctrl, _ = w4a8_ignoring_conv2
    ctrl.disable_weight_quantization()
    try:
        stats = ctrl.statistics().quantization
        assert stats.ratio_of_enabled_quantizations == pytest.approx(100 * 5 / 8)
        assert ["Ratio of enabled quantizations", "62.500"] in table_rows(stats.to_str())
    finally:
        ctrl.enable_weight_quantization()


def test_recurrent_weights_are_listed_as_not_quantized_with_the_reason() -> None:
    config = {
        "input_info": {"sample_size": [2, 7], "type": "long"},
        "compression": {"algorithm": "quantization"},
    }
    ctrl, q = create(models.RecurrentTagger().eval(), config)
    stats = ctrl.statistics().quantization
    assert sorted(p.weight_param for p in stats.weight_points) == ["emb.weight", "head.weight"]
    assert [(u.node, u.weight) for u in stats.unquantized_weights] == [
        ("RecurrentTagger/LSTM[lstm]/lstm_0", "lstm.weight_ih_l0"),
        ("RecurrentTagger/LSTM[lstm]/lstm_0", "lstm.weight_hh_l0"),
        ("RecurrentTagger/GRU[gru]/gru_0", "gru.weight_ih_l0"),
        ("RecurrentTagger/GRU[gru]/gru_0", "gru.weight_hh_l0"),
    ]
    assert {u.reason for u in stats.unquantized_weights} == {
        "recurrent op (LSTM/GRU): its weights enter one fused kernel; they stay in floating point"
    }
    assert stats.potential_weights == 6
    text = stats.to_str()
    assert "Weights left in floating point:" in text and "recurrent op (LSTM/GRU)" in text
    assert ["Placed WQs / Potential WQs", "33.33 % (2 / 6)"] in table_rows(text)
    assert q(torch.randint(0, 50, (3, 7))).shape == (3, 7, 5)


def test_no_quantization_prints_nothing() -> None:
    ctrl, _ = create(digits.DigitsNet(), {"input_info": digits.INPUT_INFO})
    assert ctrl.statistics().quantization is None and ctrl.statistics().to_str() == ""
