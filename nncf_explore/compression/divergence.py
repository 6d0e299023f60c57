"""Noticing when a compressed forward leaves the traced path, and saying so once.

A branch the trace did not see runs partly unquantized, while quantizers
calibrated on the traced path may fire on other tensors; NNCF says nothing.
The runner (:mod:`nncf_explore.compression.runtime`) collects the untraced ops
that ran and the quantized ops that did not, and :class:`DivergenceReporter`
turns them into one :class:`UntracedPathWarning` per model and divergence.
"""

from __future__ import annotations

import os
import sys
import warnings

from torch import nn

from nncf_explore.compression.hook_plan import HookPlan


class UntracedPathWarning(UserWarning):
    """The compressed model ran ops the trace did not record, or skipped quantized ones."""


class DivergenceReporter:
    """Warns, once per compressed model and divergence, when a forward leaves the traced path.

    A divergence is identified by the first untraced op that ran and the first
    quantized op that did not, so a branch the trace missed produces one
    warning however many ops it holds and however often it runs.
    """

    def __init__(self) -> None:
        self.reported: set[tuple[str, str]] = set()

    def report(self, plan: HookPlan, executed: set[str], unknown: list[str]) -> None:
        """Warn if untraced ops ran (``unknown``) or quantized ops did not (missing from ``executed``)."""
        skipped = [] if len(executed) == len(plan.hooked) else [n for n in plan.hooked if n not in executed]
        if not unknown and not skipped:
            return
        key = (unknown[0] if unknown else "", skipped[0] if skipped else "")
        if key in self.reported:
            return
        self.reported.add(key)
        message = _divergence_message(plan, unknown, skipped)
        warnings.warn(message, UntracedPathWarning, stacklevel=_caller_stacklevel())


def _listed(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _divergence_message(plan: HookPlan, unknown: list[str], skipped: list[str]) -> str:
    parts = [
        "the compressed model took a path the trace did not see (data-dependent control flow, or code "
        "that runs only in training mode)."
    ]
    if unknown:
        also = f" (and {_listed(unknown[1:])})" if len(unknown) > 1 else ""
        parts.append(
            f"It ran op {unknown[0]!r}{also}, which the traced graph does not contain, so no activation "
            "quantizer runs there."
        )
    if skipped:
        qids = [plan.hooked[n] for n in skipped]
        parts.append(f"It skipped quantized op {skipped[0]!r}, so quantizer {_listed(qids)} did not run.")
    parts.append(
        "Quantizers calibrated on the traced path may now fire on different tensors. Fix: trace with inputs "
        "that take the path used in deployment (input_info, or dummy_forward_fn with wrap_inputs_fn), or "
        "make the branch static. Shown once per model and divergence."
    )
    return " ".join(parts)


def _caller_stacklevel() -> int:
    """``warnings.warn`` stacklevel of the first frame outside nncf_explore and torch.nn (the user's call)."""
    internal = (os.path.dirname(os.path.dirname(__file__)), os.path.dirname(nn.__file__))
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    return level
