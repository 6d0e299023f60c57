"""Metric ablation per quantizer group, the way AIMET's per-layer analysis works.

For every quantizer group (a unified-scale group, or one quantizer) the user's
``eval_fn(model) -> float`` is run on a variant of the compressed model:

* ``"fp32"``: that group alone is disabled, everything else as in the current
  setup.  The metric's rise says what quantizing the group costs;
* ``"bits"``: that group alone is set to a lower bit width (its range re-derived
  as range init would), everything else as it is.  The metric's fall is the
  loss the budget search weighs against the bytes saved.

The user's compressed model is never changed: the variants are copies.  The
loop is resumable: :meth:`AblationRun.run` measures the groups not yet done and
stops early on :meth:`AblationRun.cancel` (from a widget button, say, while it
runs in a thread) or after ``max_seconds``; calling it again goes on where it
stopped.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.model import apply_setup
from nncf_explore.compression.precision.mixed_precision import setup_with_bits
from nncf_explore.compression.quantization.range_settings import point_groups

EvalFn = Callable[[nn.Module], float]
Mode = Literal["fp32", "bits"]


@dataclass(frozen=True)
class AblationResult:
    """The metric with one group changed.

    Attributes:
        group: Ids of the group's quantizers (its first id names it).
        metric: ``eval_fn`` on the variant.
        delta: ``metric − baseline``: positive when the change helps.
    """

    group: tuple[str, ...]
    metric: float
    delta: float


@dataclass
class AblationRun:
    """A resumable ablation over every quantizer group of a compressed model.

    Examples:
        >>> import torch
        >>> from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 4]},
        ...                             "compression": {"algorithm": "quantization"}})
        >>> x = torch.randn(32, 4)
        >>> _, qnet = create_compressed_model(net, register_default_init_args(cfg, [(x, 0)]))
        >>> def error(m):  # higher is better: minus the MSE against FP32
        ...     with torch.no_grad():
        ...         return -float((m(x) - net(x)).square().mean())
        >>> run = AblationRun(qnet, error, mode="fp32")
        >>> run.run(progress=False)
        True
        >>> sorted(run.results) == sorted(g[0] for g in run.groups)
        True
        >>> run.baseline < 0  # the fully quantized model is off FP32
        True
    """

    model: nn.Module
    eval_fn: EvalFn
    mode: Mode = "fp32"
    bits: int = 4
    results: dict[str, AblationResult] = field(default_factory=dict)
    baseline: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _variant: nn.Module | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("fp32", "bits"):
            raise ValueError(f"mode {self.mode!r} is unknown; use 'fp32' or 'bits'")
        setup = compression_interface(self.model).setup
        groups = [tuple(p.id for p in g) for g in point_groups(setup)]
        if self.mode == "bits":
            groups = [g for g in groups if setup.get(g[0]).spec.bits > self.bits]
        self.groups: list[tuple[str, ...]] = groups

    @property
    def pending(self) -> list[tuple[str, ...]]:
        """Groups not measured yet, in setup order."""
        return [g for g in self.groups if g[0] not in self.results]

    @property
    def done(self) -> bool:
        """Whether every group has a result."""
        return not self.pending

    def cancel(self) -> None:
        """Stop :meth:`run` after the group it is measuring (safe from another thread)."""
        self._cancel.set()

    def run(self, *, max_seconds: float | None = None, progress: bool = True) -> bool:
        """Measure pending groups until all are done, cancelled, or ``max_seconds`` passed.

        Returns:
            Whether every group is done.
        """
        from tqdm.auto import tqdm

        self._cancel.clear()
        start = time.monotonic()
        if self._variant is None:
            self._variant = copy.deepcopy(self.model)
        if self.baseline is None:
            self.baseline = float(self.eval_fn(self._variant))
        todo = self.pending
        with tqdm(
            total=len(self.groups),
            initial=len(self.groups) - len(todo),
            desc=f"Ablation ({self.mode})",
            unit="group",
            disable=None if progress else True,
        ) as bar:
            for group in todo:
                if self._cancel.is_set() or (
                    max_seconds is not None and time.monotonic() - start > max_seconds
                ):
                    break
                metric = self._measure(group)
                self.results[group[0]] = AblationResult(group, metric, metric - self.baseline)
                bar.update(1)
        return self.done

    def _measure(self, group: tuple[str, ...]) -> float:
        variant = self._variant
        assert variant is not None
        interface = compression_interface(variant)
        if self.mode == "fp32":
            quantizer = interface.quantizer(group[0])
            was = quantizer.is_enabled
            quantizer.disable()
            try:
                return float(self.eval_fn(variant))
            finally:
                if was:
                    quantizer.enable()
        trial = copy.deepcopy(variant)
        apply_setup(trial, setup_with_bits(interface.setup, dict.fromkeys(group, self.bits)))
        return float(self.eval_fn(trial))

    def deltas(self) -> Mapping[str, float]:
        """Quantizer id -> its group's metric change (every member of a group gets the group's)."""
        return {qid: r.delta for r in self.results.values() for qid in r.group}
