"""Keyboard shortcuts of the Explorer: a tiny anywidget that forwards keys to the kernel.

JupyterLab (Lumino) matches its own key bindings on the way down from the
focused element, and stops at an element carrying ``data-lm-suppress-shortcuts``.
The widget puts that attribute on the Explorer's root, so inside the Explorer:

===========================  ======================================================
key                          action
===========================  ======================================================
Ctrl/⌘+Z                     undo (not inside a text box: there it undoes typing)
Ctrl/⌘+Shift+Z, Ctrl/⌘+Y     redo
``/``                        focus the search box
``n`` / ``N``                next / previous match (Enter / Shift+Enter in the search box)
===========================  ======================================================

Outside the Explorer every JupyterLab shortcut works as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anywidget
import traitlets

ACTIONS = ("undo", "redo", "next", "previous")

_ESM = r"""
export default {
  render({ model, el }) {
    el.style.display = "none";
    const root = el.closest(".nxe-explorer");
    if (!root) { return; }
    root.setAttribute("data-lm-suppress-shortcuts", "true");
    if (!root.hasAttribute("tabindex")) { root.setAttribute("tabindex", "-1"); }
    const onKey = (e) => {
      const typing = e.target.closest && e.target.closest("input, textarea, select");
      const inSearch = e.target.closest && e.target.closest(".nxe-search");
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      let action = null;
      if (mod && key === "z" && !typing) { action = e.shiftKey ? "redo" : "undo"; }
      else if (mod && key === "y" && !typing) { action = "redo"; }
      else if (!typing && !mod && e.key === "/") {
        const input = root.querySelector(".nxe-search input");
        if (input) { input.focus(); e.preventDefault(); }
        return;
      }
      else if (!typing && !mod && key === "n") { action = e.shiftKey ? "previous" : "next"; }
      else if (inSearch && e.key === "Enter") { action = e.shiftKey ? "previous" : "next"; }
      if (action === null) { return; }
      e.preventDefault();
      e.stopPropagation();
      model.send({ action });
    };
    root.addEventListener("keydown", onKey);
    return () => root.removeEventListener("keydown", onKey);
  },
};
"""


class Shortcuts(anywidget.AnyWidget):
    """Forwards the Explorer's shortcut keys as ``{"action": ...}`` messages to ``handlers``.

    Args:
        handlers: Action (one of :data:`ACTIONS`) -> what it does.
    """

    _esm = traitlets.Unicode(_ESM).tag(sync=True)

    def __init__(self, handlers: Mapping[str, Callable[[], None]]) -> None:
        super().__init__()
        self.handlers = dict(handlers)
        self.on_msg(self._message)

    def _message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        handler = self.handlers.get(str(action))
        if handler is not None:
            handler()
