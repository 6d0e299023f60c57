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
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "nxe-test"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_settings(base: Path) -> None:
    for folder, name, body in [
        ("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False}),
        ("notebook-extension", "tracker", {"autoStartDefaultKernel": True}),
    ]:
        target = base / "@jupyterlab" / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{name}.jupyterlab-settings").write_text(json.dumps(body))


@contextmanager
def serve_lab(root: Path, env_extra: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``jupyter lab`` on ``root`` (private config, settings and runtime dirs) and yield its port."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM}; `make test` installs it with apt-get")
    _write_settings(root / "settings")
    port = _free_port()
    env = dict(
        os.environ,
        **(env_extra or {}),
        JUPYTER_CONFIG_DIR=str(root / "cfg"),
        JUPYTER_RUNTIME_DIR=str(root / "rt"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "ws"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [
        str(jupyter),
        "lab",
        "--no-browser",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(root / "lab.log", "w")  # noqa: SIM115 (closed in teardown)
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.time() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(root / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("jupyter lab did not answer within 90 s")
                time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP_CELL), nbformat.v4.new_code_cell(REPORT_CELL)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    env = {"NXE_STATE": str(tmp_path / "state.jsonl"), "NXE_EXPORT": str(tmp_path / "exported.json")}
    with serve_lab(tmp_path, env) as port:
        yield {
            "port": port,
            "dir": tmp_path,
            "state": tmp_path / "state.jsonl",
            "export": tmp_path / "exported.json",
        }


def _states(path: Path, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.3)
    raise AssertionError(f"the kernel reported fewer than {count} states in {timeout} s")


CLICK_NODE_JS = """
(pattern) => {
  const gd = document.querySelector('.nxe-graph .js-plotly-plot');
  const trace = gd._fullData.findIndex(t => t.name === 'nodes');
  const t = gd._fullData[trace];
  const i = t.hovertext.findIndex(h => h.includes(pattern));
  const L = gd._fullLayout;
  return {x: L.xaxis.l2p(t.x[i]) + L._size.l, y: L.yaxis.l2p(t.y[i]) + L._size.t, found: i};
}
"""


def _click_node(page: Any, pattern: str) -> None:
    point = page.evaluate(CLICK_NODE_JS, pattern)
    assert point["found"] >= 0, f"no node whose hover text contains {pattern!r}"
    box = page.locator(".nxe-graph .js-plotly-plot").first.bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_selector(f".nxe-node-title:has-text('{pattern}')", timeout=20000)


KERNEL_READY_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
                 && panel.sessionContext.session.kernel;
  return kernel && kernel.status === 'idle';
}"""


def _run(page: Any, command: str, cell: int | None = None) -> None:
    """Run a JupyterLab command on the open notebook (the app is exposed by the server flag)."""
    page.evaluate(
        """([command, cell]) => {
             const panel = window.jupyterapp.shell.currentWidget;
             if (cell !== null) { panel.content.activeCellIndex = cell; }
             return window.jupyterapp.commands.execute(command);
           }""",
        [command, cell],
    )


def _run_report_cell(page: Any) -> None:
    _run(page, "notebook:run-cell", cell=1)


def test_explorer_in_jupyterlab(lab: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{lab['port']}/lab/tree/explorer.ipynb?token={TOKEN}&reset"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(lab["dir"] / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1400, "height": 1100},
            args=ARGS,
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(".jp-Notebook", timeout=90000)
            if page.locator(".jp-Dialog").count():
                page.locator(".jp-Dialog button.jp-mod-accept").click()
            page.wait_for_function(KERNEL_READY_JS, timeout=90000)
            _run(page, "notebook:run-all-cells")
            try:
                page.wait_for_selector(".nxe-graph .js-plotly-plot .nsewdrag", timeout=120000)
            except Exception:
                page.screenshot(path=str(lab["dir"].parent / "explorer-failure.png"), full_page=True)
                raise AssertionError(
                    "the Explorer's plot did not render; page text: " + page.inner_text("body")[-3000:]
                ) from None
            before = _states(lab["state"], 1)[0]
            json_before = page.locator(".nxe-json").first.inner_text()

            _click_node(page, "Conv2d[0]/conv2d_0")
            page.locator(".nxe-weight-toggle input[type=checkbox]").first.uncheck()
            page.wait_for_function(
                "() => document.querySelector('.nxe-json').innerText.includes('ignored_scopes')",
                timeout=20000,
            )
            _click_node(page, "Conv2d[2]/conv2d_0")
            page.locator(".nxe-weight-bits select").first.select_option("4")
            page.wait_for_function(
                "() => document.querySelector('.nxe-json').innerText.includes('bitwidth_per_scope')",
                timeout=20000,
            )
            json_after = page.locator(".nxe-json").first.inner_text()
            assert json_after != json_before
            page.wait_for_timeout(500)
            # Into the gitignored build folder: `make docs-screenshot` copies it over the docs' image.
            shot = ROOT / "build" / "screenshots" / "explorer.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".nxe-explorer").first.screenshot(path=str(shot))

            _run_report_cell(page)
            after = _states(lab["state"], 2)[1]
        finally:
            context.close()

    conv0, conv2 = "Sequential/Conv2d[0]/conv2d_0|WEIGHT", "Sequential/Conv2d[2]/conv2d_0|WEIGHT"
    assert before["points"][conv0] == 8 and before["points"][conv2] == 8
    assert conv0 not in after["points"] and conv0 not in after["quantizers"]
    assert after["points"][conv2] == 4 and after["quantizers"][conv2] == 4
    section = after["config"]["compression"]
    assert section["weights"]["ignored_scopes"] == ["Sequential/Conv2d[0]/conv2d_0"]
    assert [4, conv2] in section["initializer"]["precision"]["bitwidth_per_scope"]
    assert json.loads(lab["export"].read_text()) == after["config"]
