"""The Explorer's measures on a real model: a :class:`SensitivitySource` over :class:`Sensitivity`.

The compression layer's :class:`~nncf_explore.compression.editing.EditSession`
does not know the analysis layer, so the widgets layer joins them here: the
session's compressed model, the Explorer's init loader, and the ``criterion``
and ``eval_fn`` the user gave the Explorer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from nncf_explore.analysis import MEASURES, AblationRun, Sensitivity, TensorError
from nncf_explore.analysis.sensitivity import LossKind, Measure
from nncf_explore.compression.precision.groups import CostKind
from nncf_explore.compression.precision.mixed_precision import MixedPrecisionFront
from nncf_explore.errors import ConfigError, did_you_mean


class SessionSensitivity:
    """:class:`~nncf_explore.widgets._session.SensitivitySource` for a session with a compressed model.

    Args:
        session: Has ``compressed_model`` (an :class:`EditSession`).
        loader: Data for the error pass and the Hessian traces (the init loader).
        criterion: The loss for HAWQ traces.
        eval_fn: ``eval_fn(model) -> float``, higher is better.
        progress: Show tqdm progress bars.
        trace_args: Hutchinson's parameters (``iter_number``, ``num_data_points``, ``tolerance``).
    """

    def __init__(
        self,
        session: Any,
        loader: Iterable[Any],
        *,
        criterion: Any = None,
        eval_fn: Any = None,
        progress: bool = True,
        **trace_args: Any,
    ) -> None:
        self.session, self.loader = session, loader
        self.criterion, self.eval_fn, self.progress = criterion, eval_fn, progress
        self.trace_args = trace_args
        self._sensitivity: Sensitivity | None = None

    @property
    def sensitivity(self) -> Sensitivity:
        """The :class:`Sensitivity` of the session's current compressed model."""
        model = self.session.compressed_model
        if self._sensitivity is None or self._sensitivity.model is not model:
            self._sensitivity = Sensitivity(
                model, self.loader, criterion=self.criterion, eval_fn=self.eval_fn, progress=self.progress
            )
        return self._sensitivity

    @property
    def has_metric(self) -> bool:
        """Whether ``eval_fn`` was given."""
        return self.eval_fn is not None

    def node_values(self, measure: str) -> dict[str, float]:
        """Node name -> ``measure``; ``metric_drop`` from what the ablation measured so far."""
        if measure not in MEASURES:
            raise ConfigError(f"measure {measure!r} is unknown{did_you_mean(measure, MEASURES)}")
        if measure == "metric_drop":
            deltas = self.ablation().deltas()
            out: dict[str, float] = {}
            for point in self.session.setup:
                if point.id in deltas:
                    node = point.target_node
                    out[node] = max(out.get(node, -float("inf")), deltas[point.id])
            return out
        if measure == "hessian_trace":
            return self.sensitivity.node_values("hessian_trace", **self.trace_args)
        return self.sensitivity.node_values(cast(Measure, measure))

    def tensor_error(self, qid: str) -> TensorError | None:
        """The error pass's record of quantizer ``qid``."""
        return self.sensitivity.errors().tensors.get(qid)

    def ablation(self) -> AblationRun:
        """The ``fp32`` ablation of the current setup (cached by :class:`Sensitivity`)."""
        return self.sensitivity.ablation("fp32")

    def front(self, candidates: Sequence[int], cost: str, loss: str) -> MixedPrecisionFront:
        """The exact front over ``candidates``."""
        kind: LossKind = "ablation" if loss == "ablation" else "hawq"
        args = self.trace_args if kind == "hawq" else {}
        return self.sensitivity.front(list(candidates), cost=cast(CostKind, cost), loss=kind, **args)
