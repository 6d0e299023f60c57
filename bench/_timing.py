"""Timing helpers: medians of repeated runs, two threads, ratios taken within one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

THREADS = 2


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def setup_threads() -> None:
    """Use the thread count every figure in docs/benchmarks.md assumes."""
    torch.set_num_threads(THREADS)


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
