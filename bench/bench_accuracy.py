"""Accuracy of a small CNN on scikit-learn's 8×8 digits: FP32, INT8, and QAT at W4A8 and W3A3.

The FP32 net (``tests/compression/digits.py``) trains for 12 epochs with Adam; each compressed
row starts from it, range-initialised and BatchNorm-adapted on the training split.  QAT rows then
train two epochs (Adam, lr 1e-3, cosine decay) following NNCF's contract: ``epoch_step()`` per
epoch, ``step()`` per iteration, ``loss = task + ctrl.loss()``.  Other bit widths than 8 use
``target_device: TRIAL``.  Accuracy is on the held-out 449 images (one image = 0.22 points).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._timing import setup_threads, table
from tests.compression import digits

ROWS = [
    ("INT8 (CPU defaults), range init", None, None, 0),
    ("W4A8 (TRIAL), 2 epochs QAT", 4, 8, 2),
    ("W3A3 (TRIAL), 2 epochs QAT", 3, 3, 2),
    ("W2A2 (TRIAL), range init only", 2, 2, 0),
    ("W2A2 (TRIAL), 2 epochs QAT", 2, 2, 2),
]


def run() -> str:
    """The digits accuracy table."""
    setup_threads()
    with digits.one_thread():
        return _table()


def _table() -> str:
    start = time.perf_counter()
    fp32_model = digits.trained_fp32()
    fp32_seconds = time.perf_counter() - start
    fp32 = digits.accuracy(fp32_model, *digits.eval_split())
    rows: list[list[object]] = [["FP32", f"{fp32:.2f}", "", f"{fp32_seconds:.1f}"]]
    for name, weight_bits, activation_bits, epochs in ROWS:
        start = time.perf_counter()
        accuracy = digits.compressed_accuracy(weight_bits, activation_bits, epochs)
        seconds = time.perf_counter() - start
        rows.append([name, f"{accuracy:.2f}", f"{accuracy - fp32:+.2f}", f"{seconds:.1f}"])
    return (
        "## Accuracy on 8x8 digits\n\n"
        "A 3-conv CNN (24k parameters) on scikit-learn's digits, held-out split of 449 images. Compressed "
        "rows start from the FP32 weights, range-initialised and BatchNorm-adapted on the training split; "
        "QAT rows then train 2 epochs (Adam, lr 1e-3). Time includes creation (and QAT), on one thread: "
        "tensors this small gain nothing from more.\n\n"
        + table(["model", "top-1 (%)", "vs FP32 (points)", "time (s)"], rows)
    )


if __name__ == "__main__":
    print(run())
