"""Validate a config against the field table, with messages that name the path, the value and the fix.

The validator walks the table and the value together and collects every problem instead of stopping
at the first, so a user fixes a config in one pass.

Examples:
    >>> config = {"target_device": "cpu", "compression": {"algorithm": "quantization", "x": 1}}
    >>> for issue in find_issues(config):  # doctest: +ELLIPSIS
    ...     print(issue)
    target_device: "cpu" is not one of "ANY", "CPU", "GPU", "NPU", "TRIAL", "CPU_SPR"; did you mean 'CPU'?
    compression.x: unknown key in the "quantization" section; allowed keys: algorithm, initializer, ...
    >>> find_issues({"compression": {"algorithm": "quantization"}, "epochs": 90})
    []
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from nncf_explore.config.fields import ALGORITHMS, CONFIG
from nncf_explore.config.hints import misplaced_key_hint, type_hint
from nncf_explore.config.scopes import scope_issue
from nncf_explore.config.spec import (
    ArrayOf,
    Field,
    Json,
    MapOf,
    Obj,
    OneOf,
    Spec,
    Tagged,
    TupleOf,
    describe,
    join_path,
    json_type,
)
from nncf_explore.errors import ConfigError, ConfigWarning, did_you_mean

_MAX_LISTED_ISSUES = 20


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config: where it is and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<top level>'}: {self.message}"


def show(value: Json) -> str:
    """A short JSON rendering of ``value`` for messages.

    Examples:
        >>> show("cpu"), show([1, 2]), show(True)
        ('"cpu"', '[1, 2]', 'true')
    """
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def value_type(value: Json) -> str:
    """The JSON type name of a Python value (a Python type name if it is not JSON data)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null" if value is None else f"{type(value).__module__}.{type(value).__qualname__}"


def find_issues(data: Json, spec: Spec = CONFIG, path: str = "") -> list[ConfigIssue]:
    """Every problem in ``data`` against ``spec`` (the whole config by default); empty if valid."""
    issues: list[ConfigIssue] = []
    _check(spec, data, path, issues)
    return issues


def find_warnings(data: Json) -> list[ConfigIssue]:
    """Unknown top-level keys that look like a typo or a misplaced algorithm setting."""
    if not isinstance(data, Mapping):
        return []
    found = []
    for key, value in data.items():
        if key not in CONFIG.fields:
            message = _top_level_key_warning(key, value)
            if message:
                found.append(ConfigIssue(key, message))
    return found


def check_config(data: Json, *, source: str = "", stacklevel: int = 2) -> None:
    """Warn about suspicious top-level keys, then raise if ``data`` has any problem.

    Args:
        data: The config as JSON data.
        source: Where it came from (a file name), to prefix messages with.
        stacklevel: Passed to :func:`warnings.warn`, counted from the caller of this function.

    Raises:
        ConfigError: Listing every problem, each with its JSON path.
    """
    prefix = f"{source}: " if source else ""
    for warning in find_warnings(data):
        warnings.warn(prefix + str(warning), ConfigWarning, stacklevel=stacklevel + 1)
    issues = find_issues(data)
    if issues:
        raise ConfigError(format_issues(issues, source))


def format_issues(issues: list[ConfigIssue], source: str = "") -> str:
    """One message for all ``issues``, listing at most 20."""
    head = "Invalid NNCF config" + (f" {source}" if source else "")
    if len(issues) == 1:
        return f"{head}: {issues[0]}"
    lines = [f"  - {issue}".replace("\n", "\n    ") for issue in issues[:_MAX_LISTED_ISSUES]]
    if len(issues) > _MAX_LISTED_ISSUES:
        lines.append(f"  ... and {len(issues) - _MAX_LISTED_ISSUES} more")
    return f"{head}, {len(issues)} problems:\n" + "\n".join(lines)


def _check(spec: Spec, value: Json, path: str, out: list[ConfigIssue]) -> None:
    if isinstance(spec, OneOf):
        option = next((o for o in spec.options if _has_type(o, value)), None)
        if option is None:
            out.append(_type_issue(spec, value, path))
        else:
            _check(option, value, path, out)
    elif not _has_type(spec, value):
        out.append(_type_issue(spec, value, path))
    elif isinstance(spec, Field):
        _check_field(spec, value, path, out)
    elif isinstance(spec, ArrayOf):
        _check_array(spec, value, path, out)
    elif isinstance(spec, TupleOf):
        if len(value) != len(spec.items):
            out.append(_type_issue(spec, value, path))
        for i, (item_spec, item) in enumerate(zip(spec.items, value, strict=False)):
            _check(item_spec, item, join_path(path, i), out)
    elif isinstance(spec, MapOf):
        for key, item in value.items():
            item_path = join_path(path, key)
            problem = scope_issue(str(key), "scope") if spec.key_name == "scope" else None
            if problem:
                out.append(ConfigIssue(item_path, f"this key is a scope entry: {problem}"))
            _check(spec.values, item, item_path, out)
    elif isinstance(spec, Tagged):
        _check_tagged(spec, value, path, out)
    else:
        _check_object(spec, value, path, out)


def _has_type(spec: Spec, value: Json) -> bool:
    actual = value_type(value)
    expected = json_type(spec)
    return actual == expected or (expected == "number" and actual == "integer")


def _type_issue(spec: Spec, value: Json, path: str) -> ConfigIssue:
    got = value_type(value)
    message = f"expected {describe(spec)}, got {show(value)} ({'an' if got[0] in 'aeiou' else 'a'} {got})"
    return ConfigIssue(path, message + type_hint(spec, value))


