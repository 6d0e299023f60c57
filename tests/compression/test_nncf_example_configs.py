"""NNCF-format example configs of sparsity, distillation and quantization (tests/data/nncf_configs)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nncf_explore import create_compressed_model
from tests.compression import digits
from tests.models import resnet18

CONFIGS = Path(__file__).parent.parent / "data" / "nncf_configs"
COVERED = {"rb_sparsity", "const_sparsity", "knowledge_distillation", "quantization", "magnitude_sparsity"}


def algorithms(config: dict[str, Any]) -> set[str]:
    compression = config["compression"]
    return {s["algorithm"] for s in (compression if isinstance(compression, list) else [compression])}


def covered_configs() -> list[Path]:
    """The files whose algorithms this module's area implements (pruning configs are tested elsewhere)."""
    return [p for p in sorted(CONFIGS.glob("*.json")) if algorithms(json.loads(p.read_text())) <= COVERED]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with digits.one_thread():
        yield


def test_the_sparsity_and_distillation_configs_are_there() -> None:
    names = {p.name for p in covered_configs()}
    assert {"resnet50_imagenet_rb_sparsity.json", "resnet18_imagenet_int8_kd.json"} <= names
    found = set().union(*(algorithms(json.loads(p.read_text())) for p in covered_configs()))
    assert {"rb_sparsity", "const_sparsity", "knowledge_distillation", "quantization"} <= found


@pytest.mark.parametrize("path", covered_configs(), ids=lambda p: p.stem)
def test_config_creates_a_working_model_on_resnet18(path: Path) -> None:
    config = json.loads(path.read_text())
    config["input_info"]["sample_size"] = [1, 3, 32, 32]
    model = resnet18()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, q = create_compressed_model(model, config, dump_graphs=False)
    names = [c.name for c in getattr(ctrl, "child_ctrls", [ctrl])]
    assert set(names) == algorithms(config)
    ctrl.scheduler.epoch_step()
    q.train()
    ctrl.scheduler.step()
    x = torch.randn(2, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(q(x), torch.tensor([1, 2])) + ctrl.loss()
    loss.backward()
    assert torch.isfinite(loss)
    assert q.get_parameter("fc.weight").grad is not None
    with torch.no_grad():
        out = q.eval()(x[:1])
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
    ctrl.statistics().to_str()
    json.dumps(ctrl.get_compression_state())


def test_scopes_and_mode_of_the_local_config_apply() -> None:
    config = json.loads((CONFIGS / "resnet50_imagenet_rb_sparsity_local_polynomial.json").read_text())
    config["input_info"]["sample_size"] = [1, 3, 32, 32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(resnet18(), config, dump_graphs=False)
    assert ctrl.mode == "local" and ctrl.schedule.schedule == "polynomial"
    assert "fc.weight" not in ctrl.weights and "conv1.weight" in ctrl.weights
