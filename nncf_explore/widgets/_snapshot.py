"""A standalone HTML copy of a figure, for sharing without a kernel."""

from __future__ import annotations

import html
import os
from typing import Any

import plotly.io as pio

from nncf_explore.files import PathLike, write_text_atomic
from nncf_explore.widgets._figure import PLOT_CONFIG


def snapshot_html(figure: Any, path: PathLike, title: str = "nncf_explore graph") -> str:
    """Write ``figure`` as one self-contained HTML file (plotly.js inlined, so it opens offline).

    The file is written atomically through :func:`~nncf_explore.files.write_text_atomic`.

    Returns:
        The absolute path written.

    Raises:
        FileWriteError: The file cannot be written; the message names ``path`` and the fix.
    """
    page = pio.to_html(
        figure,
        include_plotlyjs=True,
        full_html=True,
        config=PLOT_CONFIG,
        default_width="100%",
        default_height=f"{figure.layout.height or 640}px",
    )
    page = page.replace("<head>", f"<head><title>{html.escape(title)}</title>", 1)
    write_text_atomic(path, page)
    return os.path.abspath(os.fspath(path))
