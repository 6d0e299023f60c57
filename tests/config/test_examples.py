"""Every example config loads, round-trips through JSON unchanged, and agrees with the JSON Schema."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from nncf_explore.config import NNCFConfig, build_json_schema
from tests.config.conftest import EXTRA_EXAMPLES, NNCF_EXAMPLE_FILES

jsonschema = pytest.importorskip("jsonschema")

ALL_EXAMPLES: dict[str, dict[str, Any]] = {
    **{path.stem: json.loads(path.read_text()) for path in NNCF_EXAMPLE_FILES},
    **EXTRA_EXAMPLES,
}


def test_all_reference_examples_are_present() -> None:
    names = {path.stem for path in NNCF_EXAMPLE_FILES}
    assert names == {
        "resnet50_imagenet_int8",
        "mobilenet_v2_imagenet_int8_per_tensor",
        "inception_v3_imagenet_int8",
        "mobilenet_v2_cifar100_asym_int8",
        "resnet50_imagenet_mixed_int_hawq",
        "mobilenet_v2_imagenet_mixed_int_manual",
        "resnet50_imagenet_rb_sparsity",
        "resnet34_imagenet_pruning_geometric_median_kd",
    }


@pytest.mark.parametrize("path", NNCF_EXAMPLE_FILES, ids=lambda p: p.stem)
def test_nncf_example_files_load_without_warnings(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = NNCFConfig.from_json(path)
    assert config["compression"]


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_example_round_trips_through_json(name: str, tmp_path: Path) -> None:
    original = ALL_EXAMPLES[name]
    target = tmp_path / "config.json"
    NNCFConfig.from_dict(original).to_json(target)
    reloaded = NNCFConfig.from_json(target)
    assert reloaded == original
    assert reloaded.to_dict() == original


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_example_is_valid_under_the_generated_json_schema(name: str) -> None:
    jsonschema.Draft7Validator(build_json_schema()).validate(ALL_EXAMPLES[name])


def test_generated_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(build_json_schema())


def test_algorithm_sections_of_the_kd_example_keep_their_order() -> None:
    config = NNCFConfig.from_dict(ALL_EXAMPLES["resnet34_imagenet_pruning_geometric_median_kd"])
    sections = config.algorithm_configs()
    assert [(s.name, s.index, s.path) for s in sections] == [
        ("filter_pruning", 0, "compression[0]"),
        ("knowledge_distillation", 1, "compression[1]"),
    ]
    assert sections[0].get("params.filter_importance") == "geometric_median"
    assert sections[0].get("params.prune_batch_norms") is True
    assert sections[1].get("temperature") == 1.0