def _check_field(spec: Field, value: Json, path: str, out: list[ConfigIssue]) -> None:
    if spec.enum and value not in spec.enum:
        allowed = ", ".join(show(v) for v in spec.enum)
        hint = did_you_mean(str(value), spec.enum, n=1)
        out.append(ConfigIssue(path, f"{show(value)} is not one of {allowed}{hint}"))
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(ConfigIssue(path, f"expected a finite number, got {value}"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        too_low = spec.minimum is not None and value < spec.minimum
        too_high = spec.maximum is not None and value > spec.maximum
        if too_low or too_high:
            out.append(ConfigIssue(path, f"{show(value)} is out of range: expected {describe(spec)}"))
    problem = scope_issue(value, spec.syntax) if isinstance(value, str) else None
    if problem:
        out.append(ConfigIssue(path, problem))


def _check_array(spec: ArrayOf, value: Json, path: str, out: list[ConfigIssue]) -> None:
    if len(value) < spec.min_items:
        example = f", e.g. {show(spec.example)}" if spec.example is not None else ""
        out.append(
            ConfigIssue(path, f"expected at least {spec.min_items} item(s), got an empty array{example}")
        )
    for i, item in enumerate(value):
        _check(spec.items, item, join_path(path, i), out)
    if spec.unique_by:
        _check_unique(spec.unique_by, value, path, out)


def _check_unique(key: str, items: list[Json], path: str, out: list[ConfigIssue]) -> None:
    first_of: dict[str, str] = {}
    for i, item in enumerate(items):
        name = item.get(key) if isinstance(item, Mapping) else None
        if not isinstance(name, str):
            continue
        here = join_path(path, i)
        if name not in first_of:
            first_of[name] = here
            continue
        out.append(
            ConfigIssue(
                here,
                f"a second {show(name)} section ({first_of[name]} is the first); only one section per "
                f"algorithm is applied, so this one would be ignored: merge its keys into {first_of[name]} "
                f"and delete {here}",
            )
        )


def _check_tagged(spec: Tagged, value: Mapping[str, Json], path: str, out: list[ConfigIssue]) -> None:
    names = ", ".join(show(name) for name in spec.options)
    if spec.tag not in value:
        close = difflib.get_close_matches(spec.tag, [str(k) for k in value], n=1)
        typo = f"; is {show(close[0])} a misspelling of it?" if close else ""
        out.append(ConfigIssue(path, f"missing key {show(spec.tag)} (one of {names}){typo}"))
        return
    name = value[spec.tag]
    if isinstance(name, str) and name in spec.elsewhere:
        out.append(
            ConfigIssue(
                join_path(path, spec.tag),
                f"{show(name)} is valid NNCF but not implemented by nncf_explore (supported: {names}); "
                "remove this section, or run it with NNCF 2.19",
            )
        )
        return
    if not isinstance(name, str) or name not in spec.options:
        hint = did_you_mean(str(name), spec.options, n=1)
        out.append(ConfigIssue(join_path(path, spec.tag), f"{show(name)} is not one of {names}{hint}"))
        return
    _check_object(spec.options[name], value, path, out, tag=spec.tag, label=f'the "{name}" section')


def _check_object(
    spec: Obj, value: Mapping[str, Json], path: str, out: list[ConfigIssue], *, tag: str = "", label: str = ""
) -> None:
    for key in spec.required:
        if key not in value:
            out.append(ConfigIssue(path, _missing_message(key, spec.fields[key])))
    if spec.required_any and not any(key in value for key in spec.required_any):
        keys = " or ".join(show(key) for key in spec.required_any)
        example = f", e.g. {show(spec.example)}" if spec.example is not None else ""
        out.append(ConfigIssue(path, f"needs at least one of {keys}{example}"))
    for key, item in value.items():
        if key in spec.fields:
            _check(spec.fields[key], item, join_path(path, key), out)
        elif not spec.open and key != tag:
            out.append(ConfigIssue(join_path(path, key), _unknown_key_message(spec, key, item, tag, label)))


def _missing_message(key: str, spec: Spec) -> str:
    if isinstance(spec, Field) and spec.enum:
        what = "one of " + ", ".join(show(v) for v in spec.enum)
    else:
        what = describe(spec)
    return f"missing required key {show(key)} ({what})"


def _unknown_key_message(spec: Obj, key: str, value: Json, tag: str, label: str) -> str:
    key = str(key)  # only a config edited in place can have other keys; keep the message readable
    where = f" in {label}" if label else ""
    hint = misplaced_key_hint(spec, key, value)
    if not hint and key in CONFIG.fields:
        hint = ". It is a top-level key: move it out of this section to the top level of the config"
    allowed = [*([tag] if tag else []), *spec.fields]
    if not hint:
        hint = did_you_mean(key, allowed, n=1)
    if not hint:
        hint = "; allowed keys: " + ", ".join(allowed)
    return f"unknown key{where}{hint}"


def _top_level_key_warning(key: str, value: Json) -> str:
    if key == "algorithm" and isinstance(value, str) and value in ALGORITHMS:
        return (
            f'this top-level key is ignored: algorithm settings belong in the "compression" section, '
            f'e.g. {{"compression": {{"algorithm": {show(value)}, ...}}}}'
        )
    homes = [
        name
        for name, obj in ALGORITHMS.items()
        if key in obj.fields and not find_issues(value, obj.fields[key])
    ]
    if homes:
        names = ", ".join(show(name) for name in homes[:3])
        return (
            f"this top-level key is ignored: it is a setting of the {names} algorithm and belongs in its "
            f'section, e.g. {{"compression": {{"algorithm": {show(homes[0])}, {show(key)}: {show(value)}}}}}'
        )
    hint = did_you_mean(key, CONFIG.fields, n=1, cutoff=0.85)
    return f"unknown top-level key is ignored{hint}" if hint else ""
