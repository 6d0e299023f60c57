"""Issue 11 in a real JupyterLab: switch the overlay on, click a Pareto point, see the config change.

Same harness as the other browser tests (:mod:`tests.browser._lab`: JupyterLab and Debian's
chromium through Playwright).  Screenshots go to build/screenshots/mixed_precision*.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser._lab import (
    SCREENSHOTS,
    open_notebook,
    point_on_page,
    run_command,
    serve_lab,
    states,
    write_notebook,
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


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    write_notebook(tmp_path / "mixed.ipynb", SETUP_CELL, REPORT_CELL)
    env = {"NXE_STATE": str(tmp_path / "state.jsonl")}
    with serve_lab(tmp_path, env) as port:
        yield {"port": port, "dir": tmp_path, "state": tmp_path / "state.jsonl"}


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".nxe-explorer").first.screenshot(path=str(SCREENSHOTS / name))


def test_overlay_and_a_pareto_click_change_the_config(lab: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with (
        sync_playwright() as p,
        open_notebook(p, lab["dir"], lab["port"], "mixed.ipynb", {"width": 1400, "height": 1400}) as page,
    ):
        run_command(page, "notebook:run-cell", cell=0)
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
        point = point_on_page(page, ".nxe-mp-chart .js-plotly-plot", "front", index=0)
        assert point["n"] >= 2, point
        page.mouse.click(point["page_x"], point["page_y"])
        page.wait_for_function(
            "() => document.querySelector('.nxe-json').innerText.includes('bitwidth_per_scope')",
            timeout=30000,
        )
        assert page.locator(".nxe-json").first.inner_text() != json_before
        page.wait_for_timeout(500)
        _shot(page, "mixed_precision_front.png")
        run_command(page, "notebook:run-cell", cell=1)
        state = states(lab["state"], 1)[0]

    scopes = state["config"]["compression"]["initializer"]["precision"]["bitwidth_per_scope"]
    assert all(bits == 4 for bits, _ in scopes) and scopes  # the cheapest front point: 4-bit weights
    assert state["overlay"] == "sqnr_db" and state["history"].startswith("1/1 front: ")
    assert json.dumps(state["config"])  # plain JSON, ready to export


# A metric that takes ``delay[0]`` seconds per evaluation, so that the ablation is still running
# when the test clicks Cancel; the later cells set the delay and report the ablation's progress.
SLOW_SETUP_CELL = SETUP_CELL.replace(
    "def accuracy(m):\n",
    "import time\ndelay = [1.0]\n\ndef accuracy(m):\n    time.sleep(delay[0])\n",
)
ABLATION_REPORT_CELL = """\
import json, os
run = ex.overlay_panel.source().ablation()
with open(os.environ["NXE_STATE"], "a") as f:
    f.write(json.dumps({"done": run.done, "measured": sorted(run.results), "groups": len(run.groups),
                        "status": ex.overlay_panel.status.value}) + "\\n")
"""


def test_the_metric_ablation_cancels_from_the_widget_and_resumes(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    write_notebook(tmp_path / "ablation.ipynb", SLOW_SETUP_CELL, ABLATION_REPORT_CELL, "delay[0] = 0.0")
    state = tmp_path / "state.jsonl"
    status = "() => document.querySelector('.nxe-overlay-status').innerText"
    with (
        serve_lab(tmp_path, {"NXE_STATE": str(state)}) as port,
        sync_playwright() as p,
        open_notebook(p, tmp_path, port, "ablation.ipynb", {"width": 1400, "height": 1400}) as page,
    ):
        run_command(page, "notebook:run-cell", cell=0)
        page.wait_for_selector(".nxe-graph .js-plotly-plot .nsewdrag", timeout=120000)
        page.locator(".nxe-overlay select").first.select_option(label="metric drop")
        cancel = page.locator(".nxe-overlay-cancel").first
        cancel.wait_for(state="visible", timeout=30000)
        page.wait_for_timeout(2500)  # a group or two, at a second per evaluation
        cancel.click()
        page.wait_for_function(f"() => ({status})().includes('cancelled at')", timeout=60000)
        cancelled_text = page.evaluate(status)
        _shot(page, "ablation_cancelled.png")
        run_command(page, "notebook:run-cell", cell=1)
        cancelled = states(state, 1)[0]

        run_command(page, "notebook:run-cell", cell=2)  # no delay: the rest runs at once
        page.locator(".nxe-overlay select").first.select_option(label="Off")
        page.locator(".nxe-overlay select").first.select_option(label="metric drop")
        page.wait_for_function(
            f"() => ({status})().includes('metric gain in FP32') && !({status})().includes('cancelled')",
            timeout=60000,
        )
        run_command(page, "notebook:run-cell", cell=1)
        finished = states(state, 2)[1]

    assert not cancelled["done"] and 0 < len(cancelled["measured"]) < cancelled["groups"], cancelled
    assert f"cancelled at {len(cancelled['measured'])}/{cancelled['groups']} groups" in cancelled_text
    assert finished["done"] and len(finished["measured"]) == finished["groups"], finished
    # Resumed, not restarted: what was measured before the cancel is kept.
    assert set(cancelled["measured"]) <= set(finished["measured"])
