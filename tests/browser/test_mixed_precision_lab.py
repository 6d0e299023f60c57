"""Issue 11 in a real JupyterLab: switch the overlay on, click a Pareto point, see the config change.

Same harness as :mod:`tests.browser.test_explorer_lab` (JupyterLab + Debian's chromium through
Playwright).  Screenshots go to build/screenshots/mixed_precision*.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.test_explorer_lab import (
    ARGS,
    CHROMIUM,
    KERNEL_READY_JS,
    ROOT,
    TOKEN,
    _run,
    _states,
    serve_lab,
)

pytestmark = pytest.mark.browser

SETUP_CELL = """\
import torch
from torch import nn
from nncf_explore import Explorer

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
).eval()
loader = [(torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))) for _ in range(4)]

def accuracy(m):
    with torch.no_grad():
        return sum(float((m(x).argmax(1) == y).float().mean()) for x, y in loader) / len(loader)

config = {"input_info": {"sample_size": [1, 1, 8, 8]}, "target_device": "TRIAL",
          "compression": {"algorithm": "quantization"}}
ex = Explorer(model, config, init_loader=loader, eval_fn=accuracy, criterion=nn.CrossEntropyLoss(),
              hawq_options={"iter_number": 30})
ex
"""

REPORT_CELL = """\
import json, os
with open(os.environ["NXE_STATE"], "a") as f:
    f.write(json.dumps({"config": dict(ex.config), "overlay": ex.overlay_panel.measure,
                        "history": ex.history.label}) + "\\n")
"""

FRONT_POINT_JS = """
(index) => {
  const gd = document.querySelector('.nxe-mp-chart .js-plotly-plot');
  const t = gd._fullData.find(d => d.name.startsWith('front'));
  const L = gd._fullLayout;
  return {x: L.xaxis.l2p(t.x[index]) + L._size.l, y: L.yaxis.l2p(t.y[index]) + L._size.t, n: t.x.length};
}
"""


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP_CELL), nbformat.v4.new_code_cell(REPORT_CELL)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "mixed.ipynb")
    env = {"NXE_STATE": str(tmp_path / "state.jsonl")}
    with serve_lab(tmp_path, env) as port:
        yield {"port": port, "dir": tmp_path, "state": tmp_path / "state.jsonl"}


def _shot(page: Any, name: str) -> None:
    shot = ROOT / "build" / "screenshots" / name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.locator(".nxe-explorer").first.screenshot(path=str(shot))


def test_overlay_and_a_pareto_click_change_the_config(lab: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{lab['port']}/lab/tree/mixed.ipynb?token={TOKEN}&reset"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(lab["dir"] / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1400, "height": 1400},
            args=ARGS,
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(".jp-Notebook", timeout=90000)
            if page.locator(".jp-Dialog").count():
                page.locator(".jp-Dialog button.jp-mod-accept").click()
            page.wait_for_function(KERNEL_READY_JS, timeout=90000)
            _run(page, "notebook:run-cell", cell=0)
            page.wait_for_selector(".nxe-graph .js-plotly-plot .nsewdrag", timeout=120000)

            # ipywidgets' <option> values are indices: choose by label.
            page.locator(".nxe-overlay select").first.select_option(label="SQNR")
            page.wait_for_function(
                "() => document.querySelector('.nxe-overlay-status').innerText.includes('SQNR')",
                timeout=60000,
            )
            page.wait_for_selector(".nxe-graph .js-plotly-plot .colorbar", timeout=20000)
            _shot(page, "mixed_precision_overlay.png")

            json_before = page.locator(".nxe-json").first.inner_text()
            page.locator(".nxe-mp-compute").first.click()
            try:
                page.wait_for_selector(".nxe-mp-chart .js-plotly-plot .nsewdrag", timeout=120000)
            except Exception:
                _shot(page, "mixed_precision_failure.png")
                errors = page.locator(".nxe-error").first.inner_text()
                raise AssertionError(f"the front chart did not render; error area: {errors!r}") from None
            point = page.evaluate(FRONT_POINT_JS, 0)
            assert point["n"] >= 2, point
            box = page.locator(".nxe-mp-chart .js-plotly-plot").first.bounding_box()
            page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
            page.wait_for_function(
                "() => document.querySelector('.nxe-json').innerText.includes('bitwidth_per_scope')",
                timeout=30000,
            )
            assert page.locator(".nxe-json").first.inner_text() != json_before
            page.wait_for_timeout(500)
            _shot(page, "mixed_precision_front.png")
            _run(page, "notebook:run-cell", cell=1)
            state = _states(lab["state"], 1)[0]
        finally:
            context.close()

    scopes = state["config"]["compression"]["initializer"]["precision"]["bitwidth_per_scope"]
    assert all(bits == 4 for bits, _ in scopes) and scopes  # the cheapest front point: 4-bit weights
    assert state["overlay"] == "sqnr_db" and state["history"].startswith("1/1 front: ")
    assert json.dumps(state["config"])  # plain JSON, ready to export
