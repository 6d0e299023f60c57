"""A tiny conv net with a hand-written quantizer setup, and NNCF's fake-quant formula written out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.graph import Graph, trace_model

INPUT = "/nncf_model_input_0"
CONV = "TinyConv/Conv2d[conv]/conv2d_0"
RELU = "TinyConv/relu_0"
FC = "TinyConv/Linear[fc]/linear_0"


class TinyConv(nn.Module):
    """conv -> relu -> flatten -> linear, no in-place ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv(x))
        return self.fc(torch.flatten(y, 1))


def tiny() -> tuple[TinyConv, Graph]:
    torch.manual_seed(0)
    model = TinyConv().eval()
    return model, trace_model(model, {"sample_size": [2, 3, 6, 6]})


def tiny_setup(*, with_fc_input: bool = True) -> QuantizerSetup:
    """Conv weight (per channel, signed), input and relu output (per tensor), fc input as a pre-hook."""
    weight = QuantizationPoint(
        "weight",
        CONV,
        1,
        QuantizerSpec(per_channel=True, signed=True),
        scale_shape=(4, 1, 1, 1),
        channel_axis=0,
        channel_shape=(4, 1, 1, 1),
        weight_param="conv.weight",
    )
    points = [
        weight,
        QuantizationPoint("activation", INPUT, None, QuantizerSpec(), channel_shape=(1, 3, 1, 1)),
        QuantizationPoint("activation", RELU, None, QuantizerSpec(), channel_shape=(1, 4, 1, 1)),
    ]
    if with_fc_input:
        points.append(QuantizationPoint("activation", FC, 0, QuantizerSpec(bits=4), channel_shape=(1, 144)))
    return QuantizerSetup(tuple(points))


def fake_quantize(x: Tensor, input_low: Tensor, input_range: Tensor, levels: int) -> Tensor:
    """NNCF's formula (reference doc §5.2), written independently of the package."""
    s = (levels - 1) / input_range
    y = torch.minimum(torch.maximum(x, input_low), input_low + input_range)
    zero_point = torch.round(-input_low * s)
    return torch.round((y - input_low) * s - zero_point) / s


def symmetric(x: Tensor, scale: Tensor, bits: int, signed: bool) -> Tensor:
    """Symmetric fake quantization with levels ``-2^(b-1)..2^(b-1)-1`` or ``0..2^b-1``."""
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    safe = scale.abs() + 1e-16
    input_low = safe * low / high
    return fake_quantize(x, input_low, safe - input_low, high - low + 1)
