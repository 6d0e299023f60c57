"""Hypothesis strategies that generate valid config data straight from the field table."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nncf_explore.config.fields import CONFIG
from nncf_explore.config.spec import ArrayOf, Field, MapOf, Obj, OneOf, Spec, Tagged, TupleOf

# Text without surrogates (not encodable as UTF-8) and short, so examples stay small.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)


# Random text holding "{re}" would be a random regex, which is rarely a valid one.
_PLAIN_SCOPE = _TEXT.filter(lambda text: "{re}" not in text)


def _key_getter(key: str) -> Any:
    return lambda item: item.get(key) if isinstance(item, dict) else None


def from_spec(spec: Spec) -> st.SearchStrategy[Any]:
    """Values that the validator must accept for ``spec``."""
    if isinstance(spec, Field):
        return _field(spec)
    if isinstance(spec, ArrayOf):
        unique = {"unique_by": _key_getter(spec.unique_by)} if spec.unique_by else {}
        return st.lists(
            from_spec(spec.items), min_size=spec.min_items, max_size=max(spec.min_items, 2), **unique
        )
    if isinstance(spec, TupleOf):
        return st.tuples(*(from_spec(item) for item in spec.items)).map(list)
    if isinstance(spec, MapOf):
        keys = _PLAIN_SCOPE if spec.key_name == "scope" else _TEXT
        return st.dictionaries(keys, from_spec(spec.values), max_size=2)
    if isinstance(spec, OneOf):
        return st.one_of(*(from_spec(option) for option in spec.options))
    if isinstance(spec, Tagged):
        return st.one_of(*(_object(obj, (spec.tag, name)) for name, obj in spec.options.items()))
    return _object(spec)


def _field(spec: Field) -> st.SearchStrategy[Any]:
    if spec.enum:
        return st.sampled_from(spec.enum)
    if spec.type == "boolean":
        return st.booleans()
    if spec.type == "string":
        return _PLAIN_SCOPE if spec.syntax else _TEXT
    low = spec.minimum if spec.minimum is not None else -1e6
    high = spec.maximum if spec.maximum is not None else 1e6
    integers = st.integers(int(low), int(high))
    if spec.type == "integer":
        return integers
    return st.one_of(integers, st.floats(low, high, allow_nan=False, allow_infinity=False))


def _object(spec: Obj, tag: tuple[str, str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    required = {key: from_spec(spec.fields[key]) for key in spec.required}
    optional = {key: from_spec(field) for key, field in spec.fields.items() if key not in spec.required}
    base = st.fixed_dictionaries(required, optional=optional)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        value = draw(base)
        if spec.required_any and not any(key in value for key in spec.required_any):
            key = draw(st.sampled_from(spec.required_any))
            value[key] = draw(from_spec(spec.fields[key]))
        return {tag[0]: tag[1], **value} if tag else value

    return build()


_TRAINING_KEYS = st.fixed_dictionaries(
    {}, optional={"model": _TEXT, "epochs": st.integers(0, 300), "batch_size": st.integers(1, 512)}
)

configs = st.builds(lambda nncf, extra: {**extra, **nncf}, from_spec(CONFIG), _TRAINING_KEYS)
"""Whole configs: every table field may appear, plus typical training-script keys."""
