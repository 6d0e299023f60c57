"""Filter pruning schedules (NNCF's ``baseline``, ``exponential`` and ``exponential_with_bias``).

The level stays at ``pruning_init`` for ``num_init_steps`` epochs, then moves to the target over
``pruning_steps`` epochs, after which the masks are frozen.  The target is a share of filters or,
with ``pruning_flops_target``, a share of FLOPs: the controller turns it into filters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nncf_explore.compression.schedulers import CompressionScheduler
from nncf_explore.errors import ConfigError

SCHEDULES = ("exponential", "exponential_with_bias", "baseline")


def _bias_fit(initial: float, target: float, steps: int, share: float = 0.125) -> tuple[float, float, float]:
    """``(a, k, b)`` of ``a * exp(-k t) + b`` through ``(0, initial)`` and ``(steps, target)``.

    The third condition is NNCF's (from the SPFP paper): at ``share * steps`` the level has
    reached three quarters of the target.  ``k`` is found by bisection.
    """

    def fitted(k: float) -> tuple[float, float]:
        x = math.exp(-k * steps)
        a = (target - initial) / (x - 1.0)
        return a, initial - a

    def residual(k: float) -> float:
        a, b = fitted(k)
        return a * math.exp(-k * steps * share) + b - 0.75 * target

    low, high = 1e-9, 50.0 / max(steps, 1)
    for _ in range(100):
        mid = (low + high) / 2
        if (residual(mid) > 0) == (residual(low) > 0):
            low = mid
        else:
            high = mid
    a, b = fitted(high)
    return a, high, b


def scheduled_level(schedule: str, initial: float, target: float, steps: int, epoch: int) -> float:
    """The pruning level ``epoch`` epochs after the initial steps (negative: still initial).

    Examples:
        >>> [round(scheduled_level("exponential", 0.1, 0.5, 4, e), 3) for e in (-1, 0, 2, 4, 9)]
        [0.1, 0.1, 0.329, 0.5, 0.5]
        >>> [scheduled_level("baseline", 0.1, 0.5, 4, e) for e in (-1, 0, 3)]
        [0.1, 0.5, 0.5]
    """
    if epoch < 0:
        return initial
    if schedule == "baseline":
        return target
    if epoch >= steps or initial >= target:
        return target
    if schedule == "exponential":
        # The kept share (1 - level) shrinks geometrically from 1 - initial to 1 - target.
        ratio = (1.0 - target) / (1.0 - initial)
        return min(target, 1.0 - (1.0 - initial) * float(ratio ** (epoch / steps)))
    a, k, b = _bias_fit(initial, target, steps)
    return min(target, a * math.exp(-k * epoch) + b)


class PruningScheduler(CompressionScheduler):
    """Steps the pruning level at each ``epoch_step()``; freezes the masks after ``pruning_steps``.

    Args:
        set_level: Called with the level (of filters, or of FLOPs with ``flops``) and whether the
            masks are frozen from now on.
        schedule: One of :data:`SCHEDULES`.
        initial: ``pruning_init``.
        target: ``pruning_target`` or ``pruning_flops_target``.
        steps: ``pruning_steps``.
        init_steps: ``num_init_steps``.
    """

    def __init__(
        self,
        set_level: Callable[[float, bool], None],
        *,
        schedule: str,
        initial: float,
        target: float,
        steps: int,
        init_steps: int,
    ) -> None:
        super().__init__()
        if schedule not in SCHEDULES:
            raise ConfigError(
                f"filter_pruning params.schedule {schedule!r} is not one of {', '.join(SCHEDULES)}"
            )
        self.set_level = set_level
        self.schedule = schedule
        self.initial = initial
        self.target = target
        self.steps = steps
        self.init_steps = init_steps

    @property
    def current_level(self) -> float:
        """The level of the current epoch."""
        epoch = max(self.current_epoch, 0) - self.init_steps
        return scheduled_level(self.schedule, self.initial, self.target, self.steps, epoch)

    @property
    def frozen(self) -> bool:
        """Whether the masks no longer change (the schedule has reached its end)."""
        return self.current_epoch - self.init_steps >= self.steps

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Advance the epoch and re-prune at its level (until the masks are frozen)."""
        was_frozen = self.current_epoch >= 0 and self.frozen
        super().epoch_step(next_epoch)
        if not was_frozen:
            self.set_level(self.current_level, self.frozen)

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the counters; the masks come back with the model's state dict."""
        super().load_state(state)
