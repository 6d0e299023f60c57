"""Mixed precision on the 8x8 digits: the exact front against random assignments, HAWQ's stability, costs.

For each model (the digits CNN and the deeper ResNet of notebook 02, both trained FP32 and compressed
with ``target_device: TRIAL``, range init and BatchNorm adaptation on the training split):

* **Front vs random.**  The front of weight bytes against predicted loss, over weight bit widths
  {2, 4, 8} (activations stay 8-bit), with two losses: HAWQ's perturbations, and the measured rise
  in cross-entropy of each group alone at 2 and at 4 bits (the ablation, on the last 348 images of
  the training split, so the held-out images play no part in the choice).  At each front point (up
  to 10, spread over the budgets) its accuracy is compared with the median of 20 random assignments
  whose weight bytes lie within 10 % below the point's (fewer where fewer exist).  Accuracy is after
  range re-derivation only (no fine-tuning), on the held-out 449 images.
* **At W4A8's size.**  The setup ``Sensitivity.choose`` picks within uniform W4A8's weight bytes (the 5
  best predicted front points and the fitting uniform marks, confirmed by the validation accuracy,
  ties broken by cross-entropy) against W4A8 itself.
* **HAWQ stability.**  Traces with three seeds; whether each converged to the tolerance, and whether the
  HAWQ bit choice (``compression_ratio`` 1.5, bits {2, 4, 8}) is the same for the three.
* **Overhead.**  Each measure's time over the time of one FP32 training epoch on the same data.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch import nn

from bench._timing import setup_threads, table
from nncf_explore import NNCFConfig
from nncf_explore.analysis import Sensitivity
from nncf_explore.compression.editing import EditSession
from nncf_explore.compression.precision.hawq import hawq_assignment
from nncf_explore.compression.precision.hessian import weight_perturbations
from tests.compression import digits

CANDIDATES = (2, 4, 8)
RANDOM_SAMPLES = 20
MAX_POINTS = 10
SEEDS = (0, 1, 2)
HAWQ_ARGS = {"num_data_points": 256, "iter_number": 200, "tolerance": 1e-3}


def run() -> str:
    """The mixed-precision section of docs/benchmarks.md."""
    setup_threads()
    with digits.one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [_model_section(name, build) for name, build in MODELS]
    return (
        "## Mixed precision on 8x8 digits\n\n"
        + (__doc__ or "").split("\n\n", 1)[1].strip()
        + "\n\n"
        + "\n\n".join(parts)
    )


def _session(model: nn.Module) -> EditSession:
    config = NNCFConfig.from_dict(
        {
            "input_info": dict(digits.INPUT_INFO),
            "target_device": "TRIAL",
            "compression": {"algorithm": "quantization"},
        }
    )
    return EditSession(model, config, init_loader=digits.train_loader(shuffle=False))


def _accuracy_of(session: EditSession) -> Callable[[dict[str, int]], float]:
    from nncf_explore.compression.precision.mixed_precision import setup_with_bits

    base = session.setup

    def evaluate(bits: dict[str, int]) -> float:
        session.apply(setup_with_bits(base, bits))
        return digits.accuracy(session.compressed_model, *digits.eval_split())

    return evaluate


def _fp32_epoch_seconds(build: Callable[[], nn.Module]) -> float:
    model = build().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for x, y in digits.train_loader():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return time.perf_counter() - start


def _model_section(name: str, build: Callable[[], nn.Module]) -> str:
    model = build()
    session = _session(model)
    qmodel = session.compressed_model
    loader = digits.train_loader(shuffle=False)
    sens = Sensitivity(qmodel, loader, criterion=nn.CrossEntropyLoss(), progress=False)
    epoch = _fp32_epoch_seconds(build)
    overhead = []
    start = time.perf_counter()
    sens.errors()
    overhead.append(["quantization error (64 samples)", time.perf_counter() - start])
    start = time.perf_counter()
    hawq_front = sens.front(CANDIDATES, cost="weight_bytes", **HAWQ_ARGS)
    overhead.append(["HAWQ traces + front", time.perf_counter() - start])
    start = time.perf_counter()
    validation = Sensitivity(qmodel, loader, eval_fn=_validation_score, progress=False)
    measured_front = validation.front(CANDIDATES, cost="weight_bytes", loss="ablation")
    overhead.append(["ablation at 2 and 4 bits + front", time.perf_counter() - start])
    base = session.setup
    evaluate = _accuracy_of(session)
    sections = [f"### {name}"]
    chooser = Sensitivity(qmodel, loader, eval_fn=_validation_metric, progress=False)
    for label, front in (("HAWQ's predicted loss", hawq_front), ("measured loss rise", measured_front)):
        sections += _front_section(label, front, session, evaluate, chooser)
    session.apply(base)
    stability = _stability(sens, session)
    start = time.perf_counter()
    ablation = Sensitivity(qmodel, loader, eval_fn=_validation_accuracy, progress=False)
    ablation.ablation("fp32").run(progress=False)
    overhead.append(["metric ablation, fp32 mode (accuracy on 348 images)", time.perf_counter() - start])
    overhead_rows = [[what, f"{seconds:.2f}", f"{seconds / epoch:.2f}x"] for what, seconds in overhead]
    return "\n\n".join(
        [
            *sections,
            stability,
            f"Overhead, against one FP32 training epoch ({epoch:.2f} s):",
            table(["measure", "seconds", "over one FP32 epoch"], overhead_rows),
        ]
    )


def _validation_accuracy(model: nn.Module) -> float:
    x, y = digits.train_split()
    return digits.accuracy(model, x[-348:], y[-348:])


def _validation_score(model: nn.Module) -> float:
    """Minus the cross-entropy on the validation images: unlike accuracy, it moves with every change."""
    x, y = digits.train_split()
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return -float(F.cross_entropy(model(x[-348:]), y[-348:]))
    finally:
        model.train(training)


def _validation_metric(model: nn.Module) -> float:
    """Validation accuracy (%), ties broken by the cross-entropy: the metric the final choice uses."""
    return _validation_accuracy(model) + 1e-3 * _validation_score(model)


def _front_section(label, front, session, evaluate, chooser) -> list[str]:
    weights = [p.id for p in session.setup.weights]
    rng = random.Random(0)
    rows, margins = [], []
    step = max(1, len(front.points) // MAX_POINTS)
    chosen_points = list(front.points[::step])[:MAX_POINTS]
    if front.points[-1] not in chosen_points:
        chosen_points.append(front.points[-1])
    for point in chosen_points:
        accuracy = evaluate(front.bits(point))
        randoms = _random_accuracies(front, weights, point.cost, evaluate, rng)
        median = statistics.median(randoms) if randoms else float("nan")
        margins.append(accuracy - median)
        rows.append(
            [
                f"{point.cost / 1024:.2f}",
                f"{point.loss:.3g}",
                f"{accuracy:.2f}",
                f"{median:.2f} (n={len(randoms)})",
                f"{accuracy - median:+.2f}",
            ]
        )
    w4 = front.marks["uniform 4-bit"]
    w4_accuracy = evaluate(dict(w4.bits))
    chosen, _ = chooser.choose(front, w4.cost)
    best_accuracy = evaluate({p.id: p.spec.bits for p in chosen})
    return [
        f"Front over {label}: each point's weight KiB and predicted loss, its accuracy (%), and the "
        f"median accuracy of {RANDOM_SAMPLES} random assignments of the same size:",
        table(["KiB", "predicted loss", "front point", "random median", "margin"], rows),
        f"Smallest margin over the front: {min(margins):+.2f} points ({sum(m >= 0 for m in margins)} of "
        f"{len(margins)} points at or above the random median). At uniform W4A8's size "
        f"({w4.cost / 1024:.2f} KiB): W4A8 {w4_accuracy:.2f} %, the chosen setup "
        f"{best_accuracy:.2f} % (margin {best_accuracy - w4_accuracy:+.2f}).",
    ]


def _random_accuracies(front, weights, cost, evaluate, rng) -> list[float]:
    accepted: list[float] = []
    for _ in range(20000):
        bits = {w: rng.choice(CANDIDATES) for w in weights}
        total = front.search.cost_of(bits)
        if 0.9 * cost <= total <= cost:
            accepted.append(evaluate(bits))
            if len(accepted) == RANDOM_SAMPLES:
                break
    return accepted


def _stability(sens: Sensitivity, session: EditSession) -> str:
    choices, lines = [], []
    interface_graph = session.compressed_model.nncf.get_graph()
    for seed in SEEDS:
        traces = sens.traces(seed=seed, **HAWQ_ARGS)
        perturbations = weight_perturbations(session.compressed_model, traces, CANDIDATES)
        result = hawq_assignment(
            interface_graph,
            session.setup,
            perturbations,
            compression_ratio=1.5,
            strict=False,
            allowed=lambda p: CANDIDATES,
        )
        choices.append(tuple(sorted(result.bits.items())))
        lines.append(f"seed {seed}: {traces.iterations} iterations, converged {traces.converged}")
    same = len(set(choices)) == 1
    return (
        "HAWQ stability ("
        + "; ".join(lines)
        + f"): the bit choice at compression_ratio 1.5 is {'the same' if same else 'different'} for the "
        f"{len(SEEDS)} seeds" + ("" if same else f" ({len(set(choices))} distinct choices)") + "."
    )


MODELS: list[tuple[str, Callable[[], nn.Module]]] = [
    ("Digits CNN (3 conv + linear)", digits.trained_fp32),
    ("Digits ResNet (notebook 02)", digits.trained_resnet),
]


if __name__ == "__main__":
    print(run())
