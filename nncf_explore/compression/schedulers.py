"""Compression schedulers with NNCF's contract.

Call ``epoch_step()`` at the start of each epoch and ``step()`` at the start of
each iteration; both counters start at -1.  Schedulers only count and call
back; what an epoch means to an algorithm lives in the callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


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
    """Sets the sparsity level each epoch (or step) from a schedule.

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
        update_per_optimizer_step: Interpolate within epochs (needs ``steps_per_epoch``).
        steps_per_epoch: Iterations per epoch for per-step updates.
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
            raise ValueError(
                f"magnitude_sparsity params.schedule {schedule!r} is not supported; "
                "use 'polynomial', 'exponential' or 'multistep'"
            )
        self.set_level = set_level
        self.schedule = schedule
        self.initial, self.target = initial, target
        self.target_epoch, self.freeze_epoch = max(target_epoch, 1), freeze_epoch
        self.power, self.concave = power, concave
        self.multistep_steps, self.multistep_levels = list(multistep_steps), list(multistep_levels)
        self.update_per_optimizer_step = update_per_optimizer_step
        self.steps_per_epoch = steps_per_epoch
        self.level = initial
        self.set_level(initial)

    @property
    def frozen(self) -> bool:
        """Whether masks are frozen (the freeze epoch has been reached)."""
        return self.current_epoch >= self.freeze_epoch

    def level_at(self, epoch: float) -> float:
        """The scheduled level at a (fractional) epoch."""
        if self.schedule == "multistep":
            passed = sum(epoch >= s for s in self.multistep_steps)
            return self.multistep_levels[min(passed, len(self.multistep_levels) - 1)]
        progress = min(max(epoch, 0.0) / self.target_epoch, 1.0)
        if self.schedule == "exponential":
            # geometric interpolation of the dense fraction, as NNCF's exponential schedule
            dense0, dense1 = 1.0 - self.initial, max(1.0 - self.target, 1e-12)
            return 1.0 - dense0 * math.pow(dense1 / dense0, progress)
        curve = 1.0 - math.pow(1.0 - progress, self.power) if self.concave else math.pow(progress, self.power)
        return self.initial + (self.target - self.initial) * curve

    def _update(self, epoch: float) -> None:
        if self.frozen:
            return
        self.level = self.level_at(epoch)
        self.set_level(self.level)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        super().epoch_step(next_epoch)
        self._update(float(self.current_epoch))

    def step(self, next_step: int | None = None) -> None:
        super().step(next_step)
        if self.update_per_optimizer_step and self.steps_per_epoch:
            within = (self.current_step % self.steps_per_epoch) / self.steps_per_epoch
            self._update(self.current_epoch + within)

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._update(float(max(self.current_epoch, 0)))


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
