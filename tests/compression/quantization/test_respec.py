"""Respecifying a point's bit width keeps NNCF's weight rules at every bit width."""

from __future__ import annotations

import pytest

from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.compression.quantization.spec import QuantizerSpec


@pytest.mark.parametrize("bits", range(2, 9))
def test_a_half_range_weight_takes_every_bit_width(bits: int) -> None:
    # The CPU default (overflow fix): 8-bit weights quantize with half range; below 8 bits the
    # overflow fix does not apply, and a 2-bit half-range spec could not even be built.
    point = QuantizationPoint("weight", "N/conv2d_0", 1, QuantizerSpec(half_range=True), weight_param="w")
    spec = point.respec(bits=bits).spec
    assert spec.bits == bits
    assert spec.half_range is (bits == 8)
    assert spec.narrow_range is False


def test_an_8_bit_weight_without_half_range_is_narrow() -> None:
    point = QuantizationPoint("weight", "N/conv2d_0", 1, QuantizerSpec(bits=4), weight_param="w")
    assert point.respec(bits=8).spec.narrow_range is True
