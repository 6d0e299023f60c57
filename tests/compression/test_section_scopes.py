"""Scope entries of every algorithm are checked against the graph, as NNCF's validate_scopes does."""

from __future__ import annotations

import pytest

from nncf_explore import NNCFConfig, create_compressed_model
from nncf_explore.errors import ConfigError
from tests.models import resnet18

ALGORITHMS = ["magnitude_sparsity", "rb_sparsity", "const_sparsity", "filter_pruning"]


def _create(section: dict) -> None:
    config = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 3, 32, 32]}, "compression": [section]})
    create_compressed_model(resnet18(num_classes=10), config, dump_graphs=False)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_entry_matching_nothing_is_refused_with_its_path_and_a_suggestion(algorithm: str) -> None:
    section = {"algorithm": algorithm, "ignored_scopes": ["ResNet/Conv2d[conv9]/conv2d_0"]}
    with pytest.raises(
        ConfigError,
        match=r"compression\[0\]\.ignored_scopes\[0\]: no match .*did you mean "
        r"'ResNet/Conv2d\[conv1\]/conv2d_0'.*validate_scopes: false",
    ):
        _create(section)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_node_names_and_regexes_match(algorithm: str) -> None:
    entries = ["ResNet/Conv2d[conv1]/conv2d_0", "{re}.*Sequential\\[layer4\\].*"]
    _create({"algorithm": algorithm, "ignored_scopes": entries})


def test_a_bare_module_scope_selects_no_node_and_says_to_use_a_regex() -> None:
    with pytest.raises(ConfigError, match=r"'ResNet/Sequential\[layer1\]'.*prefix an entry with '\{re\}'"):
        _create({"algorithm": "magnitude_sparsity", "target_scopes": ["ResNet/Sequential[layer1]"]})


def test_validate_scopes_false_lets_an_unmatched_entry_through() -> None:
    _create({"algorithm": "rb_sparsity", "ignored_scopes": ["Nope/conv2d_0"], "validate_scopes": False})
