"""The grammar of scope strings, checked when a config loads instead of when a model is compressed.

A scope entry is an exact node name or quantizer id, or a regular expression if it contains ``{re}``
(every marker is removed and the rest is searched with :func:`re.search`, as in NNCF). A broken regex
used to surface as a bare ``re.error`` deep inside placement; here it becomes a message with the
entry, the position of the error and a caret.

Examples:
    >>> print(scope_issue("{re}.*conv(", "scope"))  # doctest: +ELLIPSIS
    invalid regular expression: missing ), unterminated subpattern at position 6 of the regex
        {re}.*conv(
                  ^
    Fix the regex (a literal ( ) [ ] . * + ? needs a backslash, ...), or remove "{re}" to match ...
    >>> scope_issue("{re}.*conv", "scope") is None
    True
"""

from __future__ import annotations

import re
import warnings
from typing import Literal

REGEX_MARK = "{re}"
"""Marks a scope entry as a regular expression; the same marker as ``nncf_explore.graph.scope``'s."""


def scope_issue(entry: str, syntax: Literal["", "scope", "quantizer_id"]) -> str | None:
    """What is wrong with ``entry`` under ``syntax``, or None if nothing is."""
    if REGEX_MARK not in entry:
        return None
    if syntax == "quantizer_id":
        return (
            f"{entry!r}: entries here are quantizer ids matched as plain text (the first quantizer "
            'whose id contains the entry), not regexes: remove "{re}" and write the id, e.g. '
            '"Net/Conv2d[conv1]/conv2d_0|WEIGHT"'
        )
    return _regex_issue(entry) if syntax == "scope" else None


def _regex_issue(entry: str) -> str | None:
    pattern = entry.replace(REGEX_MARK, "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning about sets is not an error
            re.compile(pattern)
    except re.error as error:
        where = "" if error.pos is None else f" at position {error.pos} of the regex"
        caret = "" if error.pos is None else "\n    " + " " * _entry_position(entry, error.pos) + "^"
        return (
            f"invalid regular expression: {error.msg}{where}\n    {entry}{caret}\n"
            "Fix the regex (a literal ( ) [ ] . * + ? needs a backslash, e.g. "
            '"{re}Conv2d\\\\[conv1\\\\]" in JSON), or remove "{re}" to match the name exactly'
        )
    return None


def _entry_position(entry: str, position: int) -> int:
    """The index in ``entry`` of index ``position`` of the regex, which is ``entry`` without markers."""
    kept = 0
    i = 0
    while i < len(entry):
        if entry.startswith(REGEX_MARK, i):
            i += len(REGEX_MARK)
            continue
        if kept == position:
            return i
        kept += 1
        i += 1
    return len(entry)
