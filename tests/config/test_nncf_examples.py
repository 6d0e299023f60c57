"""NNCF 2.19's own PyTorch classification example configs, run end to end on stand-in models.

The JSON files in ``tests/data/nncf_examples/`` are NNCF's, unmodified (see the README there).
Each one is loaded with :meth:`NNCFConfig.from_json`; the test's copy then gets a small input and
capped init settings, a model is picked from :mod:`tests.models` by the file's ``"model"`` key, and
NNCF's training contract runs once: ``epoch_step``, ``step``, task loss plus ``ctrl.loss()``,
backward, an SGD step, then one eval forward.  Configs asking for an algorithm that nncf_explore
does not implement must be refused with our own :class:`ConfigError` that names the fix.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore.compression.api import create_compressed_model
from nncf_explore.config import NNCFConfig
from nncf_explore.config.init_args import register_default_init_args
from nncf_explore.errors import ConfigError
from tests import models

DATA = Path(__file__).resolve().parents[1] / "data" / "nncf_examples"
FILES = sorted(DATA.rglob("*.json"))
SMALL_SPATIAL = 32
INIT_SAMPLES = 4
BATCH = 2  # BatchNorm in training mode needs more than one value per channel.

# Each entry: the file stem, and a regex its ConfigError must match (what it names as the fix).
REFUSED: dict[str, str] = {
    # Valid NNCF 2.19; nncf_explore does not implement these algorithms or options.
    "resnet18_imagenet_binarization_xnor": r'"binarization" is valid NNCF but not implemented',
    "mobilenet_v2_imagenet_mixed_int_autoq_staged": r"'autoq'.*not implemented; use 'hawq'",
    "resnet50_imagenet_mixed_int_autoq_staged": r"'autoq'.*not implemented; use 'hawq'",
    "resnet18_imagenet_pruning_learned_ranking": r"'learned_ranking' \(LeGR\) is not implemented",
    # Not valid NNCF 2.19 either: 2.19 has no "VPU" (renamed "NPU"), and reads strict JSON (>= 2.17).
    "resnet50_imagenet_mixed_int_hawq": r"\"VPU\" is not one of.*did you mean 'NPU'",
    "resnet34_imagenet_pruning_geometric_median_kd": r"JSON has no comments.*delete the comment",
    "squeezenet1_1_imagenet_mixed_int_manual_staged": r"JSON has no comments.*delete the comment",
}

OTHER_MODEL_SCOPES = {
    "inception_v3_imagenet_int8",
    "rmnet_cifar_int8",
    "mobilenet_v2_imagenet_rb_sparsity_int8",
}
"""Files whose scopes name NNCF's torchvision models, not our stand-ins: their test copy sets
``validate_scopes: false``, and the refusal with scopes validated is tested on its own."""

SLOW = {"mobilenet_v2_imagenet_mixed_int_hawq", "squeezenet1_1_imagenet_mixed_int_hawq"}


def _sections(config: dict[str, Any]) -> list[dict[str, Any]]:
    compression = config.get("compression", [])
    return [compression] if isinstance(compression, dict) else list(compression)


def _num_classes(config: dict[str, Any]) -> int:
    if "num_classes" in config:
        return int(config["num_classes"])
    dataset = str(config.get("dataset", "")).upper()
    return 100 if dataset.endswith("100") else 10 if dataset.startswith("CIFAR") else 1000


def _model(config: dict[str, Any]) -> nn.Module:
    name = str(config.get("model", "")).lower()
    if name.startswith("mobilenet"):
        torch.manual_seed(0)
        return models.MobileNetV2(num_classes=_num_classes(config)).eval()
    return models.resnet18(num_classes=_num_classes(config))


def _small(config: dict[str, Any], validate_scopes: bool = True) -> dict[str, Any]:
    """The test's copy: a small input, and init settings capped to a few samples."""
    small = copy.deepcopy(config)
    infos = small["input_info"] if isinstance(small["input_info"], list) else [small["input_info"]]
    for info in infos:
        channels = info["sample_size"][1]
        info["sample_size"] = [1, channels, SMALL_SPATIAL, SMALL_SPATIAL]
    for section in _sections(small):
        if not validate_scopes:
            section["validate_scopes"] = False
        init = section.get("initializer", {})
        if "range" in init and "num_init_samples" in init["range"]:
            init["range"]["num_init_samples"] = min(init["range"]["num_init_samples"], INIT_SAMPLES)
        bn = init.get("batchnorm_adaptation", {})
        if "num_bn_adaptation_samples" in bn:
            bn["num_bn_adaptation_samples"] = min(bn["num_bn_adaptation_samples"], INIT_SAMPLES)
        precision = init.get("precision", {})
        if precision.get("type") == "hawq":
            precision.update(num_data_points=INIT_SAMPLES, iter_number=2)
    return small


