"""Error types shared across nncf_explore, and the "did you mean" helper."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NNCFExploreError(Exception):
    """Base class of every error nncf_explore raises on purpose."""


class ConfigError(NNCFExploreError, ValueError):
    """A config value is invalid; the message names its JSON path and the fix."""


class GraphError(NNCFExploreError, KeyError):
    """A graph lookup or invariant failed; the message names the node."""

    def __str__(self) -> str:
        # KeyError would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else ""


class TraceError(NNCFExploreError, RuntimeError):
    """Tracing the model failed; the message names the module and op, and suggests a fix."""


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """A ``"; did you mean 'x'?"`` suffix for an error message, or ``""`` if nothing is close.

    Example:
        >>> did_you_mean("target_devic", ["target_device", "log_dir"])
        "; did you mean 'target_device'?"
    """
    close = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
