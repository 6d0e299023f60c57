"""Tracing time per model, as a multiple of one FP32 forward of the same model in the same run."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._timing import median_seconds, setup_threads, table
from nncf_explore.graph import trace_model
from tests import models

CASES = [
    ("ResNet-18 (torchvision arch)", models.resnet18, [{"sample_size": [1, 3, 224, 224]}]),
    ("MobileNetV2-style", lambda: models.MobileNetV2().eval(), [{"sample_size": [1, 3, 224, 224]}]),
    ("MixedCNN", lambda: models.MixedCNN().eval(), [{"sample_size": [1, 3, 32, 32]}]),
    (
        "Embedding+LSTM+GRU",
        lambda: models.RecurrentTagger().eval(),
        [{"sample_size": [1, 32], "type": "long"}],
    ),
    (
        "TransformerEncoder (2 layers)",
        lambda: models.TinyTransformer().eval(),
        [{"sample_size": [1, 32], "type": "long"}],
    ),
    (
        "MultiheadAttention (cross)",
        lambda: models.CrossAttention().eval(),
        [{"sample_size": [1, 8, 16]}, {"sample_size": [1, 12, 16]}],
    ),
    (
        "Keyword inputs",
        lambda: models.KeywordModel().eval(),
        [{"sample_size": [1, 4]}, {"sample_size": [1, 3], "keyword": "scale"}],
    ),
    ("Module called twice", lambda: models.TwiceCalled().eval(), [{"sample_size": [1, 8]}]),
    ("Matmul with nn.Parameter", lambda: models.ParamMatmul().eval(), [{"sample_size": [1, 8]}]),
    ("Data-dependent branch", lambda: models.Branchy().eval(), [{"sample_size": [1, 4]}]),
]


def run() -> str:
    """Trace each model; report nodes, trace time and trace/forward ratio."""
    from nncf_explore.graph.inputs import make_mock_inputs

    setup_threads()
    rows = []
    for name, build, info in CASES:
        model = build()
        args, kwargs = make_mock_inputs(info)
        with torch.no_grad():
            forward = median_seconds(lambda m=model, a=args, k=kwargs: m(*a, **k))
        trace = median_seconds(lambda m=model, i=info: trace_model(m, i), repeats=5, warmup=1)
        nodes = len(trace_model(model, info))
        rows.append([name, nodes, f"{forward * 1e3:.2f}", f"{trace * 1e3:.2f}", f"{trace / forward:.2f}x"])
    return (
        "## Tracing\n\nTrace time over one FP32 forward of the same model, batch 1, 2 threads, medians.\n\n"
        + table(["model", "nodes", "FP32 forward (ms)", "trace (ms)", "trace / forward"], rows)
    )


if __name__ == "__main__":
    print(run())
