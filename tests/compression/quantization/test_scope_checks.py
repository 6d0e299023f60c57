"""Scope entries that validate as JSON but do nothing, or remove everything, are refused or warned about.

Before, each of these passed ``validate_scopes`` because an entry only had to match some name or
quantizer id of either kind: ``<node>|OUTPUT`` in ``weights.ignored_scopes`` and ``<node>|WEIGHT``
as a ``scope_overrides.activations`` key were silently ignored, and ``target_scopes: []`` placed
0 quantizers without a word.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import torch

from nncf_explore import create_compressed_model, trace_model
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.errors import ConfigError, ConfigWarning
from tests.compression.tiny import CONV, FC, INPUT, RELU, tiny

GRAPH = tiny()[1]
ALL = [f"{CONV}|WEIGHT", f"{FC}|WEIGHT", f"{INPUT}|OUTPUT", f"{RELU}|OUTPUT"]


def config(*, top: dict[str, Any] | None = None, **section: Any) -> dict[str, Any]:
    """A list config, so paths carry the section index: the quantization section is compression[1]."""
    sections = [{"algorithm": "magnitude_sparsity"}, {"algorithm": "quantization", **section}]
    return {"target_device": "TRIAL", **(top or {}), "compression": sections}


def setup_of(data: dict[str, Any]) -> QuantizerSetup:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning unless a test expects one
        return build_quantizer_setup(GRAPH, data)


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        build_quantizer_setup(GRAPH, data)
    return str(info.value)


def test_the_default_setup() -> None:
    assert [p.id for p in setup_of(config())] == ALL


def test_an_activation_id_in_weights_ignored_scopes_is_refused() -> None:
    message = error_of(config(weights={"ignored_scopes": [f"{FC}|WEIGHT", f"{RELU}|OUTPUT"]}))
    assert message.startswith(
        f"compression[1].weights.ignored_scopes[1]: '{RELU}|OUTPUT' is an activation quantizer id, but "
        "compression[1].weights.ignored_scopes selects weight quantizers only"
    )
    assert "so this entry does nothing. Move it to compression[1].activations.ignored_scopes." in message


def test_the_fix_offers_the_weight_id_when_the_node_has_a_weight() -> None:
    two_convs = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Conv2d(3, 3, 1))
    graph = trace_model(two_convs, {"sample_size": [1, 3, 4, 4]})
    first = "Sequential/Conv2d[0]/conv2d_0"
    with pytest.raises(ConfigError) as info:
        build_quantizer_setup(graph, config(weights={"ignored_scopes": f"{first}|OUTPUT"}))
    message = str(info.value)
    assert message.startswith(f"compression[1].weights.ignored_scopes: '{first}|OUTPUT' is an activation")
    assert f"or write '{first}|WEIGHT' for the weight quantizer of '{first}'" in message


def test_a_regex_matching_only_activation_ids_in_a_weights_field_is_refused() -> None:
    message = error_of(config(weights={"target_scopes": ["{re}\\|OUTPUT$"]}))
    assert "matches only activation quantizer ids (such as '/nncf_model_input_0|OUTPUT')" in message


def test_a_weight_id_keying_an_activation_override_is_refused() -> None:
    message = error_of(config(scope_overrides={"activations": {f"{CONV}|WEIGHT": {"bits": 4}}}))
    assert message == (
        f"compression[1].scope_overrides.activations[\"{CONV}|WEIGHT\"]: '{CONV}|WEIGHT' is a weight "
        "quantizer id, but compression[1].scope_overrides.activations applies to activation quantizers "
        "only, so this entry does nothing. Move it to compression[1].scope_overrides.weights."
    )


def test_an_activation_id_keying_a_weight_override_is_refused() -> None:
    message = error_of(config(scope_overrides={"weights": {f"{RELU}|OUTPUT": {"bits": 4}}}))
    assert "Move it to compression[1].scope_overrides.activations." in message


def test_activation_target_scopes_name_nodes_not_ids() -> None:
    message = error_of(config(activations={"target_scopes": [f"{RELU}|OUTPUT"]}))
    assert "selects activation quantizers by node name only" in message
    assert f"Write the node name '{RELU}' instead." in message


def test_wrong_kind_entries_are_refused_even_with_validate_scopes_false() -> None:
    # They can never act, whatever the model, so sharing the config between models is no excuse.
    message = error_of(config(validate_scopes=False, weights={"ignored_scopes": [f"{RELU}|OUTPUT"]}))
    assert "is an activation quantizer id" in message


def test_validate_scopes_false_still_skips_entries_that_match_nothing() -> None:
    setup = setup_of(
        config(weights={"validate_scopes": False, "ignored_scopes": ["Other/Conv2d[x]/conv2d_0"]})
    )
    assert [p.id for p in setup] == ALL


def test_the_right_kinds_of_ids_work() -> None:
    # "<node>|WEIGHT" in weights.ignored_scopes used to fail validation: the quantizer it removed was
    # no longer among the placed ids it was checked against.
    setup = setup_of(
        config(
            weights={"ignored_scopes": [f"{CONV}|WEIGHT"]},
            activations={"ignored_scopes": [f"{RELU}|OUTPUT"]},
            scope_overrides={"weights": {f"{FC}|WEIGHT": {"bits": 4}}, "activations": {INPUT: {"bits": 6}}},
        )
    )
    assert [(p.id, p.spec.bits) for p in setup] == [(f"{FC}|WEIGHT", 4), (f"{INPUT}|OUTPUT", 6)]


def test_no_match_names_the_entry_path_with_its_index() -> None:
    message = error_of(config(ignored_scopes=[RELU, "TinyConv/Conv2d[conv9]/conv2d_0"]))
    assert message.startswith(
        "compression[1].ignored_scopes[1]: no match has been found among the model operations for "
        "'TinyConv/Conv2d[conv9]/conv2d_0'; did you mean"
    )


@pytest.mark.parametrize(
    ("data", "paths"),
    [
        (config(target_scopes=[]), "compression[1].target_scopes"),
        (
            config(weights={"target_scopes": []}, activations={"target_scopes": []}),
            "compression[1].weights.target_scopes, compression[1].activations.target_scopes",
        ),
    ],
)
def test_empty_target_scopes_that_leave_no_quantizer_are_refused(data: dict[str, Any], paths: str) -> None:
    message = error_of(data)
    assert message.startswith(f"{paths}: an empty target_scopes list selects no node")
    assert "places 0 quantizers" in message and "Remove the key to quantize the whole model" in message


@pytest.mark.parametrize(
    ("data", "path", "kind", "left"),
    [
        (config(weights={"target_scopes": []}), "compression[1].weights.target_scopes", "weight", ALL[2:]),
        (
            config(activations={"target_scopes": []}),
            "compression[1].activations.target_scopes",
            "activation",
            ALL[:2],
        ),
        (config(top={"target_scopes": []}), "target_scopes", "weight", ALL[2:]),
    ],
)
def test_empty_target_scopes_for_one_kind_warn_with_0_quantizers(
    data: dict[str, Any], path: str, kind: str, left: list[str]
) -> None:
    with pytest.warns(ConfigWarning) as record:
        setup = build_quantizer_setup(GRAPH, data)
    assert [p.id for p in setup] == left
    (warning,) = record
    assert str(warning.message).startswith(
        f"{path} is an empty list, which selects no node: 0 {kind} quantizers are placed. "
        f"Remove the key to quantize all {kind}s"
    )
    assert f'"{kind}s": {{"ignored_scopes": ["{{re}}.*"]}}' in str(warning.message)


def test_create_compressed_model_refuses_an_empty_target_scopes() -> None:
    model, _ = tiny()
    data = {"input_info": {"sample_size": [1, 3, 6, 6]}, **config(target_scopes=[])}
    with pytest.raises(ConfigError, match=re.escape("compression[1].target_scopes: an empty target_scopes")):
        create_compressed_model(model, data, dump_graphs=False)
