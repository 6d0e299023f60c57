"""Each kind of config error names the JSON path, the bad value, what is expected, and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from nncf_explore.config import NNCFConfig, build_json_schema, find_issues
from nncf_explore.errors import ConfigError

Q = "quantization"


def error_of(config: Any) -> str:
    with pytest.raises(ConfigError) as info:
        NNCFConfig.from_dict(config)
    return str(info.value)


def quantization(**section: Any) -> dict[str, Any]:
    return {"compression": [{"algorithm": Q, **section}]}


def test_type_error_names_path_value_expected_and_fix() -> None:
    message = error_of(quantization(initializer={"range": {"num_init_samples": "850"}}))
    assert "compression[0].initializer.range.num_init_samples" in message
    assert 'got "850" (a string)' in message
    assert "expected an integer >= 0" in message
    assert "Remove the quotes: 850" in message


def test_range_error_names_the_allowed_range() -> None:
    message = error_of(quantization(weights={"bits": 64}))
    assert "compression[0].weights.bits: 64 is out of range: expected an integer from 1 to 32" in message


def test_enum_error_suggests_the_right_spelling() -> None:
    message = error_of({"target_device": "cpu"})
    assert message.startswith("Invalid NNCF config: target_device:")
    assert '"cpu" is not one of "ANY", "CPU", "GPU", "NPU", "TRIAL", "CPU_SPR"' in message
    assert "did you mean 'CPU'?" in message


@pytest.mark.parametrize(
    ("section", "path", "suggestion"),
    [
        (
            {"initializer": {"range": {"type": "minmax"}}},
            "compression[0].initializer.range.type",
            "'min_max'",
        ),
        ({"preset": "Mixed"}, "compression[0].preset", "'mixed'"),
        ({"overflow_fix": "enabled"}, "compression[0].overflow_fix", "'enable'"),
        (
            {"initializer": {"precision": {"type": "HAWQ"}}},
            "compression[0].initializer.precision.type",
            "'hawq'",
        ),
    ],
)
def test_enum_errors_in_sections(section: dict[str, Any], path: str, suggestion: str) -> None:
    message = error_of(quantization(**section))
    assert path in message
    assert f"did you mean {suggestion}?" in message


@pytest.mark.parametrize("key", ["bits", "mode", "per_channel"])
def test_quantizer_keys_at_the_algorithm_level_point_to_weights_or_activations(key: str) -> None:
    value = {"bits": 4, "mode": "asymmetric", "per_channel": True}[key]
    message = error_of(quantization(**{key: value}))
    assert f'compression[0].{key}: unknown key in the "quantization" section' in message
    assert 'Move it under "weights" or "activations"' in message
    assert f'{{"weights": {{"{key}": ' in message


def test_all_problems_are_reported_at_once() -> None:
    message = error_of({**quantization(bits=4, preset="fast"), "target_device": "cpu"})
    assert "3 problems" in message
    for path in ("compression[0].bits", "compression[0].preset", "target_device"):
        assert f"  - {path}:" in message


def test_unknown_key_typo_gets_did_you_mean() -> None:
    message = error_of(quantization(ignored_scope=["Net/conv2d_0"]))
    assert "compression[0].ignored_scope: unknown key" in message
    assert "did you mean 'ignored_scopes'?" in message


def test_unknown_key_without_close_match_lists_the_allowed_keys() -> None:
    message = error_of({"compression": {"algorithm": "knowledge_distillation", "type": "mse", "zzz": 1}})
    assert "compression.zzz: unknown key" in message
    assert "allowed keys: algorithm, type, scale, temperature" in message


def test_nested_misplaced_key_points_to_its_home() -> None:
    message = error_of(quantization(initializer={"num_init_samples": 5}))
    assert "compression[0].initializer.num_init_samples" in message
    assert '{"range": {"num_init_samples": 5}}' in message


def test_top_level_key_inside_a_section_says_to_move_it_up() -> None:
    message = error_of(quantization(target_device="CPU"))
    assert "compression[0].target_device" in message
    assert "top-level key" in message


def test_unknown_algorithm_gets_did_you_mean() -> None:
    message = error_of({"compression": {"algorithm": "quantisation"}})
    assert "compression.algorithm" in message
    assert "did you mean 'quantization'?" in message


def test_missing_algorithm_key_points_at_a_misspelt_key() -> None:
    message = error_of({"compression": {"algo": Q}})
    assert 'compression: missing key "algorithm"' in message
    assert '"algo" a misspelling' in message


def test_algorithm_name_as_string_says_to_write_an_object() -> None:
    message = error_of({"compression": Q})
    assert 'Write it as an object: {"algorithm": "quantization"}' in message


def test_missing_required_key_lists_its_values() -> None:
    message = error_of({"compression": {"algorithm": "knowledge_distillation"}})
    assert 'compression: missing required key "type" (one of "mse", "softmax")' in message


def test_per_layer_range_entry_needs_a_scope() -> None:
    message = error_of(quantization(initializer={"range": [{"num_init_samples": 10}]}))
    assert (
        'compression[0].initializer.range[0]: needs at least one of "target_scopes" or "ignored_scopes"'
        in message
    )


def test_target_quantizer_group_enum() -> None:
    entry = {"target_scopes": "x", "target_quantizer_group": "weight"}
    message = error_of(quantization(initializer={"range": [entry]}))
    assert "compression[0].initializer.range[0].target_quantizer_group" in message
    assert "did you mean 'weights'?" in message


def test_bitwidth_per_scope_pairs_are_checked_item_by_item() -> None:
    pairs = [[4, "a|WEIGHT"], ["b|WEIGHT", 8], [4]]
    message = error_of(quantization(initializer={"precision": {"bitwidth_per_scope": pairs}}))
    base = "compression[0].initializer.precision.bitwidth_per_scope"
    assert f"{base}[1][0]: expected an integer from 1 to 32" in message
    assert f"{base}[2]: expected a [integer from 1 to 32, string] pair, got [4]" in message


def test_scope_overrides_keys_are_quoted_in_paths() -> None:
    message = error_of(quantization(scope_overrides={"weights": {"Net/Conv2d[c]/conv2d_0": {"bit": 4}}}))
    assert 'compression[0].scope_overrides.weights["Net/Conv2d[c]/conv2d_0"].bit' in message
    assert "did you mean 'bits'?" in message


def test_scopes_must_be_strings() -> None:
    message = error_of(quantization(ignored_scopes=["ok", 3]))
    assert "compression[0].ignored_scopes[1]: expected a string, got 3 (an integer)" in message


def test_scalar_where_a_list_is_expected_suggests_wrapping() -> None:
    message = error_of({"input_info": {"sample_size": 224}})
    assert "input_info.sample_size: expected an array of integers >= 0, got 224" in message
    assert "Wrap it in a list: [224]" in message


def test_input_info_items() -> None:
    message = error_of({"input_info": [{"sample_size": [1, 3], "filler": "one"}, {"shape": [1]}]})
    assert "input_info[0].filler" in message and "did you mean 'ones'?" in message
    assert 'input_info[1]: missing required key "sample_size"' in message
    assert "input_info[1].shape: unknown key" in message


def test_boolean_as_string() -> None:
    message = error_of(quantization(quantize_inputs="false"))
    assert "Use JSON true or false, without quotes" in message


def test_bool_is_not_an_integer() -> None:
    message = error_of(quantization(weights={"bits": True}))
    assert "compression[0].weights.bits: expected an integer from 1 to 32, got true (a boolean)" in message


def test_integral_float_for_an_integer_field() -> None:
    message = error_of(quantization(initializer={"range": {"num_init_samples": 850.0}}))
    assert "Write it without a fraction: 850" in message


def test_non_finite_number() -> None:
    message = error_of(quantization(compression_lr_multiplier=float("nan")))
    assert "compression[0].compression_lr_multiplier: expected a finite number" in message


def test_empty_per_layer_range_list() -> None:
    message = error_of(quantization(initializer={"range": []}))
    assert "compression[0].initializer.range: expected at least 1 item(s), got an empty array" in message


def test_accuracy_aware_mode_and_params() -> None:
    message = error_of({"accuracy_aware_training": {"mode": "early_exits", "params": {}}})
    assert "accuracy_aware_training.mode" in message and "did you mean 'early_exit'?" in message
    message = error_of(
        {"accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_total_epochs": 3}}}
    )
    assert "needs at least one of" in message


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match="expected a JSON object at the top level"):
        NNCFConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_non_json_values_name_their_path() -> None:
    class Weird:
        pass

    message = error_of(quantization(initializer={"range": {"num_init_samples": Weird()}}))
    assert "compression[0].initializer.range.num_init_samples" in message
    assert "not JSON data" in message


def test_non_string_keys_are_rejected() -> None:
    message = error_of({"compression": {"algorithm": Q, 1: 2}})
    assert "key 1 is not a string" in message


def test_error_class_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        NNCFConfig.from_dict({"target_device": "cpu"})


def test_long_issue_lists_are_capped() -> None:
    pairs = [["x", "y"] for _ in range(30)]
    message = error_of(quantization(initializer={"precision": {"bitwidth_per_scope": pairs}}))
    assert "30 problems" in message and "... and 10 more" in message


INVALID = [
    {"target_device": "cpu"},
    quantization(bits=4),
    quantization(weights={"bits": 64}),
    quantization(initializer={"range": [{"num_init_samples": 10}]}),
    quantization(initializer={"range": []}),
    quantization(initializer={"precision": {"bitwidth_per_scope": [[4]]}}),
    {"compression": {"algorithm": "quantisation"}},
    {"compression": {"algorithm": "knowledge_distillation"}},
    {"input_info": {"shape": [1]}},
    {"input_info": {"sample_size": [1], "filler": "one"}},
    {"accuracy_aware_training": {"mode": "early_exit", "params": {}}},
    {"compression": {"algorithm": "movement_sparsity", "params": {}}},
]


@pytest.mark.parametrize("config", INVALID)
def test_json_schema_rejects_what_the_validator_rejects(config: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert find_issues(config)
    assert not jsonschema.Draft7Validator(build_json_schema()).is_valid(config)
