"""Compression schedulers with NNCF's contract.

Call ``epoch_step()`` at the start of each epoch and ``step()`` at the start of
each iteration; both counters start at -1.  Schedulers only count and call
back; what an epoch means to an algorithm lives in the callback.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nncf_explore.errors import ConfigError

ADAPTIVE_STEP = 0.05
"""How much NNCF's ``adaptive`` sparsity schedule raises the level at a time."""
ADAPTIVE_EPS = 0.03
"""How close the achieved sparsity must come to the level before ``adaptive`` raises it."""
_FUNCTIONS = ("polynomial", "exponential")


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
        schedule: ``polynomial``, ``exponential``, ``multistep``, or ``adaptive`` (only with
            ``achieved_level``: the level grows by 0.05 each time the achieved sparsity has come within
            0.03 of it for ``patience`` epochs, NNCF's constants).
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
        patience: ``adaptive`` only: epochs at the current level before it grows.
        achieved_level: The sparsity the model has reached; needed by ``adaptive``.
        on_freeze: Called once when the freeze epoch is reached (RB sparsity stops learning masks).
        algorithm: The config section's algorithm, for error messages.

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
        patience: int = 1,
        achieved_level: Callable[[], float] | None = None,
        on_freeze: Callable[[], None] | None = None,
        algorithm: str = "magnitude_sparsity",
    ) -> None:
        super().__init__()
        _check_schedule(schedule, achieved_level is not None, algorithm)
        self.set_level = set_level
        self.schedule = schedule
        self.patience, self.achieved_level, self.on_freeze = patience, achieved_level, on_freeze
        self._bad_epochs = 0
        self.multistep_steps, self.multistep_levels = sorted(multistep_steps), list(multistep_levels)
        if schedule == "multistep":
            if len(self.multistep_levels) != len(self.multistep_steps) + 1:
                raise ConfigError(
                    f"{algorithm} params.multistep_sparsity_levels has {len(self.multistep_levels)} "
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

    @classmethod
    def from_section(
        cls,
        set_level: Callable[[float], None],
        get: Callable[[str], Any],
        params: Mapping[str, Any],
        **extra: Any,
    ) -> SparsityScheduler:
        """The scheduler a sparsity section describes; ``get(path)`` reads a field with its default.

        ``extra`` passes what only some algorithms have (``patience``, ``achieved_level``, ...).
        """
        return cls(
            set_level,
            schedule=str(get("params.schedule")),
            initial=float(get("sparsity_init")),
            target=float(get("params.sparsity_target")),
            target_epoch=int(get("params.sparsity_target_epoch")),
            freeze_epoch=int(get("params.sparsity_freeze_epoch")),
            power=float(get("params.power")),
            concave=bool(get("params.concave")),
            multistep_steps=list(get("params.multistep_steps")),
            multistep_levels=list(get("params.multistep_sparsity_levels")),
            update_per_optimizer_step=bool(get("params.update_per_optimizer_step")),
            steps_per_epoch=params.get("steps_per_epoch"),
            **extra,
        )

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
            if self.on_freeze is not None:
                self.on_freeze()
            return
        self.level = self.level_at(epoch) if self.schedule != "adaptive" else self._adaptive_level()
        self.set_level(self.level)

    def _adaptive_level(self) -> float:
        # NNCF's AdaptiveSparsityScheduler: raise the level once the model has kept up with it.
        assert self.achieved_level is not None  # checked at construction
        if self.current_epoch < 0:
            return self.level
        near = self.achieved_level() >= self.level - ADAPTIVE_EPS
        self._bad_epochs = self._bad_epochs + 1 if near else 0
        level = self.level
        if self._bad_epochs >= self.patience:
            self._bad_epochs = 0
            level += ADAPTIVE_STEP
        return min(level, self.target)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        if self.update_per_optimizer_step and self.steps_per_epoch is None and self._steps_in_epoch:
            self.steps_per_epoch = self._steps_in_epoch
        super().epoch_step(next_epoch)
        self._steps_in_epoch = 0
        self._update(float(self.current_epoch))

    def step(self, next_step: int | None = None) -> None:
        super().step(next_step)
        self._steps_in_epoch += 1
        if self.update_per_optimizer_step and self.steps_per_epoch and self.schedule in _FUNCTIONS:
            self._update(self.current_epoch + min(self._steps_in_epoch / self.steps_per_epoch, 1.0))

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.schedule == "adaptive":
            # its level depends on the training history, not only on the epoch
            state.update(current_sparsity_level=self.level, num_bad_epochs=self._bad_epochs)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if self.schedule == "adaptive":
            self.level = float(state.get("current_sparsity_level", self.level))
            self._bad_epochs = int(state.get("num_bad_epochs", 0))
            if self.frozen and self.on_freeze is not None:
                self.on_freeze()
            else:
                self.set_level(self.level)
            return
        self._update(float(self.current_epoch))


def _check_schedule(schedule: str, adaptive_ok: bool, algorithm: str) -> None:
    allowed = [*_FUNCTIONS, "multistep", *(["adaptive"] if adaptive_ok else [])]
    if schedule in allowed:
        return
    why = " ('adaptive' needs rb_sparsity's loss)" if schedule == "adaptive" else ""
    raise ConfigError(
        f"{algorithm} params.schedule {schedule!r} is not supported by nncf_explore{why}; use "
        + ", ".join(repr(a) for a in allowed)
    )


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
