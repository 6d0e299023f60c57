"""The core and the widgets' pure modules import no widget library; ``Explorer`` loads them lazily."""

from __future__ import annotations

import subprocess
import sys

WIDGET_LIBS = ("ipywidgets", "plotly", "anywidget")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {WIDGET_LIBS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_pure_widget_modules_import_no_widget_library() -> None:
    code = (
        "import nncf_explore, nncf_explore.widgets\n"
        "from nncf_explore.widgets import ExplorerSession\n"
        "import nncf_explore.widgets._layout, nncf_explore.widgets._collapse, nncf_explore.widgets._figure\n"
        "import nncf_explore.widgets._edits, nncf_explore.widgets._search, nncf_explore.widgets._html\n"
        "import nncf_explore.widgets._export, nncf_explore.widgets._points, nncf_explore.widgets._scene\n"
        "import nncf_explore.widgets._styles, nncf_explore.widgets._layered, nncf_explore.widgets._graphviz"
    )
    assert _loaded_after(code) == []


def test_explorer_is_loaded_on_first_access() -> None:
    assert set(_loaded_after("import nncf_explore.widgets as w\nw.Explorer")) >= {"ipywidgets", "plotly"}
