"""Pruning and sparsity on the 8x8 digits against FP32: filter pruning at 30 % FLOPs, RB sparsity at 50 %.

Every row starts from the trained FP32 digits ResNet (notebook 02's model), is compressed with
``create_compressed_model`` (range init and BatchNorm adaptation on the training split where
quantization is on), and fine-tuned for 10 epochs (Adam, lr 1e-3, cosine decay) following NNCF's
contract: ``epoch_step()`` per epoch, ``step()`` per iteration, ``loss = task + ctrl.loss()``.
RB's mask logits, which start at logit(0.99), get their own parameter group at a constant lr 3e-2: at the
weights' rate Adam moves them 1e-3 a step, and a 10-epoch run could not reach the level (NNCF's
ImageNet schedules run 100 epochs; its ``compression_lr_multiplier`` scales gradients, which Adam
normalises away).
Filter pruning reaches its FLOPs target over the first 3 epochs (``pruning_steps``), RB sparsity its
level by epoch 3 (``sparsity_target_epoch``).  Accuracy is on the held-out 449 images (one image =
0.22 points); FLOPs, parameters and sparsity come from ``ctrl.statistics()``; the stripped model
(``ctrl.strip()``) is checked to compute what the masked model computes.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench._timing import setup_threads, table
from tests.compression import digits

EPOCHS = 10
PRUNING = {
    "algorithm": "filter_pruning",
    "pruning_init": 0.1,
    "params": {"schedule": "exponential", "pruning_flops_target": 0.3, "pruning_steps": 3},
}
RB = {
    "algorithm": "rb_sparsity",
    "sparsity_init": 0.1,
    "params": {
        "schedule": "multistep",
        "multistep_steps": [1, 2],
        "multistep_sparsity_levels": [0.2, 0.35, 0.5],
        "sparsity_target": 0.5,
        "sparsity_target_epoch": 3,
        "sparsity_freeze_epoch": 9,
    },
}
QUANTIZATION = {"algorithm": "quantization"}
ROWS: list[tuple[str, list[dict[str, Any]]]] = [
    ("filter pruning, 30 % FLOPs", [PRUNING]),
    ("RB sparsity, 50 %", [RB]),
    ("filter pruning 30 % FLOPs + INT8", [PRUNING, QUANTIZATION]),
]


def run() -> str:
    """The pruning and sparsity section of docs/benchmarks.md."""
    setup_threads()
    with digits.one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _section()


def _section() -> str:
    from nncf_explore import create_compressed_model

    fp32 = digits.accuracy(digits.trained_resnet(), *digits.eval_split())
    rows: list[list[object]] = [["FP32", f"{fp32:.2f}", "", "", "", "", ""]]
    for name, algorithms in ROWS:
        start = time.perf_counter()
        config = digits.init_config({"input_info": dict(digits.INPUT_INFO), "compression": algorithms})
        ctrl, model = create_compressed_model(digits.trained_resnet(), config, dump_graphs=False)
        before = digits.accuracy(model, *digits.eval_split())
        _finetune(ctrl, model)
        after = digits.accuracy(model, *digits.eval_split())
        stats = ctrl.statistics()
        flops = params = sparsity = ""
        if stats.filter_pruning is not None:
            flops = f"{100 * stats.filter_pruning.flops_level:.1f}"
            params = f"{100 * stats.filter_pruning.params_level:.1f}"
        if stats.rb_sparsity is not None:
            sparsity = f"{100 * stats.rb_sparsity.model_level:.1f}"
        rows.append(
            [
                name,
                f"{after:.2f} ({after - fp32:+.2f})",
                f"{before:.2f}",
                flops,
                params,
                sparsity,
                f"{time.perf_counter() - start:.1f}",
            ]
        )
        _check_strip(ctrl, model)
    return (
        "## Pruning and sparsity on 8x8 digits\n\n"
        + (__doc__ or "").split("\n\n", 1)[1].strip()
        + "\n\n"
        + table(
            [
                "model",
                "top-1 after fine-tuning (vs FP32)",
                "top-1 before",
                "FLOPs removed (%)",
                "weights removed (%)",
                "sparsity (%)",
                "time (s)",
            ],
            rows,
        )
    )


def _finetune(ctrl: Any, model: torch.nn.Module, lr: float = 1e-3, mask_lr: float = 3e-2) -> None:
    """NNCF's training contract, with RB mask logits in a parameter group of their own."""
    import torch.nn.functional as F

    masks = [p for n, p in model.named_parameters() if n.startswith("_nncf.sparsity_masks")]
    others = [p for n, p in model.named_parameters() if not n.startswith("_nncf.sparsity_masks")]
    optimizer = torch.optim.Adam([{"params": others}, {"params": masks, "lr": mask_lr}], lr=lr)
    loader = digits.train_loader()
    steps = EPOCHS * len(loader)
    cosine = lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))  # noqa: E731
    # The weights' rate decays; the masks' stays, so the RB loss can hold the level to the end.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, [cosine, lambda step: 1.0])
    torch.manual_seed(digits.SEED)
    model.train()
    for _ in range(EPOCHS):
        ctrl.scheduler.epoch_step()
        for x, y in loader:
            ctrl.scheduler.step()
            loss = F.cross_entropy(model(x), y) + ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def _check_strip(ctrl: Any, model: torch.nn.Module) -> None:
    x, _ = digits.eval_split()
    model.eval()
    stripped = ctrl.strip()  # a torch.export GraphModule of the eval-mode forward
    with torch.no_grad():
        torch.testing.assert_close(stripped(x), model(x), rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    print(run())
