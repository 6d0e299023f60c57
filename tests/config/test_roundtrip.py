"""Property tests over random valid configs generated from the field table."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from nncf_explore.config import NNCFConfig, build_json_schema, find_issues
from nncf_explore.config.jsonio import dumps
from tests.config.strategies import configs

jsonschema = pytest.importorskip("jsonschema")
_VALIDATOR = jsonschema.Draft7Validator(build_json_schema())
_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(configs)
def test_generated_configs_are_valid(data: dict[str, Any]) -> None:
    assert find_issues(data) == []


@_SETTINGS
@given(configs)
def test_from_dict_to_json_from_json_gives_an_equal_dict(data: dict[str, Any]) -> None:
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        path = Path(tmp) / "config.json"
        NNCFConfig.from_dict(data).to_json(path)
        assert NNCFConfig.from_json(path) == data


@_SETTINGS
@given(configs)
def test_json_schema_accepts_what_the_validator_accepts(data: dict[str, Any]) -> None:
    _VALIDATOR.validate(data)


@_SETTINGS
@given(configs)
def test_written_json_is_stable(data: dict[str, Any]) -> None:
    text = dumps(data)
    assert dumps(json.loads(text)) == text
