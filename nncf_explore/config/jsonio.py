"""Strict JSON in and out: readable errors with line, column and caret, plain-data copies.

Writing goes through :func:`nncf_explore.files.write_text_atomic`, the one atomic writer of the
package, re-exported here.

Examples:
    >>> to_json_data({"input_info": {"sample_size": (1, 3, 8, 8)}})
    {'input_info': {'sample_size': [1, 3, 8, 8]}}
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

from nncf_explore.config.spec import Json, join_path
from nncf_explore.errors import ConfigError, ConfigWarning
from nncf_explore.files import PathLike, write_text_atomic

__all__ = ["PathLike", "dumps", "parse_json_text", "read_json_file", "to_json_data", "write_text_atomic"]


_MAX_DEPTH = 100
"""Nesting limit of config data. NNCF configs are a few levels deep; a deeper value is a mistake (or a
cycle), and Python's recursion limit would otherwise end the parse with a bare ``RecursionError``."""

_MAX_INT_DIGITS = 4300
"""Longest integer accepted: Python's default conversion limit, fixed here so that a config loads the
same whatever ``sys.set_int_max_str_digits`` says."""


def read_json_file(path: PathLike) -> Json:
    """Parse a strict JSON file (no comments, no trailing commas, no NaN), as NNCF >= 2.17 does.

    Raises:
        ConfigError: The path is empty or a directory, the file is not UTF-8, or it is not strict JSON;
            the message shows the file, the line and column with a caret, and a fix.
        FileNotFoundError: The file does not exist.
    """
    source = os.fspath(path)
    if not source.strip():
        raise ConfigError("the config path is empty: pass the path of a JSON file, e.g. 'nncf_config.json'")
    if Path(source).is_dir():
        raise ConfigError(f"{source}: is a directory, not a config file; pass the path of a JSON file in it")
    return parse_json_text(_decode(source, Path(source).read_bytes()), source)


def parse_json_text(text: str, source: str = "<string>") -> Json:
    """Parse strict JSON text; ``source`` names it in messages.

    Examples:
        >>> parse_json_text('{"bits": 8}')
        {'bits': 8}
        >>> parse_json_text('{"x": NaN}')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nncf_explore.errors.ConfigError: <string>:1:7: NaN is not JSON: ...

    Raises:
        ConfigError: As :func:`read_json_file`.
    """
    try:
        return json.loads(
            text,
            object_pairs_hook=_DuplicateKeyWarner(source),
            parse_constant=_reject_constant,
            parse_int=_checked_int,
            parse_float=_checked_float,
        )
    except json.JSONDecodeError as error:
        raise ConfigError(_syntax_message(source, error)) from None
    except _BadNumberError as error:
        position = _token_position(text, error.token)
        raise ConfigError(_located(source, text, position, error.message)) from None
    except RecursionError:
        message = (
            f"the JSON is nested more than {_MAX_DEPTH} levels deep; an NNCF config is a few levels deep: "
            "check for unbalanced brackets"
        )
        raise ConfigError(_located(source, text, _too_deep_position(text), message)) from None


