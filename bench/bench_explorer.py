"""Explorer edits on a real model: each edit regenerates the config and the compressed model.

Targets (issues 4 and 12): one edit on ResNet-18 within 100 ms on the Python side, re-using the trace
and the range statistics; a 5,000-node graph's first draw within 1 s and each interaction (select,
edit, overlay, zoom relabel, theme) within 100 ms (``bench_widget.py``, included below).
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._timing import median_seconds, setup_threads, table
from tests import models


def _explorer() -> object:
    from nncf_explore import Explorer

    loader = [(torch.randn(4, 3, 224, 224), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    config = {
        "input_info": {"sample_size": [1, 3, 224, 224]},
        "target_device": "TRIAL",
        "compression": {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 8}}},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Explorer(models.resnet18(), config, init_loader=loader)


def _edit_rows(ex: object) -> list[list[object]]:
    session = ex.session  # type: ignore[attr-defined]
    weight = session.setup.weights[5].id
    act = session.setup.activations[5].id
    toggles = iter([session.setup.without([weight]), session.setup] * 20)
    bits = iter([session.setup.replace_point(weight, spec={"bits": b}) for b in (4, 8)] * 20)
    modes = iter(
        [session.setup.replace_point(act, spec={"mode": m}) for m in ("asymmetric", "symmetric")] * 20
    )
    rows = []
    for label, source in (
        ("weight quantizer off/on", toggles),
        ("weight bits 8 <-> 4", bits),
        ("activation mode sym <-> asym", modes),
    ):
        seconds = median_seconds(lambda s=source: session.apply(next(s)), repeats=9, warmup=1)
        rows.append([label, f"{seconds * 1e3:.1f}"])
    ex.select(session.graph.nodes[10].name)  # type: ignore[attr-defined]
    row = ex.node_panel.weight_row  # type: ignore[attr-defined]
    if row is not None:
        flips = iter([False, True] * 20)
        seconds = median_seconds(lambda: setattr(row.toggle, "value", next(flips)), repeats=9, warmup=1)
        rows.append(["panel checkbox: toggle (apply + recolour + JSON + stats)", f"{seconds * 1e3:.1f}"])
    return rows


def run() -> str:
    """ResNet-18 edit latency with a real compressed model, then the widget timings."""
    from bench import bench_widget

    setup_threads()
    ex = _explorer()
    rows = _edit_rows(ex)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench_widget.main()
    return (
        "## Explorer\n\nOne edit on ResNet-18 (224×224, TRIAL, 51 quantizers, range statistics cached), "
        "Python side, median of 9: the new setup is checked, written as a minimal NNCF config (and placed "
        "again to verify the round trip), and applied to the compressed model.\n\n"
        + table(["edit", "ms"], rows)
        + "\n\nWidget timings (`bench/bench_widget.py`; synthetic graphs use a fake session):\n\n```\n"
        + captured.getvalue().rstrip()
        + "\n```"
    )


if __name__ == "__main__":
    print(run())
