"""The "how to fix it" part of config error messages.

Examples:
    >>> from nncf_explore.config.fields import ALGORITHMS
    >>> misplaced_key_hint(ALGORITHMS["quantization"], "num_init_samples", 8)
    '. Move it under "initializer.range", e.g. {"initializer": {"range": {"num_init_samples": 8}}}'
    >>> type_hint(ALGORITHMS["quantization"].fields["quantize_inputs"], "false")
    '. Use JSON true or false, without quotes'
"""

from __future__ import annotations

import json

from nncf_explore.config.spec import ArrayOf, Field, Json, Obj, OneOf, Spec, Tagged

_MAX_DEPTH = 3


def misplaced_key_hint(spec: Obj, key: str, value: Json) -> str:
    """Where an unknown key of ``spec`` belongs, if some nested object of ``spec`` has it.

    The shallowest homes win, so ``bits`` in a quantization section points to ``weights`` and
    ``activations`` rather than to ``initializer.precision``.
    """
    homes = _homes(spec, key)
    if not homes:
        return ""
    example: Json = {key: value}
    for part in reversed(homes[0].split(".")):
        example = {part: example}
    names = " or ".join(f'"{home}"' for home in homes)
    each = "; set it in each of them to apply it to all" if len(homes) > 1 else ""
    return f". Move it under {names}, e.g. {_compact(example)}{each}"


def _homes(spec: Obj, key: str) -> list[str]:
    frontier: list[tuple[str, Obj]] = [("", spec)]
    for _ in range(_MAX_DEPTH):
        found: list[str] = []
        deeper: list[tuple[str, Obj]] = []
        for prefix, obj in frontier:
            for name, child in obj.fields.items():
                for inner in _objects(child):
                    here = f"{prefix}.{name}" if prefix else name
                    if key in inner.fields and here not in found:
                        found.append(here)
                    deeper.append((here, inner))
        if found:
            return found
        frontier = deeper
    return []


def _objects(spec: Spec) -> list[Obj]:
    if isinstance(spec, Obj):
        return [spec]
    if isinstance(spec, ArrayOf):
        return _objects(spec.items)
    if isinstance(spec, OneOf):
        return [obj for option in spec.options for obj in _objects(option)]
    return []


def type_hint(spec: Spec, value: Json) -> str:
    """A fix for a value of the wrong JSON type, or "" if none is obvious."""
    options = spec.options if isinstance(spec, OneOf) else (spec,)
    types = {option.type for option in options if isinstance(option, Field)}
    tagged = [option for option in options if isinstance(option, Tagged)]
    if isinstance(value, str) and types & {"integer", "number"} and _is_number(value):
        return f". Remove the quotes: {value.strip()}"
    if isinstance(value, str) and "boolean" in types and value.strip().lower() in ("true", "false"):
        return ". Use JSON true or false, without quotes"
    if isinstance(value, float) and "integer" in types and value.is_integer():
        return f". Write it without a fraction: {int(value)}"
    if tagged and isinstance(value, str) and value in tagged[0].options:
        return f". Write it as an object: {_compact({tagged[0].tag: value})}"
    if any(isinstance(option, ArrayOf) for option in options) and isinstance(value, str | int | float):
        return f". Wrap it in a list: {_compact([value])}"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _compact(value: Json) -> str:
    return json.dumps(value, ensure_ascii=False)
