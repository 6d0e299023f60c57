"""Screenshot a GraphView in a real JupyterLab (light, wheel-zoomed, dark) into build/screenshots/.

Run ``.venv/bin/python bench/screenshot_lab.py`` from the repository root (needs chromium and the
browser-test harness of ``tests/browser``).  It prints the plot and cell widths, the label count and
the font colour at each step, and asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat

from bench.screenshot_graph import FLAGS, OUT
from tests.browser._lab import CHROMIUM, KERNEL_READY_JS, TOKEN, serve_lab

ROOT = str(Path(__file__).resolve().parents[1])
CELL = f"""
import sys; sys.path.insert(0, {ROOT!r})
from nncf_explore.graph import trace_model
from tests.models import resnet18
from tests.widgets.fakes import FakeSession
from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets.graph_view import GraphView
g = trace_model(resnet18(), {{"sample_size": [1, 3, 32, 32]}})
s = FakeSession(g)
view = GraphView(g, QuantState(PointIndex(g, s.default_setup), s.setup))
view.select(5)
view
"""

RUN_CELL_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = 0;
  return window.jupyterapp.commands.execute('notebook:run-cell');
}"""
INFO_JS = """() => {
  const gd = document.querySelector('.nxe-graph .js-plotly-plot');
  const labels = gd._fullData.find(t => t.name === 'labels');
  const cell = document.querySelector('.jp-OutputArea-output');
  return {plot: gd.getBoundingClientRect().width, cell: cell.getBoundingClientRect().width,
          font: gd._fullLayout.font.color, labels: labels.x.length, y: gd._fullLayout.yaxis.range,
          light: document.body.dataset.jpThemeLight};
}"""
DARK_JS = "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"


def _notebook(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "g.ipynb")


def _steps(page: Any) -> None:
    page.wait_for_function(KERNEL_READY_JS, timeout=120000)
    page.evaluate(RUN_CELL_JS)
    page.wait_for_selector(".nxe-graph .js-plotly-plot .main-svg", timeout=180000)
    time.sleep(4)
    print("light", page.evaluate(INFO_JS))
    page.screenshot(path=str(OUT / "lab_light.png"))
    page.set_viewport_size({"width": 1200, "height": 1000})
    time.sleep(3)
    print("narrower window", page.evaluate(INFO_JS))
    box = page.locator(".nxe-graph .js-plotly-plot").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    for _ in range(4):
        page.mouse.wheel(0, -300)
        time.sleep(0.3)
    time.sleep(3)
    print("wheel-zoomed", page.evaluate(INFO_JS))
    page.screenshot(path=str(OUT / "lab_zoomed.png"))
    page.evaluate(DARK_JS)
    time.sleep(6)
    print("dark theme", page.evaluate(INFO_JS))
    page.screenshot(path=str(OUT / "lab_dark.png"))


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp())
    _notebook(root)
    with serve_lab(root) as port, sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1300, "height": 1000},
        )
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/lab/tree/g.ipynb?token={TOKEN}&reset")
        _steps(page)
        context.close()


if __name__ == "__main__":
    main()
