"""Writing the config: atomically to a path, or as a browser download (pure, no widgets)."""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def config_text(config: dict[str, Any]) -> str:
    """The config as the Explorer shows and writes it: 2-space JSON, keys in the session's order."""
    return json.dumps(config, indent=2) + "\n"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename; return the absolute path.

    A crash or a full disk never leaves half a config behind: the old file
    stays until the new one is complete.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> write_text_atomic(os.path.join(d, "sub", "c.json"), "{}").read_text()
        '{}'
    """
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise IsADirectoryError(
            f"{str(target)!r} is a directory; type a file name such as {str(target / 'nncf_config.json')!r}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def download_link_html(filename: str, text: str) -> str:
    """An ``<a download>`` link carrying ``text`` as a base64 JSON data URI.

    Example:
        >>> download_link_html("c.json", "{}")
        '<a download="c.json" href="data:application/json;base64,e30=" target="_blank">Download c.json</a>'
    """
    data = base64.b64encode(text.encode()).decode()
    name = html.escape(filename, quote=True)
    return (
        f'<a download="{name}" href="data:application/json;base64,{data}" target="_blank">Download {name}</a>'
    )
