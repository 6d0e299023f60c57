"""Small ipywidgets helpers shared by the Explorer's parts."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import ipywidgets as widgets

W = TypeVar("W", bound=widgets.Widget)


def css(widget: W, *classes: str) -> W:
    """``widget`` with stable CSS classes added (browser tests find widgets by them)."""
    for c in classes:
        widget.add_class(c)
    return widget


def button(description: str, css_class: str, tooltip: str = "", icon: str = "") -> widgets.Button:
    """A compact button with a stable CSS class."""
    return css(
        widgets.Button(
            description=description, tooltip=tooltip, icon=icon, layout=widgets.Layout(width="auto")
        ),
        css_class,
    )


def hidden(widget: Any, hide: bool) -> None:
    """Show or hide a widget without removing it from its box."""
    widget.layout.display = "none" if hide else None


_CHANGE_MESSAGES = ("_py2js_restyle", "_py2js_relayout", "_py2js_update")
"""The traits plotly sends in-place changes through (the trace list itself never changes here)."""


class FigureSync:
    """Makes a ``FigureWidget``'s front end draw its current state, whenever it starts drawing.

    plotly sends the whole figure once, when the widget is created, and every
    later change as a restyle/relayout message.  A view that has not started
    drawing yet misses those messages (it registers for them when it renders),
    so edits made between creating and drawing the figure (Run All: later cells
    edit the Explorer while the browser is still loading plotly) would be lost.
    Until the front end reports its first draw, :meth:`changed` therefore
    follows each change's messages with the whole figure state, then sends the
    messages again: a view that starts listening before the first copy applies
    the messages, one that starts between them draws the state and applies the
    repeat (idempotent), and one that starts later draws the state.  No timing
    is assumed.  Once drawn, the messages alone keep it current.

    Args:
        figure: A ``plotly.graph_objects.FigureWidget``.

    Examples:
        >>> import plotly.graph_objects as go
        >>> fig = go.FigureWidget(data=[{"type": "scatter", "x": [0], "y": [0]}])
        >>> sync = FigureSync(fig)
        >>> fig.data[0].x = [1]
        >>> sync.changed()  # not drawn yet: what a front end will draw follows
        >>> list(fig._widget_data[0]["x"])
        [1]
    """

    def __init__(self, figure: Any) -> None:
        self.figure = figure
        self.drawn = False
        self._unconfirmed: list[tuple[str, Any]] = []  # change messages since the last full state
        self._repeating = False
        # A view sends its layout delta right after its first draw, having
        # registered for change messages just before it.
        figure.observe(self._on_layout_delta, names=["_js2py_layoutDelta"])
        figure.observe(self._on_change_message, names=list(_CHANGE_MESSAGES))

    def _on_layout_delta(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.drawn = True

    def _on_change_message(self, change: dict[str, Any]) -> None:
        if change["new"] and not self.drawn and not self._repeating:
            self._unconfirmed.append((change["name"], change["new"]))

    def changed(self) -> None:
        """Call after changing the figure: until it is drawn, send its whole state and repeat the changes."""
        sent, self._unconfirmed = self._unconfirmed, []
        if self.drawn:
            return
        # These two traits are what a new view draws from.  This is exactly how
        # plotly's own display hook (``_repr_mimebundle_``) refreshes them, but a
        # figure inside a box never gets that hook called.
        self.figure._widget_data = copy.deepcopy(self.figure._data)
        self.figure._widget_layout = copy.deepcopy(self.figure._layout_obj._props)
        self._repeating = True
        try:
            for name, message in sent:
                setattr(self.figure, name, message)
                setattr(self.figure, name, None)
        finally:
            self._repeating = False

    def redisplayed(self) -> None:
        """Call when a new view is about to be created (the parent box is displayed again)."""
        self.drawn = False
        self.changed()
