"""The overlay control and the selected node's measures and histogram (thin ipywidgets).

The metric ablation evaluates the model once per quantizer group, which can take
minutes, so it runs in a background thread: the kernel stays responsive, a Cancel
button stops it after the group being measured, and the overlay shows what was
measured so far.  Every other measure runs in the caller (with tqdm bars).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from nncf_explore.widgets._overlay import (
    OVERLAYS,
    bits_by_node,
    histogram_bars,
    histogram_traces,
    node_values_html,
)
from nncf_explore.widgets._session import ExplorerSession, SensitivitySource
from nncf_explore.widgets._ui import FigureSync, button, css, hidden

SetOverlay = Callable[[Mapping[str, float] | None, str, bool], None]
ReportError = Callable[[BaseException], None]


class NoSensitivityError(ValueError):
    """A measure needs data the Explorer was not given."""


class OverlayPanel(widgets.VBox):  # type: ignore[misc]
    """Colour the graph by a measure; show the selected node's numbers and a quantizer's histogram.

    Args:
        session: The Explorer's session (``bits`` come from its setup).
        source: Returns the measures' source, or None when none can be built.
        set_overlay: ``set_overlay(values, title, higher_is_worse)`` on the graph.
        report: Shows an exception in the Explorer's error area.
    """

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(
        self,
        session: ExplorerSession,
        source: Callable[[], SensitivitySource | None],
        set_overlay: SetOverlay,
        report: ReportError,
    ) -> None:
        self.session, self._source, self._set_overlay, self._report = session, source, set_overlay, report
        options = [("Off", ""), *((o.label, m) for m, o in OVERLAYS.items())]
        self.menu = css(
            widgets.Dropdown(
                options=options, value="", description="overlay", layout=widgets.Layout(width="260px")
            ),
            "nxe-overlay",
        )
        self.menu.style.description_width = "52px"
        self.status = css(widgets.HTML(), "nxe-overlay-status")
        self.cancel = button("Cancel", "nxe-overlay-cancel", "Stop the metric ablation", "stop")
        self.values_html = css(widgets.HTML(), "nxe-overlay-values")
        self.quantizer = css(
            widgets.Dropdown(options=[], description="tensor", layout=widgets.Layout(width="340px")),
            "nxe-hist-quantizer",
        )
        self.quantizer.style.description_width = "52px"
        self.values: dict[str, dict[str, float]] = {}
        self.histogram: Any = None  # a FigureWidget, made on the first histogram
        # plotly's FigureWidget.layout is the figure's layout, not a widget Layout: hide its box.
        self.histogram_box = css(widgets.Box(), "nxe-histogram")
        self._histogram_sync: FigureSync | None = None
        self._node: str | None = None
        self._thread: threading.Thread | None = None
        self._run: Any = None
        self.menu.observe(self._guarded(self._menu_changed), names="value")
        self._quiet = False
        self.quantizer.observe(
            self._guarded(lambda _: None if self._quiet else self._show_histogram()), names="value"
        )
        self.cancel.on_click(lambda _: self.stop())
        hidden(self.cancel, True)
        hidden(self.quantizer, True)
        hidden(self.histogram_box, True)
        super().__init__(
            [
                widgets.HBox([self.menu, self.cancel]),
                self.status,
                self.values_html,
                self.quantizer,
                self.histogram_box,
            ]
        )
        css(self, "nxe-overlay-panel")

    def _guarded(self, action: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(change: Any) -> None:
            try:
                action(change)
            except Exception as exc:
                self.status.value = ""
                self._report(exc)

        return run

    # -- measuring ----------------------------------------------------------------------------
    @property
    def measure(self) -> str:
        """The measure shown, or ``""`` when the overlay is off."""
        return str(self.menu.value)

    def source(self) -> SensitivitySource:
        """The measures' source.

        Raises:
            NoSensitivityError: The Explorer has no data to measure on.
        """
        found = self._source()
        if found is None:
            raise NoSensitivityError(
                "measuring sensitivity needs data: Explorer(model, config, init_loader=loader, "
                "criterion=torch.nn.CrossEntropyLoss(), eval_fn=accuracy)"
            )
        return found

    def _menu_changed(self, _: Any) -> None:
        self.show_measure(self.measure)

    def show_measure(self, measure: str) -> None:
        """Compute ``measure`` (``""``: off) and colour the graph by it."""
        if self.menu.value != measure:
            self.menu.value = measure  # comes back here through the observer
            return
        self.stop()
        if not measure:
            self._set_overlay(None, "", False)
            self.status.value = ""
            return
        if measure == "bits":
            self._show(measure, bits_by_node(self.session.setup))
        elif measure == "metric_drop":
            self._start_ablation()
        else:
            self.status.value = f"<i>measuring {OVERLAYS[measure].title}…</i>"
            self._show(measure, self.source().node_values(measure))

    def _show(self, measure: str, values: dict[str, float], note: str = "") -> None:
        self.values[measure] = values
        overlay = OVERLAYS[measure]
        self._set_overlay(values, overlay.title, overlay.higher_is_worse)
        self.status.value = f"<span style='font-size:12px'>{overlay.title}: {len(values)} nodes{note}</span>"
        self.show_node(self._node)

    def _start_ablation(self) -> None:
        source = self.source()
        if not source.has_metric:
            raise NoSensitivityError(
                "the metric drop needs a metric: Explorer(model, config, init_loader=..., eval_fn=accuracy)"
            )
        run = source.ablation()
        self._run = run
        if run.done:
            self._show("metric_drop", source.node_values("metric_drop"))
            return
        hidden(self.cancel, False)
        self.status.value = f"<i>metric ablation: {len(run.results)}/{len(run.groups)} groups…</i>"

        def work() -> None:
            try:
                run.run(progress=True)
            except Exception as exc:  # the thread has no caller: report it in the Explorer
                self._report(exc)
                return
            finally:
                hidden(self.cancel, True)
            note = "" if run.done else f" (cancelled at {len(run.results)}/{len(run.groups)} groups)"
            if self.measure == "metric_drop":
                self._show("metric_drop", source.node_values("metric_drop"), note)

        self._thread = threading.Thread(target=work, name="nxe-ablation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel a running ablation (it stops after the group it is measuring) and wait for it."""
        if self._run is not None and self._thread is not None and self._thread.is_alive():
            self._run.cancel()
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background ablation to finish (tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None

    def setup_changed(self) -> None:
        """The setup changed: what depended on it is stale; re-measure the shown overlay."""
        traces = self.values.get("hessian_trace")
        self.values = {} if traces is None else {"hessian_trace": traces}
        if self.measure == "metric_drop":
            self.menu.value = ""  # a new ablation takes minutes: the user starts it again
            self.status.value = "<i>the setup changed: choose “metric drop” again to re-measure</i>"
        elif self.measure:
            self.show_measure(self.measure)
        else:
            self.show_node(self._node)

    # -- the selected node ----------------------------------------------------------------------
    def show_node(self, node: str | None) -> None:
        """Show ``node``'s measures and its quantizers for the histogram."""
        self._node = node
        self.values_html.value = "" if node is None else node_values_html(node, self.values)
        qids = [] if node is None else [p.id for p in self.session.setup if p.target_node == node]
        measured = bool(self.values) and self.measure not in ("", "bits")
        hidden(self.quantizer, not (qids and measured))
        if self.quantizer.options != tuple(qids):
            self._quiet = True
            try:  # weights first: the tensor a user most often wants to see
                self.quantizer.options = qids
                self.quantizer.value = qids[0] if qids else None
            finally:
                self._quiet = False
        if qids and measured:
            self._show_histogram()
        else:
            hidden(self.histogram_box, True)

    def _show_histogram(self) -> None:
        qid = self.quantizer.value
        if not qid:
            return
        source = self._source()
        error = None if source is None else source.tensor_error(qid)
        if error is None or not error.sample:
            hidden(self.histogram_box, True)
            return
        bars = histogram_bars(error.sample, error.quantized_sample, error.clip_range)
        traces = histogram_traces(bars, qid)
        if self.histogram is None:
            self._make_histogram(traces)
        else:
            with self.histogram.batch_update():
                for trace, data in zip(self.histogram.data, traces, strict=True):
                    trace.update(data)
            if self._histogram_sync is not None:
                self._histogram_sync.changed()
        hidden(self.histogram_box, False)

    def _make_histogram(self, traces: list[dict[str, Any]]) -> None:
        import plotly.graph_objects as go

        self.histogram = css(
            go.FigureWidget(
                data=traces,
                layout={
                    "height": 200,
                    "width": 340,
                    "barmode": "overlay",
                    "bargap": 0,
                    "margin": {"l": 40, "r": 10, "t": 10, "b": 30},
                    "legend": {"orientation": "h", "y": 1.15},
                    "xaxis": {"title": {"text": "value"}},
                    "yaxis": {"title": {"text": "count"}},
                },
            ),
            "nxe-histogram-figure",
        )
        self._histogram_sync = FigureSync(self.histogram)
        self.histogram_box.children = (self.histogram,)

    def prepare_display(self) -> None:
        """Make a view of the histogram about to be created draw its current state."""
        if self._histogram_sync is not None:
            self._histogram_sync.redisplayed()
