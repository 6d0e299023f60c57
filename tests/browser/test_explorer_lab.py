"""The Explorer in a real JupyterLab, driven by Debian's chromium through Playwright.

Opens a notebook with an Explorer on a small CNN, runs it, clicks a node in the
plot, switches its weight quantizer off, sets another node to 4 bits through the
panel, checks that the JSON panel changed, then runs a cell that reports the
kernel's state (config, compressed model, export) and checks it.  The
screenshot goes to build/screenshots/explorer.png; ``make docs-screenshot`` copies it
to docs/assets/explorer.png for the user guide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser._lab import (
    SCREENSHOTS,
    click_node,
    open_notebook,
    run_all,
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
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
).eval()
loader = [(torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)) for _ in range(4)]
config = {"input_info": {"sample_size": [1, 1, 8, 8]}, "target_device": "TRIAL",
          "compression": {"algorithm": "quantization"}}
ex = Explorer(model, config, init_loader=loader)
ex
"""

REPORT_CELL = """\
import json, os
points = {p.id: p.spec.bits for p in ex.controller.setup}
quantizers = {qid: q.num_bits for qid, q in ex.compressed_model.nncf.quantizers().items()}
ex.export_config(os.environ["NXE_EXPORT"])
with open(os.environ["NXE_STATE"], "a") as f:
    f.write(json.dumps({"config": dict(ex.config), "points": points, "quantizers": quantizers}) + "\\n")
print("reported", len(points))
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    write_notebook(tmp_path / "explorer.ipynb", SETUP_CELL, REPORT_CELL)
    env = {"NXE_STATE": str(tmp_path / "state.jsonl"), "NXE_EXPORT": str(tmp_path / "exported.json")}
    with serve_lab(tmp_path, env) as port:
        yield {
            "port": port,
            "dir": tmp_path,
            "state": tmp_path / "state.jsonl",
            "export": tmp_path / "exported.json",
        }


def test_explorer_in_jupyterlab(lab: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, open_notebook(p, lab["dir"], lab["port"], "explorer.ipynb") as page:
        run_all(page, SCREENSHOTS / "explorer-failure.png")
        page.wait_for_selector(".nxe-graph .js-plotly-plot .nsewdrag", timeout=120000)
        before = states(lab["state"], 1)[0]
        json_before = page.locator(".nxe-json").first.inner_text()

        click_node(page, "Conv2d[0]/conv2d_0")
        page.locator(".nxe-weight-toggle input[type=checkbox]").first.uncheck()
        page.wait_for_function(
            "() => document.querySelector('.nxe-json').innerText.includes('ignored_scopes')",
            timeout=20000,
        )
        click_node(page, "Conv2d[2]/conv2d_0")
        page.locator(".nxe-weight-bits select").first.select_option("4")
        page.wait_for_function(
            "() => document.querySelector('.nxe-json').innerText.includes('bitwidth_per_scope')",
            timeout=20000,
        )
        json_after = page.locator(".nxe-json").first.inner_text()
        assert json_after != json_before
        page.wait_for_timeout(500)
        # Into the gitignored build folder: `make docs-screenshot` copies it over the docs' image.
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".nxe-explorer").first.screenshot(path=str(SCREENSHOTS / "explorer.png"))

        run_command(page, "notebook:run-cell", cell=1)
        after = states(lab["state"], 2)[1]

    conv0, conv2 = "Sequential/Conv2d[0]/conv2d_0|WEIGHT", "Sequential/Conv2d[2]/conv2d_0|WEIGHT"
    assert before["points"][conv0] == 8 and before["points"][conv2] == 8
    assert conv0 not in after["points"] and conv0 not in after["quantizers"]
    assert after["points"][conv2] == 4 and after["quantizers"][conv2] == 4
    section = after["config"]["compression"]
    assert section["weights"]["ignored_scopes"] == ["Sequential/Conv2d[0]/conv2d_0"]
    assert [4, conv2] in section["initializer"]["precision"]["bitwidth_per_scope"]
    assert json.loads(lab["export"].read_text()) == after["config"]
