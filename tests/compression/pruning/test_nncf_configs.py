"""The NNCF-format filter pruning configs of tests/data/nncf_configs create working, strippable models."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import create_compressed_model
from tests.compression.pruning.nets import randomise_batchnorms
from tests.models import MobileNetV2, resnet18

CONFIGS = Path(__file__).parents[2] / "data" / "nncf_configs"


def algorithms(config: dict[str, Any]) -> list[str]:
    compression = config["compression"]
    return [s["algorithm"] for s in (compression if isinstance(compression, list) else [compression])]


def pruning_configs() -> list[Path]:
    return [
        p for p in sorted(CONFIGS.glob("*.json")) if "filter_pruning" in algorithms(json.loads(p.read_text()))
    ]


MODELS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: resnet18(10),
    "mobilenet_v2": lambda: MobileNetV2(10),
}


def test_the_pruning_configs_are_there() -> None:
    assert len(pruning_configs()) >= 4
    readme = (CONFIGS / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in pruning_configs())


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("path", pruning_configs(), ids=lambda p: p.stem)
def test_config_creates_a_working_pruned_model(path: Path, model_name: str) -> None:
    config = json.loads(path.read_text())
    config["input_info"]["sample_size"] = [1, 3, 32, 32]
    family = "mobilenet" if model_name.startswith("mobilenet") else "resnet"
    if not str(config.get("model", "")).startswith(family):
        # Scopes name nodes of the model the config was written for; on another model they match
        # nothing, which validate_scopes (default true) refuses, as NNCF does.
        sections = (
            config["compression"] if isinstance(config["compression"], list) else [config["compression"]]
        )
        for section in sections:
            if "ignored_scopes" in section or "target_scopes" in section:
                section["validate_scopes"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, net = create_compressed_model(
            randomise_batchnorms(MODELS[model_name]()), config, dump_graphs=False
        )
    assert [c.name for c in getattr(ctrl, "child_ctrls", [ctrl])] == algorithms(config)
    for _ in range(3):
        ctrl.scheduler.epoch_step()
    net.train()
    ctrl.scheduler.step()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([1, 2])) + ctrl.loss()
    loss.backward()
    stats = ctrl.statistics().filter_pruning
    assert stats is not None and stats.filter_level > 0 and stats.flops[1] < stats.flops[0]
    net.eval()
    if model_name == "resnet18" and "quantization" in algorithms(config):
        # stripping is slow (torch.export); test_strip.py strips both models without quantization
        stripped = ctrl.strip()
        torch.testing.assert_close(stripped(x), net(x), rtol=1e-4, atol=1e-4)
        assert sum(p.numel() for p in stripped.parameters()) < sum(
            p.numel() for n, p in net.named_parameters() if not n.startswith("_nncf")
        )
