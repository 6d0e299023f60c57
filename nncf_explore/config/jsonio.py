"""Strict JSON in and out: readable syntax errors, plain-data copies, atomic writes.

Examples:
    >>> to_json_data({"input_info": {"sample_size": (1, 3, 8, 8)}})
    {'input_info': {'sample_size': [1, 3, 8, 8]}}
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

from nncf_explore.config.spec import Json, join_path
from nncf_explore.errors import ConfigError, ConfigWarning

PathLike = str | os.PathLike[str]


def read_json_file(path: PathLike) -> Json:
    """Parse a strict JSON file (no comments, no trailing commas), as NNCF >= 2.17 does.

    Raises:
        ConfigError: The file is not valid JSON; the message shows the line, a caret and a fix.
        FileNotFoundError: The file does not exist.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text, object_pairs_hook=_DuplicateKeyWarner(str(path)))
    except json.JSONDecodeError as error:
        raise ConfigError(_syntax_message(str(path), error)) from None


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
    line = lines[min(error.lineno, len(lines)) - 1]
    caret = " " * (error.colno - 1) + "^"
    head = f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}\n    {line}\n    {caret}"
    return head + _syntax_hint(error.doc, error.pos)


def _syntax_hint(doc: str, pos: int) -> str:
    ahead = doc[pos : pos + 2]
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


def to_json_data(value: object, path: str = "") -> Json:
    """A deep copy of ``value`` as plain JSON data (dicts, lists, str, int, float, bool, None).

    Tuples become lists and mappings become dicts, so a config built in Python round-trips through a
    file unchanged.

    Raises:
        ConfigError: A key is not a string, or a value has no JSON form (e.g. ``numpy.int64``); the
            message names its path.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool | int | float | str):
        return _plain_scalar(value)
    if isinstance(value, Mapping):
        result: dict[str, Json] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{path or '<top level>'}: key {key!r} is not a string; JSON keys are strings"
                )
            result[key] = to_json_data(item, join_path(path, key))
        return result
    if isinstance(value, list | tuple):
        return [to_json_data(item, join_path(path, i)) for i, item in enumerate(value)]
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise ConfigError(
        f"{path or '<top level>'}: {value!r} has type {kind}, which is not JSON data; convert it, e.g. with "
        "int(...), float(...), str(...) or .tolist()"
    )


def _plain_scalar(value: bool | int | float | str) -> Json:
    # Subclasses such as numpy.float64 or an IntEnum: keep the plain value, not the subclass.
    for plain in (bool, int, float):
        if isinstance(value, plain):
            return plain(value)
    return str(value)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and ``os.replace``.

    Readers see the old file or the new one, never a half-written one. An existing file keeps its
    permission bits; a new one gets 0o644.
    """
    target = Path(path)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def dumps(data: Json) -> str:
    """The text :meth:`NNCFConfig.to_json` writes: 2-space indent, key order kept, final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
