"""Where the Explorer writes the config, and the browser download link (pure, no widgets).

Writing itself is :func:`nncf_explore.files.write_text_atomic`, the atomic
write every file of the package goes through.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path


def export_path(typed: str) -> Path:
    """The absolute file path for a path the user typed, with its folder created.

    Raises:
        ValueError: Nothing was typed.
        IsADirectoryError: The path is a folder (the message suggests a file in it).

    Examples:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> export_path(os.path.join(d, "sub", "c.json")).parent.is_dir()
        True
    """
    if not typed.strip():
        raise ValueError("type a file path for the config, e.g. 'nncf_config.json'")
    target = Path(typed.strip()).expanduser().resolve()
    if target.is_dir():
        suggestion = str(target / "nncf_config.json")
        raise IsADirectoryError(f"{str(target)!r} is a directory; type a file name such as {suggestion!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def download_link_html(filename: str, text: str) -> str:
    """An ``<a download>`` link carrying ``text`` as a base64 JSON data URI.

    Examples:
        >>> download_link_html("c.json", "{}")
        '<a download="c.json" href="data:application/json;base64,e30=" target="_blank">Download c.json</a>'
    """
    data = base64.b64encode(text.encode()).decode()
    name = html.escape(filename, quote=True)
    return (
        f'<a download="{name}" href="data:application/json;base64,{data}" target="_blank">Download {name}</a>'
    )