def _loader(config: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    info = config["input_info"] if isinstance(config["input_info"], dict) else config["input_info"][0]
    shape = [BATCH, *info["sample_size"][1:]]
    generator = torch.Generator().manual_seed(0)
    classes = _num_classes(config)
    return [
        (torch.randn(shape, generator=generator), torch.randint(classes, (BATCH,), generator=generator))
        for _ in range(INIT_SAMPLES // BATCH)
    ]


def _needs_criterion(config: dict[str, Any]) -> bool:
    return any(s.get("initializer", {}).get("precision", {}).get("type") == "hawq" for s in _sections(config))


def _compress(
    path: Path, validate_scopes: bool = True
) -> tuple[Any, nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    loaded = NNCFConfig.from_json(path)
    small = _small(loaded.to_dict(), validate_scopes)
    config = NNCFConfig.from_dict(small)
    loader = _loader(small)
    criterion = nn.CrossEntropyLoss() if _needs_criterion(small) else None
    register_default_init_args(config, loader, criterion=criterion)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, compressed = create_compressed_model(_model(small), config, dump_graphs=False)
    return ctrl, compressed, loader


def _params(path: Path) -> Any:
    marks = [pytest.mark.slow] if path.stem in SLOW else []
    return pytest.param(path, id=f"{path.parent.name}/{path.stem}", marks=marks)


def test_the_data_set_covers_every_algorithm_folder() -> None:
    folders = {path.parent.name for path in FILES}
    assert folders == {
        "binarization",
        "mixed_precision",
        "pruning",
        "quantization",
        "sparsity",
        "sparsity_quantization",
    }
    assert set(REFUSED) | SLOW | OTHER_MODEL_SCOPES <= {path.stem for path in FILES}


@pytest.mark.parametrize("path", [_params(p) for p in FILES if p.stem not in REFUSED])
def test_nncf_example_config_trains_one_step(path: Path) -> None:
    ctrl, compressed, loader = _compress(path, validate_scopes=path.stem not in OTHER_MODEL_SCOPES)
    optimizer = torch.optim.SGD(compressed.parameters(), lr=1e-3)
    inputs, targets = loader[0]
    compressed.train()
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.step()
    loss = nn.functional.cross_entropy(compressed(inputs), targets) + ctrl.loss()
    assert torch.isfinite(loss)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    compressed.eval()
    with torch.no_grad():
        output = compressed(inputs)
    assert output.shape == (BATCH, _num_classes(NNCFConfig.from_json(path)))
    assert torch.isfinite(output).all()
    assert ctrl.statistics().to_str()


@pytest.mark.parametrize("path", [_params(p) for p in FILES if p.stem in REFUSED])
def test_nncf_example_config_is_refused_naming_the_fix(path: Path) -> None:
    with pytest.raises(ConfigError, match=REFUSED[path.stem]):
        _compress(path)


def _file(stem: str) -> Path:
    return next(path for path in FILES if path.stem == stem)


@pytest.mark.parametrize("stem", ["inception_v3_imagenet_int8", "rmnet_cifar_int8"])
def test_quantization_scopes_of_another_model_are_refused_naming_validate_scopes(stem: str) -> None:
    with pytest.raises(ConfigError, match=r"no match has been found.*set validate_scopes: false"):
        _compress(_file(stem))


def test_sparsity_scopes_of_another_model_are_refused_naming_validate_scopes() -> None:
    with pytest.raises(ConfigError, match=r"no match has been found"):
        _compress(_file("mobilenet_v2_imagenet_rb_sparsity_int8"))


def test_binarization_is_refused_as_not_implemented() -> None:
    with pytest.raises(ConfigError, match=r"binarization.*not implemented"):
        _compress(_file("resnet18_imagenet_binarization_xnor"))


def test_accuracy_aware_training_section_loads_silently_and_is_left_to_the_training_loop() -> None:
    # NNCF's create_compressed_model ignores it too: only the accuracy-aware loop reads it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = NNCFConfig.from_json(_file("resnet18_imagenet_int8_accuracy_aware"))
    assert config["accuracy_aware_training"]["mode"] == "early_exit"
