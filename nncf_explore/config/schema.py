"""The field table as a JSON Schema (draft-07) and as a Markdown reference page.

Both are generated, never written by hand, so they always agree with the validator.

Examples:
    >>> schema = build_json_schema()
    >>> schema["properties"]["target_device"]["default"]
    'ANY'
    >>> "| `target_device` |" in render_config_reference()
    True
"""

from __future__ import annotations

from typing import Any

from nncf_explore.config.fields import CONFIG
from nncf_explore.config.reference import render_config_reference
from nncf_explore.config.spec import ArrayOf, Field, MapOf, Obj, OneOf, Spec, Tagged, TupleOf

__all__ = ["build_json_schema", "render_config_reference"]

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def build_json_schema() -> dict[str, Any]:
    """The JSON Schema of a whole config; tagged sections (algorithms, modes) sit in ``definitions``."""
    definitions: dict[str, Any] = {}
    body = _schema(CONFIG, definitions)
    return {"$schema": SCHEMA_DIALECT, "title": "NNCF config", **body, "definitions": definitions}


def _schema(spec: Spec, definitions: dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, Field):
        out: dict[str, Any] = {"type": spec.type}
        if spec.enum:
            out["enum"] = list(spec.enum)
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
    elif isinstance(spec, ArrayOf):
        out = {"type": "array", "items": _schema(spec.items, definitions)}
        if spec.min_items:
            out["minItems"] = spec.min_items
    elif isinstance(spec, TupleOf):
        size = len(spec.items)
        items = [_schema(item, definitions) for item in spec.items]
        out = {"type": "array", "items": items, "minItems": size, "maxItems": size, "additionalItems": False}
    elif isinstance(spec, MapOf):
        out = {"type": "object", "additionalProperties": _schema(spec.values, definitions)}
    elif isinstance(spec, OneOf):
        out = {"oneOf": [_schema(option, definitions) for option in spec.options]}
    elif isinstance(spec, Tagged):
        out = _tagged_schema(spec, definitions)
    else:
        out = _object_schema(spec, definitions)
    return {**_meta(spec), **out}


def _object_schema(
    spec: Obj, definitions: dict[str, Any], tag: tuple[str, str] | None = None
) -> dict[str, Any]:
    properties = {key: _schema(field, definitions) for key, field in spec.fields.items()}
    required = list(spec.required)
    if tag is not None:
        properties = {tag[0]: {"const": tag[1]}, **properties}
        required = [tag[0], *required]
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": spec.open}
    if required:
        out["required"] = required
    if spec.required_any:
        out["anyOf"] = [{"required": [key]} for key in spec.required_any]
    return out


def _tagged_schema(spec: Tagged, definitions: dict[str, Any]) -> dict[str, Any]:
    refs = []
    for name, option in spec.options.items():
        definitions[name] = {**_meta(option), **_object_schema(option, definitions, (spec.tag, name))}
        refs.append({"$ref": f"#/definitions/{name}"})
    return {"type": "object", "required": [spec.tag], "oneOf": refs}


def _meta(spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.description:
        out["description"] = spec.description + (" Deprecated." if spec.deprecated else "")
    if spec.default is not None:
        out["default"] = spec.default
    if spec.example is not None:
        out["examples"] = [spec.example]
    return out
