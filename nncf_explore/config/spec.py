"""The node types of the config field table: a small, closed, declarative tree.

Every value an NNCF config may hold is described by one of seven frozen node types. The validator,
the defaults lookup, the JSON schema and the Markdown reference are all functions of this tree, so
they cannot disagree.

Examples:
    >>> bits = Field("integer", default=8, minimum=1, maximum=32, description="Bit width.", example=4)
    >>> group = Obj({"bits": bits}, description="Quantizer settings.")
    >>> group.fields["bits"].default
    8
    >>> json_type(OneOf((Field("string"), ArrayOf(Field("string")))).options[1])
    'array'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal, TypeAlias

Json: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None (mypy cannot express the recursion)."""

ScalarType = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True, kw_only=True)
class _Meta:
    """What every node says about itself.

    ``default`` is ``None`` when the field has no default: JSON ``null`` is never a valid value in
    an NNCF config, so ``None`` cannot be mistaken for an explicit value.
    """

    description: str = ""
    example: Json = None
    default: Json = None
    deprecated: bool = False


@dataclass(frozen=True)
class Field(_Meta):
    """A scalar leaf: a string, integer, number or boolean, optionally restricted.

    ``inherits_top_level`` marks algorithm fields that fall back to the same key at the top level of
    the config (NNCF's "redefinable global parameters", e.g. ``compression_lr_multiplier``).
    ``default_by`` gives a default that depends on a sibling key, e.g. ``("type", {"hawq": 1.5})``.
    ``syntax`` marks strings with a grammar of their own, checked when the config loads: ``"scope"``
    (a node name, or a regex if it holds ``{re}``) or ``"quantizer_id"`` (matched as a plain substring).
    """

    type: ScalarType
    _: KW_ONLY
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    inherits_top_level: bool = False
    default_by: tuple[str, Mapping[str, Json]] | None = None
    syntax: Literal["", "scope", "quantizer_id"] = ""


@dataclass(frozen=True)
class ArrayOf(_Meta):
    """A JSON array whose items all follow ``items``.

    ``unique_by`` names a key whose string value no two object items may share (one ``compression``
    section per algorithm: NNCF would apply only one of them).
    """

    items: Spec
    _: KW_ONLY
    min_items: int = 0
    unique_by: str = ""


@dataclass(frozen=True)
class TupleOf(_Meta):
    """A fixed-length JSON array whose i-th item follows ``items[i]``, e.g. ``[bits, scope]``."""

    items: tuple[Spec, ...]


@dataclass(frozen=True)
class MapOf(_Meta):
    """A JSON object with free-form keys (``key_name`` says what they are) and uniform values.

    Keys named ``"scope"`` follow the scope syntax of :class:`Field` and are checked like scope values.
    """

    values: Spec
    _: KW_ONLY
    key_name: str = "key"


@dataclass(frozen=True)
class Obj(_Meta):
    """A JSON object with known keys.

    ``required_any`` lists keys of which at least one must be present. ``open`` objects accept
    unknown keys (only the top level of a config is open: training scripts keep their own keys there).
    """

    fields: Mapping[str, Spec]
    _: KW_ONLY
    required: tuple[str, ...] = ()
    required_any: tuple[str, ...] = ()
    open: bool = False


@dataclass(frozen=True)
class OneOf(_Meta):
    """A value that may take one of several shapes; each option has a different JSON type.

    Distinct JSON types let the validator pick the option from the value alone, so its errors talk
    about that option instead of listing why every option failed.
    """

    options: tuple[Spec, ...]


@dataclass(frozen=True)
class Tagged(_Meta):
    """One of several objects told apart by the string value of the ``tag`` key.

    ``elsewhere`` names tag values that are valid in NNCF but have no object here, so that
    they get "not implemented" rather than "unknown".
    """

    tag: str
    options: Mapping[str, Obj]
    elsewhere: frozenset[str] = frozenset()


Spec: TypeAlias = Field | ArrayOf | TupleOf | MapOf | Obj | OneOf | Tagged


def json_type(spec: Spec) -> str:
    """The JSON type a value of ``spec`` has (``"object"`` for objects, maps and tagged unions).

    Examples:
        >>> json_type(MapOf(Field("integer")))
        'object'
    """
    if isinstance(spec, Field):
        return spec.type
    if isinstance(spec, ArrayOf | TupleOf):
        return "array"
    if isinstance(spec, OneOf):
        return " or ".join(json_type(option) for option in spec.options)
    return "object"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def join_path(parent: str, key: str | int) -> str:
    """The JSON path of ``key`` inside ``parent``, as shown in error messages.

    Examples:
        >>> join_path(join_path("compression", 0), "initializer")
        'compression[0].initializer'
        >>> join_path("scope_overrides.weights", "Net/Conv2d[c]/conv2d_0")
        'scope_overrides.weights["Net/Conv2d[c]/conv2d_0"]'
    """
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not _IDENTIFIER.fullmatch(key):
        escaped = key.replace("\\", "\\\\").replace('"', '\\"')
        return f'{parent}["{escaped}"]'
    return f"{parent}.{key}" if parent else key


def describe(spec: Spec, *, article: bool = True) -> str:
    """The expected value in words, for error messages and the reference tables.

    Examples:
        >>> describe(Field("integer", minimum=1, maximum=32))
        'an integer from 1 to 32'
        >>> describe(OneOf((Field("string"), ArrayOf(Field("string")))))
        'a string or an array of strings'
        >>> describe(ArrayOf(TupleOf((Field("integer"), Field("string")))), article=False)
        'array of [integer, string] pairs'
    """
    if isinstance(spec, OneOf):
        return " or ".join(describe(option, article=article) for option in spec.options)
    noun = _noun(spec, plural=False)
    if not article:
        return noun
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _noun(spec: Spec, *, plural: bool) -> str:
    s = "s" if plural else ""
    if isinstance(spec, Field):
        return f"{spec.type}{s}{_range_words(spec)}"
    if isinstance(spec, ArrayOf):
        return f"array{s} of {_noun(spec.items, plural=True)}"
    if isinstance(spec, TupleOf):
        names = ", ".join(_noun(item, plural=False) for item in spec.items)
        return f"[{names}] pair{s}" if len(spec.items) == 2 else f"[{names}] array{s}"
    if isinstance(spec, OneOf):
        return " or ".join(_noun(option, plural=plural) for option in spec.options)
    return f"object{s}"


def _range_words(spec: Field) -> str:
    low, high = (_number(v) for v in (spec.minimum, spec.maximum))
    if low and high:
        return f" from {low} to {high}"
    if low:
        return f" >= {low}"
    return f" <= {high}" if high else ""


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)
