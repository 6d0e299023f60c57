"""Following JupyterLab's light or dark theme.

The kernel cannot read the page's CSS, so :class:`ThemeProbe`, a tiny
anywidget, reads ``document.body.dataset.jpThemeLight`` (JupyterLab sets it
on every theme switch), watches it with a ``MutationObserver`` and syncs it
back as the ``light`` trait.  The figure's colours for each theme are plain
data (:class:`Theme`), and :func:`theme_layout` / :func:`theme_traces` turn
one into plotly updates, so they are tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anywidget
import traitlets

from nncf_explore.widgets._points import STATES
from nncf_explore.widgets._styles import (
    COLOURS,
    LEGEND_RINGS,
    TRACE_EDGES,
    TRACE_FOCUS,
    TRACE_HIGHLIGHT,
    TRACE_LABELS,
    TRACE_LEGEND,
    TRACE_MATCHES,
    TRACE_NODES,
    TRACE_SELECTED,
    colorscale,
)

_ESM = """
function isLight() {
  const flag = document.body.dataset.jpThemeLight;
  if (flag !== undefined) return flag !== "false";
  return !(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
}
function render({ model, el }) {
  el.style.display = "none";
  const sync = () => {
    const light = isLight();
    if (model.get("light") !== light) { model.set("light", light); model.save_changes(); }
  };
  sync();
  const observer = new MutationObserver(sync);
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
  // plotly sizes a plot from its container when it is created, which in a
  // notebook is before the output is attached (it falls back to 700 px), and
  // a "responsive" plot only listens to window resizes: so tell it whenever
  // the graph view's box changes width.
  let width = 0, timer = null, frame = null;
  const resized = new ResizeObserver(() => {
    const w = Math.round(el.parentElement ? el.parentElement.getBoundingClientRect().width : 0);
    if (w && w !== width) {
      width = w;
      clearTimeout(timer);
      timer = setTimeout(() => window.dispatchEvent(new Event("resize")), 60);
    }
  });
  const attach = () => {
    if (el.parentElement) resized.observe(el.parentElement);
    else frame = requestAnimationFrame(attach);
  };
  attach();
  return () => {
    observer.disconnect(); resized.disconnect(); cancelAnimationFrame(frame); clearTimeout(timer);
  };
}
export default { render };
"""


class ThemeProbe(anywidget.AnyWidget):
    """An invisible widget whose ``light`` trait follows the page's JupyterLab theme.

    Placed in the graph view's box, it also tells plotly to refit the plot
    whenever that box changes width, so the plot fills its cell.
    """

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    light = traitlets.Bool(True).tag(sync=True)


@dataclass(frozen=True)
class Theme:
    """The figure's colours in one theme."""

    name: str
    font: str
    muted: str
    edge: str
    focus: str
    ring: str
    outline: str
    grid: str
    mixed: str
    no_weights: str


LIGHT = Theme("light", "#1f1f1f", "#555555", "#b8b8b8", "#1f77b4", "#111111", "#444444", "#e5e5e5",
              "#000000", "#d9d9d9")  # fmt: skip
DARK = Theme("dark", "#e6e6e6", "#b0b0b0", "#6b6b6b", "#7fb8ff", "#f5f5f5", "#cfcfcf", "#3a3a3a",
             "#ffffff", "#5c5c5c")  # fmt: skip


def theme_for(light: bool) -> Theme:
    """:data:`LIGHT` or :data:`DARK`."""
    return LIGHT if light else DARK


def state_colours(theme: Theme) -> dict[str, str]:
    """The state colours in ``theme``: the palette, with the greys and "mixed" fitted to the background.

    Examples:
        >>> state_colours(DARK)["mixed"], state_colours(DARK)["8-bit"] == COLOURS["8-bit"]
        ('#ffffff', True)
    """
    return {**COLOURS, "mixed": theme.mixed, "no weights": theme.no_weights}


def theme_layout(theme: Theme) -> dict[str, Any]:
    """Layout properties of ``theme``: transparent backgrounds (the notebook's shows), text colours.

    Examples:
        >>> theme_layout(DARK)["font"]["color"]
        '#e6e6e6'
    """
    return {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": theme.font},
        "legend": {"font": {"color": theme.font}},
        "modebar": {"color": theme.muted, "activecolor": theme.font, "bgcolor": "rgba(0,0,0,0)"},
        "xaxis": {"gridcolor": theme.grid},
        "yaxis": {"gridcolor": theme.grid},
    }


def theme_traces(theme: Theme, overlay: bool) -> dict[int, dict[str, Any]]:
    """Per trace index, the colour updates of ``theme`` (node colours stay while an overlay is on)."""
    updates: dict[int, dict[str, Any]] = {
        TRACE_EDGES: {"line": {"color": theme.edge}},
        TRACE_FOCUS: {"line": {"color": theme.focus}},
        TRACE_MATCHES: {"marker": {"color": theme.ring}},
        TRACE_SELECTED: {"marker": {"color": theme.ring}},
        TRACE_HIGHLIGHT: {"marker": {"color": theme.ring}},
        TRACE_LABELS: {"textfont": {"color": theme.font}},
        TRACE_NODES: {"marker": {"line": {"color": theme.outline}}},
    }
    colours = state_colours(theme)
    if not overlay:
        updates[TRACE_NODES]["marker"]["colorscale"] = colorscale(colours)
    for i, state in enumerate(STATES):  # the legend's swatches, in TRACE_LEGEND order
        if state_colours(LIGHT)[state] != state_colours(DARK)[state]:  # each trace edit costs ~10 ms
            updates[TRACE_LEGEND + i] = {"marker": {"color": colours[state]}}
    for i in LEGEND_RINGS:
        updates[i] = {"marker": {"color": theme.ring}}
    return updates
