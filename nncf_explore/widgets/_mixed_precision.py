"""The mixed-precision panel: candidate bits, cost, loss, a budget, the Pareto front, bulk keeps.

A click on a front point (or "Apply" under the budget slider) hands the point's
whole setup to the Explorer as one :class:`~._edits.ApplySetup` edit, so one undo
restores the setup before it, and the config panel and the export hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from nncf_explore.compression.precision.mixed_precision import MixedPrecisionFront
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.widgets._edits import ApplySetup
from nncf_explore.widgets._overlay import COSTS, cost_units, format_cost, front_traces, setup_mark
from nncf_explore.widgets._session import SensitivitySource
from nncf_explore.widgets._ui import FigureSync, button, css, hidden

CANDIDATE_BITS = (2, 3, 4, 5, 6, 7, 8)
LOSSES = {"hawq": "HAWQ predicted", "ablation": "measured (ablation)"}
DEFAULT_CANDIDATES = (4, 8)


class MixedPrecisionPanel(widgets.VBox):  # type: ignore[misc]
    """Search the front under the panel's choices and apply a point.

    Args:
        source: Returns the measures' source (raises when there is none).
        apply: Applies an edit through the Explorer (``Explorer.edit``).
        current: The session's current setup.
        keep: ``keep(k, how)``: the bulk keep of the k most sensitive groups, ``how`` ``"8"`` or ``"fp32"``.
    """

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(
        self,
        source: Callable[[], SensitivitySource],
        apply: Callable[[ApplySetup], None],
        current: Callable[[], QuantizerSetup],
        keep: Callable[[int, str], None],
    ) -> None:
        self._source, self._apply, self._current = source, apply, current
        self.bits = {
            b: css(
                widgets.Checkbox(
                    value=b in DEFAULT_CANDIDATES,
                    description=f"{b}",
                    indent=False,
                    layout=widgets.Layout(width="38px"),
                ),
                "nxe-mp-bits",
                f"nxe-mp-bits-{b}",
            )
            for b in CANDIDATE_BITS
        }
        self.cost = css(
            widgets.Dropdown(
                options=[(v[0], k) for k, v in COSTS.items()],
                value="weight_bytes",
                description="cost",
                layout=widgets.Layout(width="200px"),
            ),
            "nxe-mp-cost",
        )
        self.loss = css(
            widgets.Dropdown(
                options=[(LOSSES["hawq"], "hawq")],
                value="hawq",
                description="loss",
                layout=widgets.Layout(width="220px"),
            ),
            "nxe-mp-loss",
        )
        for w in (self.cost, self.loss):
            w.style.description_width = "36px"
        self.compute = button("Search front", "nxe-mp-compute", "Compute the exact Pareto front", "search")
        self.budget = css(
            widgets.FloatSlider(
                description="budget",
                disabled=True,
                readout=False,
                continuous_update=False,
                layout=widgets.Layout(width="260px"),
            ),
            "nxe-mp-budget",
        )
        self.budget.style.description_width = "48px"
        self.budget_text = css(widgets.HTML(), "nxe-mp-budget-text")
        self.apply_budget = button("Apply", "nxe-mp-apply", "Apply the best setup within the budget", "check")
        self.apply_budget.disabled = True
        self.k = css(
            widgets.BoundedIntText(
                value=3, min=1, max=10_000, description="keep k", layout=widgets.Layout(width="130px")
            ),
            "nxe-mp-k",
        )
        self.k.style.description_width = "48px"
        self.keep8 = button(
            "most sensitive at 8 bits",
            "nxe-mp-keep8",
            "Set the k most sensitive nodes (current overlay) to 8 bits",
        )
        self.keep_fp32 = button(
            "most sensitive in FP32",
            "nxe-mp-keep-fp32",
            "Turn off the quantizers of the k most sensitive nodes (ignored_scopes)",
        )
        self.front: MixedPrecisionFront | None = None
        self._quiet = False
        self.chart: Any = None
        self._chart_sync: FigureSync | None = None
        self.compute.on_click(lambda _: self._guard(self.search))
        self.apply_budget.on_click(lambda _: self._guard(self.apply_within_budget))
        self.budget.observe(lambda _: self._guard(self._budget_moved), names="value")
        self.keep8.on_click(lambda _: keep(self.k.value, "8"))
        self.keep_fp32.on_click(lambda _: keep(self.k.value, "fp32"))
        self.on_error: Callable[[BaseException], None] = lambda exc: None
        self.on_start: Callable[[], None] = lambda: None
        super().__init__(
            [
                widgets.HTML("<b>Mixed precision</b>"),
                widgets.HBox([widgets.HTML("bits&nbsp;"), *self.bits.values()]),
                widgets.HBox([self.cost, self.loss, self.compute]),
                widgets.HBox([self.budget, self.budget_text, self.apply_budget]),
                widgets.HBox([self.k, self.keep8, self.keep_fp32]),
            ]
        )
        css(self, "nxe-mixed-precision")

    def _guard(self, action: Callable[[], None]) -> None:
        self.on_start()
        try:
            action()
        except Exception as exc:
            self.on_error(exc)

    # -- choices -------------------------------------------------------------------------------
    def set_allowed(self, allowed: Sequence[int], has_metric: bool) -> None:
        """Offer only the bit widths the target allows, and the measured loss only with a metric."""
        for b, box in self.bits.items():
            hidden(box, b not in allowed)
            if b not in allowed:
                box.value = False
        options = [(v, k) for k, v in LOSSES.items() if k == "hawq" or has_metric]
        if [o[1] for o in options] != [o[1] for o in self.loss.options]:
            self.loss.options = options
            self.loss.value = "hawq"

    @property
    def candidates(self) -> list[int]:
        """The checked bit widths."""
        return [b for b, box in self.bits.items() if box.value]

    # -- the front -----------------------------------------------------------------------------
    def search(self) -> None:
        """Compute the front for the current choices and draw it.

        Raises:
            ValueError: Fewer than two candidate bit widths are checked.
        """
        candidates = self.candidates
        if len(candidates) < 2:
            raise ValueError(
                f"check at least two candidate bit widths (checked: {candidates}); "
                "the search chooses among them"
            )
        self.front = self._source().front(candidates, self.cost.value, self.loss.value)
        points = self.front.points
        low, high = points[0].cost, points[-1].cost
        self._quiet = True
        try:  # the bounds in an order the slider accepts whatever they were before
            self.budget.min = 0.0
            self.budget.max = max(high, low + 1e-6)
            self.budget.min = low
            self.budget.step = max((high - low) / 200, 1e-9)
            self.budget.value = high
        finally:
            self._quiet = False
        self.budget.disabled = False
        self.apply_budget.disabled = False
        self.redraw()

    def redraw(self) -> None:
        """Redraw the chart: the front, the marks, and the current setup."""
        if self.front is None:
            return
        traces = front_traces(self.front, setup_mark(self.front, self._current()))
        best = self.front.best_under(self.budget.value)
        traces[-1].update(x=[cost_units(self.front.cost, best.cost)], y=[best.loss])
        self.budget_text.value = (
            f"<span style='font-size:12px'>≤ {format_cost(self.front.cost, self.budget.value)}: "
            f"loss {best.loss:.3g}</span>"
        )
        if self.chart is None:
            self._make_chart(traces)
            return
        with self.chart.batch_update():
            for trace, data in zip(self.chart.data, traces, strict=True):
                trace.update(data)
            self.chart.layout.xaxis.title.text = COSTS[self.front.cost][1]
            self.chart.layout.yaxis.title.text = self._loss_title()
        if self._chart_sync is not None:
            self._chart_sync.changed()

    def _loss_title(self) -> str:
        return "predicted loss (HAWQ)" if self.loss.value == "hawq" else "measured metric drop"

    def _make_chart(self, traces: list[dict[str, Any]]) -> None:
        import plotly.graph_objects as go

        assert self.front is not None
        self.chart = css(
            go.FigureWidget(
                data=traces,
                layout={
                    "height": 320,
                    "width": 440,
                    "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
                    "legend": {"orientation": "h", "y": -0.25, "yanchor": "top"},
                    "xaxis": {"title": {"text": COSTS[self.front.cost][1]}},
                    "yaxis": {"title": {"text": self._loss_title()}},
                },
            ),
            "nxe-mp-chart-figure",
        )
        self.chart.data[0].on_click(lambda _t, points, _s: self._guard(lambda: self._clicked(points)))
        self._chart_sync = FigureSync(self.chart)
        # In a box of its own, like the graph: the box carries the stable class (``.nxe-mp-chart
        # .js-plotly-plot`` is the plot), whatever element plotly's widget puts its classes on.
        self.children = (*self.children, css(widgets.Box([self.chart]), "nxe-mp-chart"))

    def _clicked(self, points: Any) -> None:
        if points.point_inds:
            self.apply_point(points.point_inds[0])

    def apply_point(self, index: int) -> None:
        """Apply front point ``index`` (cheapest first) as one undoable edit."""
        if self.front is None:
            raise ValueError("search the front first (the “Search front” button)")
        point = self.front.points[index]
        label = f"front: {format_cost(self.front.cost, point.cost)}, loss {point.loss:.3g}"
        self._apply(ApplySetup(self.front.setup(point), label))

    def apply_within_budget(self) -> None:
        """Apply the front point of least predicted loss within the slider's budget."""
        if self.front is None:
            raise ValueError("search the front first (the “Search front” button)")
        best = self.front.best_under(self.budget.value)
        self.apply_point(self.front.points.index(best))

    def _budget_moved(self) -> None:
        if not self._quiet:
            self.redraw()

    def prepare_display(self) -> None:
        """Make a view of the chart about to be created draw its current state."""
        if self._chart_sync is not None:
            self._chart_sync.redisplayed()
