"""What the Explorer needs from the compression side: the :class:`ExplorerSession` protocol.

The Explorer edits :class:`QuantizerSetup` values and never touches a model.
A session owns the model, the config and the controller; the Explorer hands it
a new setup and reads back the config JSON, sizes and a metric.  Keeping the
contract this small lets the widget be tested on a fake session over a
synthetic graph, with no torch model behind it.

Nothing here imports ipywidgets or plotly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.graph.ir import Graph, Node

if TYPE_CHECKING:
    from nncf_explore.analysis.quant_error import TensorError
    from nncf_explore.compression.precision.mixed_precision import MixedPrecisionFront

TRIAL_DEVICE = "TRIAL"
"""The ``target_device`` without a hardware config: any bit width is allowed (NNCF #785)."""


@runtime_checkable
class ExplorerSession(Protocol):
    """A compressed model the Explorer can re-generate from a quantizer setup.

    Setups are compared by value, and ``setup.target_device`` is part of the
    setup: the Explorer switches devices by applying a setup with another
    ``target_device`` (so undo restores the device too).

    Examples:
        A session is usually built by ``nncf_explore`` from a model and an NNCF
        config; any object with these members works::

            explorer = Explorer(session)
            explorer  # display it as a cell's last expression
    """

    @property
    def graph(self) -> Graph:
        """The traced graph; it does not change for the session's lifetime."""
        ...

    @property
    def default_setup(self) -> QuantizerSetup:
        """Every placeable quantization point, with the spec the config gives it by default.

        A node with no point here cannot be quantized (the panel says why, see
        :meth:`unquantized_reason`).  It may change after :meth:`apply` when
        ``target_device`` changes; the Explorer re-reads it then.
        """
        ...

    @property
    def setup(self) -> QuantizerSetup:
        """The setup of the current compressed model: a subset of ``default_setup``'s points."""
        ...

    def apply(self, setup: QuantizerSetup) -> None:
        """Re-generate the compressed model and controller for ``setup``.

        Raises:
            ConfigError: ``setup`` cannot be realised; the message is shown to
                the user as is, so it should name the fix.  On any exception the
                session must keep its previous setup, model and config.
        """
        ...

    def config_json(self) -> dict[str, Any]:
        """An NNCF config (pure JSON data) that places exactly :attr:`setup` again.

        Minimal: fields equal to their defaults are left out, so a diff between
        two edits shows only what the edit changed.
        """
        ...

    def allowed_bits(self, point: QuantizationPoint) -> tuple[tuple[int, ...], str | None]:
        """Bit widths the current ``target_device`` allows for ``point``, and why it restricts them.

        Returns:
            ``(bits, reason)``: ``reason`` is None when any width 2-8 is allowed,
            otherwise a sentence for the user, e.g. ``"target_device 'CPU' uses
            NNCF's CPU hardware config, which allows only 8-bit weights"``.  The
            Explorer then offers switching ``target_device`` to ``TRIAL``.
        """
        ...

    def weight_memory_bytes(self, setup: QuantizerSetup) -> int:
        """Bytes the model's weights take under ``setup``; the empty setup gives the FP32 size."""
        ...

    def eval_metric(self) -> float | None:
        """Evaluate the current compressed model, or None when the session has no metric.

        May be slow; the Explorer calls it only when the user asks.
        """
        ...

    def unquantized_reason(self, node: Node) -> str | None:
        """Why ``node`` has no quantization point (e.g. it matched ``ignored_scopes``).

        Return None to let the Explorer explain it from the node's category.
        """
        ...


class AllowedBits(NamedTuple):
    """The allowed bit widths of one point, and the reason when they are restricted."""

    bits: tuple[int, ...]
    reason: str | None = None


def allowed_bits(session: ExplorerSession, point: QuantizationPoint) -> AllowedBits:
    """:meth:`ExplorerSession.allowed_bits` as a named tuple."""
    bits, reason = session.allowed_bits(point)
    return AllowedBits(tuple(bits), reason)


class AblationProgress(Protocol):
    """A resumable metric ablation (:class:`~nncf_explore.analysis.AblationRun` is one)."""

    @property
    def groups(self) -> Sequence[tuple[str, ...]]:
        """Every quantizer group the run measures."""
        ...

    @property
    def results(self) -> Mapping[str, Any]:
        """Group name -> its result, for the groups measured so far."""
        ...

    @property
    def done(self) -> bool:
        """Whether every group has been measured."""
        ...

    def run(self, *, max_seconds: float | None = None, progress: bool = True) -> bool:
        """Measure pending groups until done, cancelled or out of time; return :attr:`done`."""
        ...

    def cancel(self) -> None:
        """Stop :meth:`run` after its current group (called from another thread)."""
        ...


@runtime_checkable
class SensitivitySource(Protocol):
    """What the overlay and mixed-precision panels measure: the optional hook of a session.

    A session offers it with a ``sensitivity()`` method returning one (or None).
    For an :class:`~nncf_explore.compression.editing.EditSession` the Explorer
    builds one itself from the compressed model and its init loader
    (:class:`~nncf_explore.widgets._analysis.SessionSensitivity`), because the
    compression layer must not depend on the analysis layer.
    """

    @property
    def has_metric(self) -> bool:
        """Whether a metric (``eval_fn``) exists, so the ablation and measured losses can run."""
        ...

    def node_values(self, measure: str) -> dict[str, float]:
        """Node name -> value of ``measure`` (one of :data:`~nncf_explore.analysis.MEASURES`).

        ``metric_drop`` gives what :meth:`ablation` has measured so far, and never runs it.
        """
        ...

    def tensor_error(self, qid: str) -> TensorError | None:
        """The FP32-vs-quantized sample and clip range of one quantizer, or None if unmeasured."""
        ...

    def ablation(self) -> AblationProgress:
        """The ``fp32`` metric ablation of the current setup (resumable, cancellable)."""
        ...

    def front(self, candidates: Sequence[int], cost: str, loss: str) -> MixedPrecisionFront:
        """The exact mixed-precision front of ``cost`` against predicted ``loss``."""
        ...


def sensitivity_of(session: ExplorerSession) -> SensitivitySource | None:
    """The session's :class:`SensitivitySource`, if it offers one (``session.sensitivity()``)."""
    hook = getattr(session, "sensitivity", None)
    return None if hook is None else hook()
