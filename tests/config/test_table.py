"""Invariants of the field table itself (like torch.fx's Graph.lint, for the config)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nncf_explore.config.fields import ALGORITHMS, CONFIG
from nncf_explore.config.spec import ArrayOf, Field, MapOf, Obj, OneOf, Spec, Tagged, TupleOf, json_type
from nncf_explore.config.validate import find_issues


def walk(spec: Spec, path: str = "") -> Iterator[tuple[str, Spec, Obj | None]]:
    """Every node of the table as (path, spec, parent object)."""
    yield path, spec, None
    if isinstance(spec, Obj):
        for key, child in spec.fields.items():
            for sub_path, sub, parent in walk(child, f"{path}.{key}"):
                yield sub_path, sub, parent if sub is not child else spec
    elif isinstance(spec, ArrayOf):
        yield from walk(spec.items, path + "[]")
    elif isinstance(spec, TupleOf):
        for i, item in enumerate(spec.items):
            yield from walk(item, f"{path}[{i}]")
    elif isinstance(spec, MapOf):
        yield from walk(spec.values, path + ".<key>")
    elif isinstance(spec, OneOf):
        for option in spec.options:
            yield from walk(option, path)
    elif isinstance(spec, Tagged):
        for name, option in spec.options.items():
            yield from walk(option, f"{path}<{name}>")


NODES = list(walk(CONFIG))
FIELDS = [(path, spec, parent) for path, spec, parent in NODES if isinstance(spec, Field)]


def test_table_is_big_enough_to_mean_something() -> None:
    assert len(FIELDS) > 150


@pytest.mark.parametrize(("path", "spec", "parent"), FIELDS, ids=[p for p, _, _ in FIELDS])
def test_every_field_has_a_description_and_a_valid_example(
    path: str, spec: Field, parent: Obj | None
) -> None:
    assert spec.description.strip(), path
    assert spec.example is not None, path
    assert find_issues(spec.example, spec) == [], path


def test_defaults_and_examples_are_valid_everywhere() -> None:
    for path, spec, _ in NODES:
        if spec.default is not None:
            assert find_issues(spec.default, spec) == [], path
        if spec.example is not None and not (isinstance(spec, Obj) and spec in ALGORITHMS.values()):
            assert find_issues(spec.example, spec) == [], path


def test_algorithm_examples_are_valid_sections() -> None:
    for name, spec in ALGORITHMS.items():
        assert spec.example["algorithm"] == name
        assert find_issues({"compression": spec.example}) == [], name


def test_one_of_options_have_distinct_json_types() -> None:
    for path, spec, _ in NODES:
        if isinstance(spec, OneOf):
            types = [json_type(option) for option in spec.options]
            assert len(set(types)) == len(types), path
            assert not any(isinstance(option, OneOf) for option in spec.options), path


def test_required_keys_exist_and_have_no_default() -> None:
    for path, spec, _ in NODES:
        if isinstance(spec, Obj):
            for key in (*spec.required, *spec.required_any):
                assert key in spec.fields, f"{path}.{key}"
            for key in spec.required:
                assert spec.fields[key].default is None, f"{path}.{key}"


def test_sibling_dependent_defaults_refer_to_an_enum_sibling() -> None:
    for path, spec, parent in FIELDS:
        if spec.default_by is not None:
            assert spec.default is None, path
            sibling, table = spec.default_by
            assert parent is not None, path
            sibling_spec = parent.fields[sibling]
            assert isinstance(sibling_spec, Field) and set(table) <= set(sibling_spec.enum), path


def test_inherited_fields_exist_at_the_top_level() -> None:
    for path, spec, _ in FIELDS:
        if spec.inherits_top_level:
            key = path.rsplit(".", 1)[-1]
            assert key in CONFIG.fields, path


def test_only_the_top_level_is_open() -> None:
    open_paths = [path for path, spec, _ in NODES if isinstance(spec, Obj) and spec.open]
    assert open_paths == [""]
