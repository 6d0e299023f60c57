"""Bad input found by fuzzing gets a ConfigError at load time, with the JSON path (or file position) and the fix.

Each test here failed before: a broken ``{re}`` regex raised a bare ``re.error`` at create time, a
second ``quantization`` section was ignored, and odd files gave ``UnicodeDecodeError``,
``RecursionError``, ``ValueError`` or were accepted with NaN in them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nncf_explore.config import CONFIG, NNCFConfig
from nncf_explore.config.spec import ArrayOf, Field, MapOf, Obj, OneOf, Spec, Tagged, TupleOf
from nncf_explore.errors import ConfigError

BAD = "{re}.*conv("  # re.error: missing ), unterminated subpattern at position 6
CARET = "\n    " + " " * 10 + "^"  # under the "(" of the entry as written


def error_of(config: Any) -> str:
    with pytest.raises(ConfigError) as info:
        NNCFConfig.from_dict(config)
    return str(info.value)


def q(**section: Any) -> dict[str, Any]:
    return {"compression": [{"algorithm": "quantization", **section}]}


SCOPE_FIELDS = [
    ({"ignored_scopes": BAD}, "ignored_scopes"),
    ({"target_scopes": ["Net", BAD]}, "target_scopes[1]"),
    ({"scopes_without_shape_matching": [BAD]}, "scopes_without_shape_matching[0]"),
    (q(ignored_scopes=["a", "b", BAD]), "compression[0].ignored_scopes[2]"),
    (q(target_scopes=BAD), "compression[0].target_scopes"),
    (q(weights={"ignored_scopes": [BAD]}), "compression[0].weights.ignored_scopes[0]"),
    (q(weights={"target_scopes": [BAD]}), "compression[0].weights.target_scopes[0]"),
    (q(activations={"ignored_scopes": [BAD]}), "compression[0].activations.ignored_scopes[0]"),
    (q(activations={"target_scopes": BAD}), "compression[0].activations.target_scopes"),
    (
        q(activations={"unified_scale_ops": [["a", BAD]]}),
        "compression[0].activations.unified_scale_ops[0][1]",
    ),
    (
        q(scope_overrides={"weights": {BAD: {"bits": 4}}}),
        'compression[0].scope_overrides.weights["{re}.*conv("]',
    ),
    (
        q(scope_overrides={"activations": {BAD: {"bits": 4}}}),
        'compression[0].scope_overrides.activations["{re}.*conv("]',
    ),
    (
        q(initializer={"range": [{"target_scopes": [BAD]}]}),
        "compression[0].initializer.range[0].target_scopes[0]",
    ),
    (
        {"compression": {"algorithm": "magnitude_sparsity", "ignored_scopes": [BAD]}},
        "compression.ignored_scopes[0]",
    ),
    (
        {
            "compression": {
                "algorithm": "movement_sparsity",
                "params": {
                    "warmup_start_epoch": 1,
                    "warmup_end_epoch": 2,
                    "importance_regularization_factor": 1,
                },
                "sparse_structure_by_scopes": [{"mode": "fine", "target_scopes": [BAD]}],
            }
        },
        "compression.sparse_structure_by_scopes[0].target_scopes[0]",
    ),
]


@pytest.mark.parametrize(("config", "path"), SCOPE_FIELDS, ids=[path for _, path in SCOPE_FIELDS])
def test_invalid_regex_in_any_scope_field_is_refused_at_load_time(config: dict[str, Any], path: str) -> None:
    message = error_of(config)
    assert f"{path}: " in message
    assert (
        "invalid regular expression: missing ), unterminated subpattern at position 6 of the regex" in message
    )
    assert f"\n    {BAD}" + CARET in message
    assert "needs a backslash" in message and 'remove "{re}"' in message


def test_regex_error_position_counts_from_after_the_marker_wherever_it_stands() -> None:
    message = error_of(q(ignored_scopes=["Net/{re}[abc"]))
    assert "unterminated character set at position 4 of the regex" in message
    assert "\n    Net/{re}[abc\n    " + " " * 8 + "^" in message


def test_invalid_regex_in_a_file_names_the_json_path(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(q(weights={"ignored_scopes": ["{re}x)"]})))
    with pytest.raises(
        ConfigError, match=re.escape("compression[0].weights.ignored_scopes[0]: invalid regular")
    ):
        NNCFConfig.from_json(path)


def test_valid_regexes_and_plain_names_with_brackets_still_load() -> None:
    NNCFConfig.from_dict(q(ignored_scopes=["Net/Conv2d[conv1]/conv2d_0", "{re}.*Conv2d\\[conv\\d\\].*"]))


def test_bitwidth_per_scope_ids_are_not_regexes() -> None:
    message = error_of(q(initializer={"precision": {"bitwidth_per_scope": [[4, "{re}.*conv.*"]]}}))
    assert "compression[0].initializer.precision.bitwidth_per_scope[0][1]" in message
    assert "matched as plain text" in message and 'remove "{re}"' in message


def _scope_fields(spec: Spec, inside_scopes: bool = False) -> Iterator[tuple[Spec, bool]]:
    """Every node of the table, with whether it is a value (or array item) of a "...scopes" key."""
    yield spec, inside_scopes
    if isinstance(spec, Obj):
        for key, child in spec.fields.items():
            yield from _scope_fields(child, key.endswith("scopes") or key == "unified_scale_ops")
    elif isinstance(spec, Tagged):
        for option in spec.options.values():
            yield from _scope_fields(option, inside_scopes)
    elif isinstance(spec, OneOf | TupleOf):
        for child in spec.options if isinstance(spec, OneOf) else spec.items:
            yield from _scope_fields(child, inside_scopes)
    elif isinstance(spec, ArrayOf):
        yield from _scope_fields(spec.items, inside_scopes)
    elif isinstance(spec, MapOf):
        yield from _scope_fields(spec.values, inside_scopes)


def test_every_scope_string_of_the_table_is_checked() -> None:
    strings = [
        (s, inside) for s, inside in _scope_fields(CONFIG) if isinstance(s, Field) and s.type == "string"
    ]
    in_scope_lists = [s for s, inside in strings if inside]
    assert len(in_scope_lists) > 20
    assert all(s.syntax == "scope" for s in in_scope_lists)
    scope_maps = [s for s, _ in _scope_fields(CONFIG) if isinstance(s, MapOf) and s.key_name == "scope"]
    assert len({id(s) for s in scope_maps}) == 2  # scope_overrides.weights and .activations


def test_a_second_quantization_section_is_refused_with_both_paths() -> None:
    sections = [
        {"algorithm": "quantization"},
        {"algorithm": "magnitude_sparsity"},
        {"algorithm": "quantization"},
    ]
    message = error_of({"compression": sections})
    assert 'compression[2]: a second "quantization" section (compression[0] is the first)' in message
    assert "merge its keys into compression[0] and delete compression[2]" in message


def test_duplicates_are_found_after_editing_in_place_too() -> None:
    config = NNCFConfig.from_dict({"compression": [{"algorithm": "quantization"}]})
    config["compression"].append({"algorithm": "quantization", "preset": "mixed"})
    with pytest.raises(ConfigError, match=re.escape("compression[1]: a second")):
        config.algorithm_configs()


def write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "config.json"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        NNCFConfig.from_json(path)
    return str(info.value)


def test_non_utf8_file_names_the_file_line_column_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "log_dir": "caf\xe9"\n}'.encode("latin-1"))
    message = load_error(path)
    assert message.startswith(f"{path}:2:18: the file is not UTF-8 text (byte 0xe9")
    assert "save the file as UTF-8" in message


def test_very_deep_json_names_the_position_instead_of_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")  # "{" is level 1
    message = load_error(path)
    assert message.startswith(f"{path}:1:{6 + 100}: the JSON is nested more than 100 levels deep")
    assert "unbalanced brackets" in message
    assert len(message) < 500  # a window of the line, not all 200k characters


def test_deep_but_parseable_json_is_refused_with_its_json_path(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '{"x": ' + "[" * 150 + "]" * 150 + "}"))
    assert message.startswith("x[0][0]") and "nested more than 100 levels deep" in message


def test_a_config_that_contains_itself_is_refused() -> None:
    data: dict[str, Any] = {"log_dir": "x"}
    data["self"] = data
    assert "check for a dict or list that contains itself" in error_of(data)


def test_a_100k_digit_integer_names_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "seed": ' + "7" * 100_000 + "\n}")
    message = load_error(path)
    assert message.startswith(f"{path}:2:11: an integer of 100000 digits is too long for a config")
    assert "store it as a string" in message and len(message) < 500


@pytest.mark.parametrize(
    ("token", "column", "what"),
    [
        ("NaN", 23, "NaN is not JSON"),
        ("Infinity", 23, "Infinity is not JSON"),
        ("-Infinity", 23, "-Infinity is not JSON"),
        ("1e400", 23, "1e400 is too large for a 64-bit float"),
    ],
)
def test_nan_and_infinity_are_refused_anywhere(tmp_path: Path, token: str, column: int, what: str) -> None:
    path = write(tmp_path, '{"my_script": {"lr": [' + token + "]}}")  # under an unknown key
    message = load_error(path)
    assert message.startswith(f"{path}:1:{column}: {what}")


def test_nan_in_a_string_is_fine_and_the_token_is_found_outside_strings(tmp_path: Path) -> None:
    path = write(tmp_path, '{"note": "NaN", "x": NaN}')
    assert load_error(path).startswith(f"{path}:1:22: NaN is not JSON")


def test_nan_from_python_is_refused_anywhere_too() -> None:
    message = error_of({"my_script": {"lr": [float("nan")]}})
    assert message.startswith("my_script.lr[0]: expected a finite number, got nan")
    config = NNCFConfig.from_dict({})
    config["my_script"] = float("inf")
    with pytest.raises(ConfigError, match="my_script: expected a finite number, got inf"):
        config.validate()
    with pytest.raises(ConfigError, match="expected a finite number"):
        config.to_json("never-written.json")
    assert not Path("never-written.json").exists()


def test_empty_path_and_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the config path is empty"):
        NNCFConfig.from_json("")
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        NNCFConfig.from_json(tmp_path)


def test_a_byte_order_mark_gets_a_hint(tmp_path: Path) -> None:
    assert "without BOM" in load_error(write(tmp_path, b"\xef\xbb\xbf{}"))
