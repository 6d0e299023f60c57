"""The Explorer's lower panels: errors, the metric history chart and config export (thin ipywidgets)."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from nncf_explore.config.jsonio import write_text_atomic
from nncf_explore.widgets._export import download_link_html, export_path
from nncf_explore.widgets._html import error_html, human_bytes
from nncf_explore.widgets._ui import FigureSync, button, css, hidden

Action = Callable[[], None]


class ErrorArea(widgets.VBox):  # type: ignore[misc]
    """Where every failed action is reported: the exception's type and message, and a fix if known."""

    def __init__(self) -> None:
        self.message = css(widgets.HTML(), "nxe-error")
        self.fix = button("", "nxe-error-fix")
        self._fix_action: Action | None = None
        self.fix.on_click(lambda _: self._fix_action() if self._fix_action else None)
        self.last: BaseException | None = None
        super().__init__([self.message, self.fix])
        hidden(self.fix, True)

    def show(self, exc: BaseException, fix: tuple[str, Action] | None = None) -> None:
        """Report ``exc``; ``fix`` is a button label and what the button does."""
        self.last = exc
        self.message.value = error_html(exc)
        self._fix_action = fix[1] if fix else None
        self.fix.description = fix[0] if fix else ""
        hidden(self.fix, fix is None)

    def clear(self) -> None:
        """Remove the report."""
        self.last = None
        self.message.value = ""
        self._fix_action = None
        hidden(self.fix, True)


@dataclass(frozen=True)
class MetricPoint:
    """One evaluation: weight memory, metric value and the edit it followed."""

    memory_bytes: int
    value: float
    label: str


class MetricPanel(widgets.VBox):  # type: ignore[misc]
    """Evaluate the compressed model on demand and chart metric against weight size."""

    children: tuple[widgets.Widget, ...]  # a traitlet of VBox; declared for mypy only

    def __init__(self, evaluate: Action) -> None:
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
        self.chart: Any = None  # a FigureWidget, made on the first value
        self._chart_sync: FigureSync | None = None
        self.button.on_click(lambda _: evaluate())
        super().__init__([widgets.HBox([self.button, self.auto]), self.value])

    def add(self, point: MetricPoint | None) -> None:
        """Record an evaluation (None: the session has no metric) and redraw the chart."""
        if point is None:
            self.value.value = "<i>This session has no metric to evaluate.</i>"
            return
        self.points.append(point)
        self.value.value = (
            f"metric <b>{point.value:.4g}</b> at {human_bytes(point.memory_bytes)} "
            f"({html.escape(point.label)})"
        )
        xs = [p.memory_bytes / 1e6 for p in self.points]
        ys = [p.value for p in self.points]
        labels = [html.escape(p.label) for p in self.points]  # plotly renders tags in text
        if self.chart is None:
            import plotly.graph_objects as go

            self.chart = css(
                go.FigureWidget(
                    data=[{"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "text": labels}],
                    layout={
                        "height": 220,
                        "width": 360,
                        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                        "xaxis": {"title": {"text": "weights (MB)"}},
                        "yaxis": {"title": {"text": "metric"}},
                    },
                ),
                "nxe-metric-chart",
            )
            self._chart_sync = FigureSync(self.chart)
            self.children = (*self.children, self.chart)
        else:
            with self.chart.batch_update():
                self.chart.data[0].update(x=xs, y=ys, text=labels)
            if self._chart_sync is not None:
                self._chart_sync.changed()

    def prepare_display(self) -> None:
        """Make a view of the chart about to be created draw its current state."""
        if self._chart_sync is not None:
            self._chart_sync.redisplayed()


class ExportPanel(widgets.VBox):  # type: ignore[misc]
    """Write the config to a typed path (atomically) and offer it as a browser download."""

    def __init__(self, export: Callable[[str], None]) -> None:
        self.path = css(
            widgets.Text(value="nncf_config.json", description="path", layout=widgets.Layout(width="300px")),
            "nxe-export-path",
        )
        self.path.style.description_width = "36px"
        self.button = button(
            "Export config", "nxe-export-button", "Write the config JSON to the path", "download"
        )
        self.link = css(widgets.HTML(), "nxe-export-link")
        self.button.on_click(lambda _: export(self.path.value))
        super().__init__([widgets.HBox([self.path, self.button]), self.link])

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
