"""create_compressed_model time and the compressed model's memory, each against the FP32 model.

Time: ``create_compressed_model`` with ``input_info`` only (trace, placement, quantizer
modules, no range init, no BatchNorm adaptation, no graph dumps), as a multiple of one FP32
forward of the same model, batch 1, 224x224, 2 threads.  Each ratio is the median over rounds
that time the forward and the creation back to back, so machine load hits both alike.

Memory, measured with ``torch.profiler`` (``profile_memory=True``): the running sum of the
CPU allocator's allocations and frees during a step, whose maximum is the step's peak
tensor memory above what was allocated before it (parameters are already there):

* **state**: bytes of every parameter and buffer, compressed over FP32;
* **eval forward** (batch 1, no autograd): peak of the first forward, the bytes it leaves
  allocated (the compressed model keeps its quantized weights for later inference forwards),
  and the peak of a second forward;
* **training step** (batch 8, forward and backward): peak.
"""

from __future__ import annotations

import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._timing import median_seconds, setup_threads, table
from nncf_explore import create_compressed_model
from tests import models

ROUNDS = 5
INPUT = {"sample_size": [1, 3, 224, 224]}
CONFIG = {"input_info": INPUT, "compression": {"algorithm": "quantization"}}
MODELS: dict[str, Callable[[], nn.Module]] = {
    "ResNet-18": models.resnet18,
    "MobileNetV2": lambda: models.MobileNetV2().eval(),
}


def create(model: nn.Module) -> tuple[Any, nn.Module]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no init data loader": deliberate here
        return create_compressed_model(model, CONFIG, dump_graphs=False)


def _time_rows() -> list[list[object]]:
    rows = []
    for name, build in MODELS.items():
        model = build()
        x = torch.randn(1, 3, 224, 224)
        ratios, forwards, creates = [], [], []
        for _ in range(ROUNDS):
            with torch.no_grad():
                forward = median_seconds(lambda m=model, x=x: m(x), repeats=5, warmup=1)
            creation = median_seconds(lambda m=model: create(m), repeats=3, warmup=1)
            ratios.append(creation / forward)
            forwards.append(forward)
            creates.append(creation)
        ctrl, _ = create(model)
        rows.append(
            [
                name,
                f"{len(ctrl.weight_quantizers)} + {len(ctrl.non_weight_quantizers)}",
                f"{statistics.median(forwards) * 1e3:.1f}",
                f"{statistics.median(creates) * 1e3:.0f}",
                f"{statistics.median(ratios):.1f}x",
            ]
        )
    return rows


def state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def allocated(step: Callable[[], object]) -> tuple[int, int]:
    """(peak, retained) bytes the CPU allocator handed out during ``step``, over its starting point."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak, current


def _memory_rows() -> list[list[object]]:
    rows = []
    for name, build in MODELS.items():
        fp32 = build()
        _, quantized = create(fp32)
        x, batch = torch.randn(1, 3, 224, 224), torch.randn(8, 3, 224, 224)
        figures = {}
        for label, model in (("fp32", fp32), ("quantized", quantized)):
            with torch.no_grad():
                first, retained = allocated(lambda m=model, x=x: m.eval()(x))
                second, _ = allocated(lambda m=model, x=x: m.eval()(x))
            train, _ = allocated(lambda m=model, b=batch: m.train()(b).sum().backward())
            model.zero_grad(set_to_none=True)
            figures[label] = (state_bytes(model), first, retained, second, train)
        rows.append(
            [name]
            + [
                f"{a / 2**20:.1f} / {b / 2**20:.1f}" + (f" ({b / a:.2f}x)" if a else "")
                for a, b in zip(figures["fp32"], figures["quantized"], strict=True)
            ]
        )
    return rows


def run() -> str:
    """Creation time over one FP32 forward, and memory of the compressed model over FP32."""
    setup_threads()
    time_table = table(
        ["model", "quantizers (W + A)", "FP32 forward (ms)", "create (ms)", "create / forward"],
        _time_rows(),
    )
    memory_table = table(
        [
            "model (MiB, FP32 / compressed)",
            "state",
            "1st eval forward peak",
            "kept after it",
            "2nd eval forward peak",
            "train step peak (batch 8)",
        ],
        _memory_rows(),
    )
    return (
        "## create_compressed_model\n\n"
        "Time of `create_compressed_model` with `input_info` only (trace, placement, quantizers; no range "
        "init, BN adaptation or graph dumps) over one FP32 forward, batch 1, 224x224, 2 threads, medians of "
        f"{ROUNDS} back-to-back rounds. Target: at most 10x.\n\n"
        + time_table
        + "\n\nMemory against FP32, from `torch.profiler`'s allocator events: *state* is the bytes of all "
        "parameters and buffers; a step's *peak* is the most tensor memory allocated during it beyond what "
        "existed before it; *kept after it* is what the first inference forward leaves allocated (the "
        "quantized weights the compressed model keeps for later inference forwards).\n\n" + memory_table
    )


if __name__ == "__main__":
    print(run())
