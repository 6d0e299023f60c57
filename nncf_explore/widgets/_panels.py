"""The Explorer's lower panels: errors, the metric history chart and config export (thin ipywidgets)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nncf_explore.config.jsonio import write_text_atomic
from nncf_explore.widgets._export import download_link_html, export_path
from nncf_explore.widgets._html import error_html, human_bytes
from nncf_explore.widgets._metric_chart import MetricPoint, metric_traces, record
from nncf_explore.widgets._ui import FigureSync, button, css, hidden

Action = Callable[[], None]


class ErrorArea(widgets.VBox):  # type: ignore[misc]
    """Where every failed action is reported (type, message, a fix if known), and what an action changed."""

    def __init__(self) -> None:
        self.message = css(widgets.HTML(), "nxe-error")
        self.status = css(widgets.HTML(), "nxe-status")
        self.fix = button("", "nxe-error-fix")
        self._fix_action: Action | None = None
        self.fix.on_click(lambda _: self._fix_action() if self._fix_action else None)
        self.last: BaseException | None = None
        super().__init__([self.message, self.fix, self.status])
        hidden(self.fix, True)

    def show(self, exc: BaseException, fix: tuple[str, Action] | None = None) -> None:
        """Report ``exc``; ``fix`` is a button label and what the button does."""
        self.last = exc
        self.message.value = error_html(exc)
        self._fix_action = fix[1] if fix else None
        self.fix.description = fix[0] if fix else ""
        hidden(self.fix, fix is None)

    def note(self, text: str) -> None:
        """Say what an action changed (not an error: neutral colour, in ``nxe-status``)."""
        self.status.value = f"<div style='font-size:12px;color:#555'>{html.escape(text)}</div>"

    def clear(self) -> None:
        """Remove the report and the last note."""
        self.last = None
        self.message.value = ""
        self.status.value = ""
        self._fix_action = None
        hidden(self.fix, True)


class MetricPanel(widgets.VBox):  # type: ignore[misc]
    """Evaluate the compressed model on demand and chart metric against weight size.

    Args:
        evaluate: Evaluates the current setup (the Explorer calls :meth:`add` with the result).
        fp32_bytes: FP32 weight size, drawn as a reference line.
        int8_bytes: Weight size of uniform INT8, drawn as a reference line.
    """

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(self, evaluate: Action, fp32_bytes: int = 0, int8_bytes: int = 0) -> None:
        self.button = button(
            "Evaluate metric", "nxe-metric-button", "Run the session's metric on the current model"
        )
        self.auto = css(
            widgets.Checkbox(
                description="after every edit", indent=False, layout=widgets.Layout(width="auto")
            ),
            "nxe-metric-auto",
        )
        self.value = css(widgets.HTML(), "nxe-metric")
        self.points: list[MetricPoint] = []
        self.fp32_bytes, self.int8_bytes = fp32_bytes, int8_bytes
        self.chart: Any = None  # a FigureWidget, made on the first value
        self._chart_sync: FigureSync | None = None
        self.button.on_click(lambda _: evaluate())
        super().__init__([widgets.HBox([self.button, self.auto]), self.value])

    def add(self, point: MetricPoint | None) -> None:
        """Record an evaluation (None: the session has no metric) and redraw the chart.

        A setup evaluated again (same ``key``, e.g. after undo and redo) replaces its point.
        """
        if point is None:
            self.value.value = "<i>This session has no metric to evaluate.</i>"
            return
        self.points = record(self.points, point)
        self.value.value = (
            f"metric <b>{point.value:.4g}</b> at {human_bytes(point.memory_bytes)} "
            f"({html.escape(point.label)})"
        )
        traces, axes = metric_traces(self.points, point.key, self.fp32_bytes, self.int8_bytes)
        if self.chart is None:
            import plotly.graph_objects as go

            layout = {
                "height": 240,
                "width": 380,
                "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                "legend": {"orientation": "h", "y": -0.3},
                **axes,
            }
            self.chart = css(go.FigureWidget(data=traces, layout=layout), "nxe-metric-chart")
            self._chart_sync = FigureSync(self.chart)
            self.children = (*self.children, self.chart)
            return
        with self.chart.batch_update():
            for trace, data in zip(self.chart.data, traces, strict=True):
                trace.update(data)
            self.chart.layout.update(axes)
        if self._chart_sync is not None:
            self._chart_sync.changed()

    def prepare_display(self) -> None:
        """Make a view of the chart about to be created draw its current state."""
        if self._chart_sync is not None:
            self._chart_sync.redisplayed()


class ExportPanel(widgets.VBox):  # type: ignore[misc]
    """Write the config to a typed path (atomically) and offer it as a browser download."""

    def __init__(self, export: Callable[[str], None], snapshot: Callable[[str], None] | None = None) -> None:
        # The path shrinks, the button never does: in a narrow column a fixed-width path
        # squeezed the button to "Export con…".
        self.path = css(
            widgets.Text(
                value="nncf_config.json",
                description="path",
                layout=widgets.Layout(width="auto", flex="1 1 auto", min_width="120px"),
            ),
            "nxe-export-path",
        )
        self.path.style.description_width = "36px"
        self.button = button(
            "Export config", "nxe-export-button", "Write the config JSON to the path", "download"
        )
        self.button.layout = widgets.Layout(width="auto", flex="0 0 auto", min_width="fit-content")
        self.link = css(widgets.HTML(), "nxe-export-link")
        self.button.on_click(lambda _: export(self.path.value))
        self.snapshot_path = css(
            widgets.Text(
                value="graph.html",
                description="html",
                layout=widgets.Layout(width="auto", flex="1 1 auto", min_width="120px"),
            ),
            "nxe-snapshot-path",
        )
        self.snapshot_path.style.description_width = "36px"
        self.snapshot = button(
            "Snapshot HTML", "nxe-snapshot-button", "Write the graph as a standalone HTML file", "camera"
        )
        self.snapshot.layout = widgets.Layout(width="auto", flex="0 0 auto", min_width="fit-content")
        self.snapshot.on_click(lambda _: snapshot(self.snapshot_path.value) if snapshot else None)
        row = widgets.Layout(width="100%")
        super().__init__(
            [
                widgets.HBox([self.path, self.button], layout=row),
                widgets.HBox([self.snapshot_path, self.snapshot], layout=row),
                self.link,
            ]
        )

    def wrote(self, path: str, what: str) -> None:
        """Say that ``what`` was written to ``path``."""
        self.link.value = (
            f"<span style='font-size:11px'>Wrote {what} <code>{html.escape(path)}</code>.</span>"
        )

    def write(self, path: str, text: str) -> str:
        """Write ``text`` to ``path`` and show where, with a download link; return the absolute path."""
        target = export_path(path)
        write_text_atomic(target, text)
        self.link.value = (
            f"<span style='font-size:11px'>Wrote <code>{html.escape(str(target))}</code> "
            f"({human_bytes(len(text.encode()))}). "
            f"{download_link_html(target.name, text)}</span>"
        )
        return str(target)
