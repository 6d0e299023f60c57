"""Small ipywidgets helpers shared by the Explorer's parts."""

from __future__ import annotations

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
