"""The Explorer widget: the traced graph, quantizer editing and the live NNCF config.

Importing this package imports neither ipywidgets nor plotly; :class:`Explorer`
loads them on first access, so ``import nncf_explore`` works without the
``widgets`` extra.  :class:`ExplorerSession` is the protocol a session must
implement (pure typing, no widget libraries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nncf_explore.widgets._session import ExplorerSession

if TYPE_CHECKING:
    from nncf_explore.widgets.explorer import Explorer

__all__ = ["Explorer", "ExplorerSession"]


def __getattr__(name: str) -> Any:
    if name == "Explorer":
        from nncf_explore.widgets.explorer import Explorer

        return Explorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
