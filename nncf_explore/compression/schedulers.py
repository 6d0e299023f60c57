"""Compression schedulers with NNCF's contract.

Call ``epoch_step()`` at the start of each epoch and ``step()`` at the start of
each iteration; both counters start at -1.  Schedulers only count and call
back; what an epoch means to an algorithm lives in the callback.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from nncf_explore.errors import ConfigError


class CompressionScheduler:
    """The no-op scheduler: counts steps and epochs."""

    def __init__(self) -> None:
        self.current_step = -1
        self.current_epoch = -1

    def step(self, next_step: int | None = None) -> None:
        """Advance to the next iteration (or to ``next_step``)."""
        self.current_step = self.current_step + 1 if next_step is None else next_step

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Advance to the next epoch (or to ``next_epoch``)."""
        self.current_epoch = self.current_epoch + 1 if next_epoch is None else next_epoch

    def get_state(self) -> dict[str, Any]:
        """``{"current_step": int, "current_epoch": int}``."""
        return {"current_step": self.current_step, "current_epoch": self.current_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore counters from :meth:`get_state` output."""
        self.current_step = int(state["current_step"])
        self.current_epoch = int(state["current_epoch"])


class StagedQuantizationScheduler(CompressionScheduler):
    """Keeps activation and weight quantizers off until their start epochs (NNCF's staged QAT).

    Args:
        set_enabled: Called with ``(activations_on, weights_on)`` when the stage changes.
        activations_start_epoch: First epoch with activation quantizers on.
        weights_start_epoch: First epoch with weight quantizers on.
        on_enable: Called after a group is switched on (NNCF re-runs range init then).
    """

    def __init__(
        self,
        set_enabled: Callable[[bool, bool], None],
        activations_start_epoch: int = 1,
        weights_start_epoch: int = 1,
        on_enable: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.set_enabled = set_enabled
        self.activations_start_epoch = activations_start_epoch
        self.weights_start_epoch = weights_start_epoch
        self.on_enable = on_enable
        self._stage = (False, False)
        self.set_enabled(*self._stage)

    @property
    def stage(self) -> tuple[bool, bool]:
        """(activations enabled, weights enabled)."""
        return self._stage

    def epoch_step(self, next_epoch: int | None = None) -> None:
        super().epoch_step(next_epoch)
        self._apply()

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._apply(reinit=False)

    def _apply(self, reinit: bool = True) -> None:
        stage = (
            self.current_epoch >= self.activations_start_epoch,
            self.current_epoch >= self.weights_start_epoch,
        )
        if stage == self._stage:
            return
        switched_on = any(new and not old for new, old in zip(stage, self._stage, strict=True))
        self._stage = stage
        self.set_enabled(*stage)
        if switched_on and reinit and self.on_enable is not None:
            self.on_enable()


class SparsityScheduler(CompressionScheduler):
    """Sets the sparsity level each epoch (or step) from a schedule, as NNCF's sparsity schedulers.

    Before the first ``epoch_step()`` the level is the initial one (``sparsity_init``; the first
    ``multistep`` level); at epoch ``e`` it is the schedule's value at ``e``.  ``multistep``
    takes its target from its last level.

    Args:
        set_level: Called with the new sparsity level.
        schedule: ``polynomial``, ``exponential`` or ``multistep``.
        initial: ``sparsity_init``.
        target: ``sparsity_target``.
        target_epoch: ``sparsity_target_epoch``.
        freeze_epoch: ``sparsity_freeze_epoch``: masks stop changing from this epoch.
        power: Polynomial power; ``concave`` flips the curve.
        multistep_steps: Epochs where ``multistep`` levels change.
        multistep_levels: Levels of ``multistep`` (one more than the steps).
        update_per_optimizer_step: Interpolate within epochs; ``steps_per_epoch``, if not given,
            is counted during the first epoch (levels change per epoch until then).
        steps_per_epoch: Iterations per epoch for per-step updates.

    Examples:
        >>> levels = []
        >>> s = SparsityScheduler(levels.append, "multistep", multistep_steps=[2],
        ...                       multistep_levels=[0.2, 0.6])
        >>> for _ in range(3):
        ...     s.epoch_step()
        >>> levels, s.target
        ([0.2, 0.2, 0.2, 0.6], 0.6)
    """

    def __init__(
        self,
        set_level: Callable[[float], None],
        schedule: str = "polynomial",
        initial: float = 0.0,
        target: float = 0.5,
        target_epoch: int = 90,
        freeze_epoch: int = 100,
        power: float = 0.9,
        concave: bool = True,
        multistep_steps: Sequence[int] = (90,),
        multistep_levels: Sequence[float] = (0.1, 0.5),
        update_per_optimizer_step: bool = False,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        if schedule not in ("polynomial", "exponential", "multistep"):
            raise ConfigError(
                f"magnitude_sparsity params.schedule {schedule!r} is not supported by nncf_explore "
                "('adaptive' needs rb_sparsity's loss); use 'polynomial', 'exponential' or 'multistep'"
            )
        self.set_level = set_level
        self.schedule = schedule
        self.multistep_steps, self.multistep_levels = sorted(multistep_steps), list(multistep_levels)
        if schedule == "multistep":
            if len(self.multistep_levels) != len(self.multistep_steps) + 1:
                raise ConfigError(
                    f"magnitude_sparsity params.multistep_sparsity_levels has {len(self.multistep_levels)} "
                    f"levels for {len(self.multistep_steps)} multistep_steps; give one level more than steps"
                )
            initial, target = self.multistep_levels[0], self.multistep_levels[-1]
        self.initial, self.target = initial, target
        self.target_epoch, self.freeze_epoch = target_epoch, freeze_epoch
        self.power, self.concave = power, concave
        self.update_per_optimizer_step = update_per_optimizer_step
        self.steps_per_epoch = steps_per_epoch
        self._steps_in_epoch = 0
        self.level = initial
        self.set_level(initial)

    @property
    def frozen(self) -> bool:
        """Whether masks are frozen (the freeze epoch has been reached)."""
        return self.current_epoch >= self.freeze_epoch

    def level_at(self, epoch: float) -> float:
        """The scheduled level at a (fractional) epoch; the initial level before epoch 0."""
        if epoch < 0:
            return self.initial
        if self.schedule == "multistep":
            return self.multistep_levels[bisect.bisect_right(self.multistep_steps, epoch)]
        progress = min(epoch / self.target_epoch, 1.0) if self.target_epoch > 0 else 1.0
        if self.schedule == "exponential":
            # the dense fraction decays geometrically from 1 - initial to 1 - target
            dense0, dense1 = 1.0 - self.initial, max(1.0 - self.target, 1e-12)
            return min(1.0 - dense0 * math.pow(dense1 / dense0, progress), self.target)
        curve = 1.0 - math.pow(1.0 - progress, self.power) if self.concave else math.pow(progress, self.power)
        return self.initial + (self.target - self.initial) * curve

    def _update(self, epoch: float) -> None:
        if self.frozen:
            return
        self.level = self.level_at(epoch)
        self.set_level(self.level)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        if self.update_per_optimizer_step and self.steps_per_epoch is None and self._steps_in_epoch:
            self.steps_per_epoch = self._steps_in_epoch
        super().epoch_step(next_epoch)
        self._steps_in_epoch = 0
        self._update(float(self.current_epoch))

    def step(self, next_step: int | None = None) -> None:
        super().step(next_step)
        self._steps_in_epoch += 1
        if self.update_per_optimizer_step and self.steps_per_epoch and self.schedule != "multistep":
            self._update(self.current_epoch + min(self._steps_in_epoch / self.steps_per_epoch, 1.0))

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._update(float(self.current_epoch))


class CompositeScheduler(CompressionScheduler):
    """Steps every child scheduler."""

    def __init__(self, children: Sequence[CompressionScheduler]) -> None:
        super().__init__()
        self.children = list(children)

    def step(self, next_step: int | None = None) -> None:
        super().step(next_step)
        for child in self.children:
            child.step(next_step)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        super().epoch_step(next_epoch)
        for child in self.children:
            child.epoch_step(next_epoch)

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        for child in self.children:
            child.load_state(state)
