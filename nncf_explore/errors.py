"""Error types shared across nncf_explore, and the "did you mean" helper."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NNCFExploreError(Exception):
    """Base class of every error nncf_explore raises on purpose."""


class ConfigError(NNCFExploreError, ValueError):
    """A config value is invalid; the message names its JSON path and the fix."""


class ConfigWarning(UserWarning):
    """A config key is probably misspelt or misplaced; the message names the fix."""


class DataLoaderError(NNCFExploreError, TypeError):
    """An init data loader yields batches the loader contract cannot split into inputs and target."""


class InitDataError(NNCFExploreError, ValueError):
    """An init data loader is empty, or yields a batch the model cannot run or measure.

    The message names the loader step (range init, BatchNorm adaptation), the batch index and the fix.
    """


class RangeInitError(InitDataError):
    """Range initialisation cannot use the init data; the message names the quantizer and the batch."""


class CompressionStateError(ConfigError):
    """A ``compression_state`` does not fit the config or the model; the message names its path in the state.

    It is a :class:`ConfigError` because the state is JSON that selects what is built, exactly as a config.
    """


class FileWriteError(NNCFExploreError, OSError):
    """Writing a file failed; the message names the target file (never a temporary one) and the fix.

    It is an ``OSError`` (with ``errno`` and ``filename``) so that ``except OSError`` still catches it.
    """

    def __str__(self) -> str:
        # OSError would prefix "[Errno n]" and append the file name, which the message already holds.
        return str(self.strerror) if self.strerror else super().__str__()


class GraphError(NNCFExploreError, KeyError):
    """A graph lookup or invariant failed; the message names the node."""

    def __str__(self) -> str:
        # KeyError would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else ""


class TraceError(NNCFExploreError, RuntimeError):
    """Tracing the model failed; the message names the module and op, and suggests a fix."""


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.6) -> str:
    """A ``"; did you mean 'x'?"`` suffix for an error message, or ``""`` if nothing is close.

    Matching ignores case, so ``"cpu"`` finds ``"CPU"``; suggestions keep their own spelling.

    Examples:
        >>> did_you_mean("target_devic", ["target_device", "log_dir"])
        "; did you mean 'target_device'?"
        >>> did_you_mean("cpu", ["ANY", "CPU", "GPU"])
        "; did you mean 'CPU'?"
        >>> did_you_mean("epochs", ["target_device", "log_dir"])
        ''
    """
    by_folded: dict[str, list[str]] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), []).append(candidate)
    folded = word.casefold()
    if folded in by_folded:
        close = [folded]
    else:
        close = difflib.get_close_matches(folded, list(by_folded), n=n, cutoff=cutoff)
    suggestions = [original for key in close for original in by_folded[key] if original != word][:n]
    if not suggestions:
        return ""
    return "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