def _decode(source: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(
            f"{source}:{line}:{column}: the file is not UTF-8 text (byte 0x{raw[error.start]:02x} at byte "
            f"{error.start} cannot be decoded); NNCF configs are UTF-8 JSON: save the file as UTF-8, e.g. "
            f"with `iconv -f latin1 -t utf-8 {source} > fixed.json`"
        ) from None


class _BadNumberError(ValueError):
    """A number token strict JSON (or a config) cannot hold; ``token`` is its text, to locate it."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token
        self.message = message


def _reject_constant(name: str) -> Json:
    raise _BadNumberError(
        name,
        f"{name} is not JSON: strict JSON has no NaN or Infinity (Python's json module accepts them, "
        f'other readers do not); write a finite number, or a string such as "{name}" if your own script '
        "reads this key",
    )


def _checked_int(token: str) -> int:
    digits = len(token.lstrip("-"))
    if digits <= _MAX_INT_DIGITS:
        try:
            return int(token)
        except ValueError:
            pass  # sys.set_int_max_str_digits set a lower limit: report it like ours
    raise _BadNumberError(
        token,
        f"an integer of {digits} digits is too long for a config (at most {_MAX_INT_DIGITS}): "
        "shorten it, or store it as a string",
    )


def _checked_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _BadNumberError(
            token,
            f"{_shorten(token)} is too large for a 64-bit float (it would become infinity): write a "
            "number below 1.7e308",
        )
    return value


def _token_position(text: str, token: str) -> int | None:
    """Where ``token`` first stands as a value, outside strings (the parser does not tell)."""
    pattern = _STRING + "|" + r"(?<![\w.+-])(" + re.escape(token) + r")(?![\w.])"
    for match in re.finditer(pattern, text):
        if match.group(1) is not None:
            return match.start(1)
    return None


def _too_deep_position(text: str) -> int | None:
    """The first bracket that opens level ``_MAX_DEPTH + 1``, outside strings."""
    depth = 0
    for match in re.finditer(_STRING + r"|([\[{])|([\]}])", text):
        if match.group(1):
            depth += 1
            if depth > _MAX_DEPTH:
                return match.start(1)
        elif match.group(2):
            depth -= 1
    return None


_STRING = r'"(?:[^"\\]|\\.)*"'


def _located(source: str, text: str, position: int | None, message: str) -> str:
    if position is None:
        return f"{source}: {message}"
    line = text.count("\n", 0, position) + 1
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    shown, caret = _excerpt(text[line_start : len(text) if line_end < 0 else line_end], position - line_start)
    return f"{source}:{line}:{position - line_start + 1}: {message}\n    {shown}\n    {' ' * caret}^"


def _excerpt(line: str, column: int, width: int = 40) -> tuple[str, int]:
    """At most ``2 * width`` characters of ``line`` around ``column``, and the caret offset in them."""
    start = max(0, column - width)
    end = min(len(line), column + width)
    prefix = "..." if start else ""
    suffix = "..." if end < len(line) else ""
    return prefix + line[start:end] + suffix, len(prefix) + column - start


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else f"{text[: width - 3]}..."


class _DuplicateKeyWarner:
    """``object_pairs_hook`` that builds dicts as json does (last value wins) but warns on repeats."""

    def __init__(self, source: str) -> None:
        self._source = source

    def __call__(self, pairs: list[tuple[str, Json]]) -> dict[str, Json]:
        result: dict[str, Json] = {}
        for key, value in pairs:
            if key in result:
                message = (
                    f"{self._source}: key {json.dumps(key)} appears twice in one object; the last value wins"
                )
                warnings.warn(message, ConfigWarning, stacklevel=2)
            result[key] = value
        return result


def _syntax_message(source: str, error: json.JSONDecodeError) -> str:
    lines = error.doc.splitlines() or [""]
    shown, caret = _excerpt(lines[min(error.lineno, len(lines)) - 1], error.colno - 1)
    head = (
        f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}\n    {shown}\n    {' ' * caret}^"
    )
    return head + _syntax_hint(error.doc, error.pos)


def _syntax_hint(doc: str, pos: int) -> str:
    ahead = doc[pos : pos + 2]
    if pos == 0 and doc.startswith("\ufeff"):
        return "\nThe file starts with a byte-order mark: save it as UTF-8 without BOM."
    if ahead in ("//", "/*") or ahead[:1] == "#":
        return (
            "\nJSON has no comments, and NNCF >= 2.17 reads configs as strict JSON: delete the comment "
            '(a note can go in an extra top-level key such as "_comment").'
        )
    before = doc[:pos].rstrip()
    if ahead[:1] in ("}", "]") and before.endswith(","):
        return "\nJSON allows no trailing comma: delete the comma before this bracket."
    if ahead[:1] == "'":
        return "\nJSON strings and keys use double quotes."
    return ""


def to_json_data(value: object, path: str = "", *, _depth: int = 0) -> Json:
    """A deep copy of ``value`` as plain JSON data (dicts, lists, str, int, float, bool, None).

    Tuples become lists and mappings become dicts, so a config built in Python round-trips through a
    file unchanged.

    Raises:
        ConfigError: A key is not a string, a value has no JSON form (e.g. ``numpy.int64``, NaN), or
            the data nests more than 100 levels (or contains itself); the message names its path.
    """
    where = path or "<top level>"
    if _depth > _MAX_DEPTH:
        raise ConfigError(
            f"{_shorten(where, 80)}: the config is nested more than {_MAX_DEPTH} levels deep; an NNCF config "
            "is a few levels deep: check for a dict or list that contains itself"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{where}: expected a finite number, got {value}; strict JSON has no NaN or Infinity: write "
            "a finite number, or a string if your own script reads this key"
        )
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool | int | float | str):
        return _plain_scalar(value)
    if isinstance(value, Mapping):
        result: dict[str, Json] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: key {key!r} is not a string; JSON keys are strings")
            result[key] = to_json_data(item, join_path(path, key), _depth=_depth + 1)
        return result
    if isinstance(value, list | tuple):
        return [to_json_data(item, join_path(path, i), _depth=_depth + 1) for i, item in enumerate(value)]
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise ConfigError(
        f"{where}: {value!r} has type {kind}, which is not JSON data; convert it, e.g. with "
        "int(...), float(...), str(...) or .tolist()"
    )


def _plain_scalar(value: bool | int | float | str) -> Json:
    # Subclasses such as numpy.float64 or an IntEnum: keep the plain value, not the subclass.
    for plain in (bool, int, float):
        if isinstance(value, plain):
            return plain(value)
    return str(value)


def dumps(data: Json) -> str:
    """The text :meth:`NNCFConfig.to_json` writes: 2-space indent, key order kept, final newline.

    Write it with :func:`write_text_atomic` (from :mod:`nncf_explore.files`, re-exported here).
    """
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
