"""Accuracy on 8×8 digits: INT8 after range init, W4A8 and W3A3 after two epochs of QAT, against FP32.

The held-out split has 449 images, so one image is 0.22 points.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


@pytest.fixture(scope="module")
def fp32_accuracy() -> float:
    accuracy = digits.accuracy(digits.trained_fp32(), *digits.eval_split())
    assert accuracy > 97.0, "the FP32 fixture itself should be a good digits classifier"
    return accuracy


def test_int8_after_range_init_is_within_one_point_of_fp32(fp32_accuracy: float) -> None:
    int8 = digits.compressed_accuracy(None, None, qat_epochs=0)
    assert int8 >= fp32_accuracy - 1.0, f"INT8 {int8:.2f} vs FP32 {fp32_accuracy:.2f}"


def test_w4a8_after_two_epochs_of_qat_is_within_one_and_a_half_points(fp32_accuracy: float) -> None:
    w4a8 = digits.compressed_accuracy(4, 8, qat_epochs=2)
    assert w4a8 >= fp32_accuracy - 1.5, f"W4A8 {w4a8:.2f} vs FP32 {fp32_accuracy:.2f}"


def test_w3a3_after_two_epochs_of_qat_is_within_two_points(fp32_accuracy: float) -> None:
    w3a3 = digits.compressed_accuracy(3, 3, qat_epochs=2)
    assert w3a3 >= fp32_accuracy - 2.0, f"W3A3 {w3a3:.2f} vs FP32 {fp32_accuracy:.2f}"


def test_qat_improves_on_range_init_alone_at_two_bits() -> None:
    # At W2A2 range init alone loses most of the accuracy; two epochs of QAT must win it back.
    before = digits.compressed_accuracy(2, 2, qat_epochs=0)
    after = digits.compressed_accuracy(2, 2, qat_epochs=2)
    assert after > before + 10.0, f"W2A2 {before:.2f} after init, {after:.2f} after QAT"
