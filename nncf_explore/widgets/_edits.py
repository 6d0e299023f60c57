"""Edits of a quantizer setup, and the undo history (pure).

An edit is data (:class:`Toggle`, :class:`SetSpec`, :class:`SetDevice`, :class:`ApplySetup`);
:func:`apply_edit` turns the current setup into the next one.  Points that
share a unified scale change together, because NNCF gives them one
quantizer.  A point turned off and on again comes back as it was when it was
turned off (``memory``), or with its default spec.

Examples:
    >>> from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
    >>> from nncf_explore.compression.quantization.spec import QuantizerSpec
    >>> w = QuantizationPoint("weight", "Net/conv2d_0", None, QuantizerSpec())
    >>> default = QuantizerSetup((w,))
    >>> off = apply_edit(Toggle(("Net/conv2d_0|WEIGHT",), False), default, default, {})
    >>> len(off), describe(Toggle(("Net/conv2d_0|WEIGHT",), False))
    (0, 'off: Net/conv2d_0|WEIGHT')
    >>> four = apply_edit(SetSpec(("Net/conv2d_0|WEIGHT",), {"bits": 4}), default, default, {})
    >>> four.get("Net/conv2d_0|WEIGHT").spec.bits
    4
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.errors import ConfigError

SPEC_FIELDS = ("bits", "mode", "per_channel")
"""Spec fields the Explorer edits."""


@dataclass(frozen=True)
class Toggle:
    """Turn quantizers on or off."""

    qids: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True)
class SetSpec:
    """Change spec fields (:data:`SPEC_FIELDS`) of quantizers that are on."""

    qids: tuple[str, ...]
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class SetDevice:
    """Switch ``target_device`` (the session decides what the new device allows)."""

    device: str


@dataclass(frozen=True)
class ApplySetup:
    """Replace the whole setup at once (a mixed-precision front point): one edit, one undo step."""

    setup: QuantizerSetup
    label: str


Edit = Toggle | SetSpec | SetDevice | ApplySetup


T = TypeVar("T")


class BitsNotAllowedError(ConfigError):
    """An edit asks for bit widths the target device does not allow."""


def _with_group(qids: Iterable[str], default: QuantizerSetup, current: QuantizerSetup) -> set[str]:
    out: set[str] = set()
    for qid in qids:
        setup = default if qid in default else current
        out.update(p.id for p in setup.group_members(qid))
    return out


def apply_edit(
    edit: Edit,
    current: QuantizerSetup,
    default: QuantizerSetup,
    memory: Mapping[str, QuantizationPoint],
) -> QuantizerSetup:
    """The setup after ``edit``.

    Untouched points are kept as the same objects, in the same order; points
    turned on take their place in the default setup's order (weights first,
    then activations in graph order), so equal edits give equal setups.

    Args:
        edit: What to change.
        current: The setup being edited.
        default: Every placeable point (where turned-on points come from).
        memory: The last spec each point had while on, by quantizer id.

    Raises:
        ConfigError: A quantizer id is in neither setup, or a spec field is not editable.
    """
    if isinstance(edit, SetDevice):
        return QuantizerSetup(current.points, edit.device)
    if isinstance(edit, ApplySetup):
        return edit.setup
    for qid in edit.qids:
        if qid not in current and qid not in default:
            default.get(qid)  # raises with a "did you mean"
    targets = _with_group(edit.qids, default, current)
    ids = [p.id for p in current.points]
    if isinstance(edit, SetSpec):
        unknown = sorted(set(edit.changes) - set(SPEC_FIELDS))
        if unknown:
            raise ConfigError(f"cannot edit {unknown}; the Explorer edits {list(SPEC_FIELDS)}")
        # respec, not a plain replace: it applies placement's rules (narrow range at 8 bits only,
        # scale shape follows per_channel), so the edited setup is one a config can reproduce.
        points = [
            p.respec(**edit.changes) if q in targets else p for p, q in zip(current.points, ids, strict=True)
        ]
    elif not edit.enabled:
        points = [p for p, q in zip(current.points, ids, strict=True) if q not in targets]
    else:
        missing = targets - set(ids)
        if not missing:
            return current
        rank = {p.id: i for i, p in enumerate(default)}
        added = [memory.get(q) or default.get(q) for q in missing]
        points = sorted([*current.points, *added], key=lambda p: rank.get(p.id, len(rank)))
    return QuantizerSetup(tuple(points), current.target_device)


def describe(edit: Edit) -> str:
    """A short label for the history, e.g. ``"bits=4: 3 quantizers"``."""
    if isinstance(edit, SetDevice):
        return f"target_device={edit.device}"
    if isinstance(edit, ApplySetup):
        return edit.label
    what = edit.qids[0] if len(edit.qids) == 1 else f"{len(edit.qids)} quantizers"
    if isinstance(edit, Toggle):
        return f"{'on' if edit.enabled else 'off'}: {what}"
    changes = ", ".join(f"{k}={v}" for k, v in edit.changes.items())
    return f"{changes}: {what}"


@dataclass
class History(Generic[T]):
    """Setups after each edit, with a cursor for undo and redo.

    Examples:
        >>> h = History("start", "initial")
        >>> h.push("a", "edit a"); h.push("b", "edit b")
        >>> h.undo(), h.undo(), h.can_undo, h.redo()
        ('a', 'start', False, 'a')
        >>> h.push("c", "edit c"); h.can_redo  # a new edit drops the redo branch
        False
    """

    initial: T
    initial_label: str = "initial"
    entries: list[tuple[T, str]] = field(default_factory=list)
    cursor: int = 0

    def __post_init__(self) -> None:
        self.entries = [(self.initial, self.initial_label)]

    @property
    def current(self) -> T:
        """The setup at the cursor."""
        return self.entries[self.cursor][0]

    @property
    def current_label(self) -> str:
        """The label of the edit that made the current setup."""
        return self.entries[self.cursor][1]

    @property
    def label(self) -> str:
        """``"3/5 bits=4: conv1"``: position and the edit that made the current setup."""
        return f"{self.cursor}/{len(self.entries) - 1} {self.current_label}"

    @property
    def can_undo(self) -> bool:
        """Whether there is an earlier setup."""
        return self.cursor > 0

    @property
    def can_redo(self) -> bool:
        """Whether an undone setup can be restored."""
        return self.cursor < len(self.entries) - 1

    def push(self, value: T, label: str) -> None:
        """Record a new setup after the cursor, dropping any undone ones."""
        del self.entries[self.cursor + 1 :]
        self.entries.append((value, label))
        self.cursor += 1

    def undo(self) -> T:
        """Move back one setup and return it."""
        if not self.can_undo:
            raise IndexError("nothing to undo")
        self.cursor -= 1
        return self.current

    def redo(self) -> T:
        """Move forward one setup and return it."""
        if not self.can_redo:
            raise IndexError("nothing to redo")
        self.cursor += 1
        return self.current
