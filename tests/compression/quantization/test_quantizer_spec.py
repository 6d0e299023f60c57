"""QuantizerSpec: level bounds from the reference doc §5.1, labels, JSON round trip, validation."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from nncf_explore.compression.quantization.spec import QuantizerSpec, check_scale_shape, level_bounds


@pytest.mark.parametrize(
    ("bits", "mode", "signed", "narrow", "half", "expected"),
    [
        (8, "symmetric", True, False, False, (-128, 127)),
        (8, "symmetric", False, False, False, (0, 255)),
        (8, "symmetric", True, True, False, (-127, 127)),
        (8, "symmetric", False, True, False, (0, 254)),
        (8, "symmetric", True, False, True, (-64, 63)),
        (8, "symmetric", True, True, True, (-63, 63)),
        (8, "asymmetric", False, False, False, (0, 255)),
        (8, "asymmetric", True, False, False, (0, 255)),
        (8, "asymmetric", False, True, False, (1, 255)),
        (8, "asymmetric", False, False, True, (0, 127)),
        (4, "symmetric", True, False, False, (-8, 7)),
        (2, "symmetric", True, False, False, (-2, 1)),
        (2, "symmetric", True, True, False, (-1, 1)),
        (3, "symmetric", True, False, True, (-2, 1)),
    ],
)
def test_level_bounds(
    bits: int, mode: str, signed: bool, narrow: bool, half: bool, expected: tuple[int, int]
) -> None:
    assert level_bounds(bits, mode, signed, narrow, half) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("bits", "half"), [(1, False), (2, True), (17, False), (0, False)])
def test_level_bounds_rejects_bits_out_of_range(bits: int, half: bool) -> None:
    with pytest.raises(ValueError, match="out of range"):
        level_bounds(bits, "symmetric", True, False, half)


def test_bits_must_be_int() -> None:
    with pytest.raises(TypeError):
        QuantizerSpec(bits=8.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        QuantizerSpec(bits=True)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        QuantizerSpec(mode="sym")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        (QuantizerSpec(), "B:8 M:S SGN:ANY PC:N NR:N"),
        (QuantizerSpec(per_channel=True, signed=True, narrow_range=True), "B:8 M:S SGN:S PC:Y NR:Y"),
        (QuantizerSpec(bits=4, mode="asymmetric", signed=False), "B:4 M:A SGN:U PC:N NR:N"),
    ],
)
def test_label_matches_nncf_quantizer_config_string(spec: QuantizerSpec, label: str) -> None:
    assert spec.label() == label


@pytest.mark.parametrize(
    "spec",
    [
        QuantizerSpec(),
        QuantizerSpec(bits=4, mode="asymmetric", per_channel=True, signed=False, narrow_range=True),
        QuantizerSpec(half_range=True, logarithm_scale=True, signed=True),
    ],
)
def test_json_round_trip(spec: QuantizerSpec) -> None:
    assert QuantizerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_from_dict_uses_defaults_and_rejects_unknown_keys() -> None:
    assert QuantizerSpec.from_dict({}) == QuantizerSpec()
    with pytest.raises(ValueError, match="unknown QuantizerSpec keys \\['per_chanel'\\]"):
        QuantizerSpec.from_dict({"per_chanel": True})


def test_check_scale_shape() -> None:
    check_scale_shape(QuantizerSpec(), (1,), None)
    check_scale_shape(QuantizerSpec(), (1, 1, 1, 1), None)
    check_scale_shape(QuantizerSpec(per_channel=True), (16, 1, 1, 1), 0)
    check_scale_shape(QuantizerSpec(per_channel=True), (1, 16, 1, 1), -3)
    with pytest.raises(ValueError, match="per-tensor"):
        check_scale_shape(QuantizerSpec(), (3,), None)
    with pytest.raises(ValueError, match="channel_axis"):
        check_scale_shape(QuantizerSpec(per_channel=True), (3, 1), None)
    with pytest.raises(ValueError, match="except channel_axis"):
        check_scale_shape(QuantizerSpec(per_channel=True), (3, 2), 0)
    with pytest.raises(ValueError, match="non-empty"):
        check_scale_shape(QuantizerSpec(), (), None)


@pytest.mark.parametrize("module", ["spec", "fake_quantize", "quantizers", "range_init", "export"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"nncf_explore.compression.quantization.{module}"))
    assert result.attempted > 0 and result.failed == 0
