"""The harness that every browser test shares: a private JupyterLab, chromium through Playwright, and plot clicks.

A test writes or copies a notebook into its temp dir, serves that dir with :func:`serve_lab`,
opens the notebook with :func:`open_notebook` (a fresh chromium profile, the kernel idle), runs
cells with :func:`run_all` or :func:`run_command`, and clicks plotly points with
:func:`click_point`, which computes where plotly drew the point (each axis's own pixel offset:
a graph with a fixed aspect ratio does not start at the plot area's left edge) and checks that
the pixel belongs to the plot before it clicks.
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

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
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
WIDE = {"width": 1400, "height": 1100}

KERNEL_READY_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
                 && panel.sessionContext.session.kernel;
  return kernel && kernel.status === 'idle';
}"""

# Run All is done when every code cell has an execution count and the kernel is idle.
ALL_RUN_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel && kernel.status === 'idle' && cells.every(c => c.model.executionCount !== null);
}"""

ERRORS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => c.model.sharedModel.outputs || [])
  .filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""

COUNTS_JS = """() => { const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return [kernel && kernel.status, panel.content.widgets.filter(c => c.model.type === 'code')
          .map(c => c.model.executionCount)]; }"""

STARTED_JS = """() => { const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return (kernel && kernel.status === 'busy') || panel.content.widgets.some(
    c => c.model.type === 'code' && c.model.executionCount !== null); }"""

# Where plotly drew point ``index`` (or the first whose hover text contains ``pattern``) of the
# first trace whose name starts with ``trace``, in pixels from the plot div's top-left corner.
# ``_offset`` is each axis's own start: with ``scaleanchor`` the x axis is narrowed inside
# the plot area, so the area's left margin alone puts the click beside the graph.
POINT_JS = """([plot, trace, pattern, index]) => {
  const gd = document.querySelector(plot);
  if (!gd || !gd._fullData) return {found: -1, reason: 'no plot'};
  const t = gd._fullData.find(d => (d.name || '').startsWith(trace));
  if (!t) return {found: -1, reason: 'no trace ' + trace};
  const i = pattern === null ? index : Array.from(t.hovertext || []).findIndex(h => String(h).includes(pattern));
  if (i < 0 || i >= t.x.length) return {found: -1, reason: 'no point', n: t.x.length};
  const L = gd._fullLayout;
  const x = L.xaxis._offset + L.xaxis.l2p(t.x[i]);
  const y = L.yaxis._offset + L.yaxis.l2p(t.y[i]);
  const r = gd.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + x, r.top + y);
  return {found: i, x: x, y: y, n: t.x.length, inside: !!hit && gd.contains(hit),
          hit: hit ? hit.tagName + '.' + (hit.getAttribute('class') || '') : null};
}"""


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


def write_notebook(path: Path, *cells: str) -> Path:
    """Write a notebook of the given code cells (Python 3 kernel) and return its path."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


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
    command = [
        str(Path(sys.executable).parent / "jupyter"),
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
        _wait_for_server(server, root, port)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _wait_for_server(server: subprocess.Popen[bytes], root: Path, port: int) -> None:
    deadline = time.time() + 90
    while True:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited: {(root / 'lab.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                pytest.fail("jupyter lab did not answer within 90 s")
            time.sleep(0.5)


@contextmanager
def open_notebook(
    playwright: Any, root: Path, port: int, name: str, viewport: dict[str, int] | None = None
) -> Iterator[Any]:
    """Open ``name`` in a fresh chromium profile under ``root`` and yield the page once its kernel is idle."""
    context = playwright.chromium.launch_persistent_context(
        str(root / "profile"), executable_path=CHROMIUM, headless=True, viewport=viewport or WIDE, args=ARGS
    )
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{name}?token={TOKEN}&reset")
        page.wait_for_selector(".jp-Notebook", timeout=90000)
        if page.locator(".jp-Dialog").count():
            page.locator(".jp-Dialog button.jp-mod-accept").click()
        page.wait_for_function(KERNEL_READY_JS, timeout=90000)
        yield page
    finally:
        context.close()


def run_command(page: Any, command: str, cell: int | None = None) -> None:
    """Run a JupyterLab command on the open notebook (the app is exposed by the server flag)."""
    page.evaluate(
        """([command, cell]) => {
             const panel = window.jupyterapp.shell.currentWidget;
             if (cell !== null) { panel.content.activeCellIndex = cell; }
             return window.jupyterapp.commands.execute(command);
           }""",
        [command, cell],
    )


def run_all(page: Any, shot: Path) -> None:
    """Run All and wait until every cell has run; re-issue Run All if the first one did not start."""
    for _ in range(3):
        run_command(page, "notebook:run-all-cells")
        try:
            page.wait_for_function(STARTED_JS, timeout=30000, polling=500)
            break
        except Exception:
            continue  # the command went to a notebook that was not ready yet
    try:
        page.wait_for_function(ALL_RUN_JS, timeout=300000, polling=1000)
    except Exception:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        raise AssertionError(
            f"Run All did not finish; errors {page.evaluate(ERRORS_JS)}, "
            f"kernel and execution counts {page.evaluate(COUNTS_JS)} (see {shot})"
        ) from None


def states(path: Path, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The JSON lines a notebook cell appended to ``path``, once there are at least ``count``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.3)
    raise AssertionError(f"the kernel reported fewer than {count} states in {timeout} s")


def point_on_page(
    page: Any, plot: str, trace: str, *, pattern: str | None = None, index: int = 0
) -> dict[str, Any]:
    """The page coordinates of a plotted point, after scrolling its plot into view and letting it settle.

    The point is looked up twice, 300 ms apart, until both agree, so a plot still being
    resized to its cell's width is not clicked at its old size.
    """
    page.locator(plot).first.scroll_into_view_if_needed()
    previous: dict[str, Any] | None = None
    for _ in range(20):
        point = page.evaluate(POINT_JS, [plot, trace, pattern, index])
        assert point["found"] >= 0, f"no point {pattern or index!r} in trace {trace!r} of {plot}: {point}"
        if previous is not None and (point["x"], point["y"]) == (previous["x"], previous["y"]):
            break
        previous = point
        page.wait_for_timeout(300)
    assert point["inside"], f"the pixel of point {pattern or index!r} is not the plot's: {point}"
    box = page.locator(plot).first.bounding_box()
    return {**point, "page_x": box["x"] + point["x"], "page_y": box["y"] + point["y"]}


def click_point(page: Any, plot: str, trace: str, *, pattern: str | None = None, index: int = 0) -> None:
    """Click a plotted point with the mouse, where plotly drew it."""
    point = point_on_page(page, plot, trace, pattern=pattern, index=index)
    page.mouse.click(point["page_x"], point["page_y"])


def click_node(page: Any, pattern: str) -> None:
    """Click the Explorer node whose hover text contains ``pattern`` and wait for its panel."""
    click_point(page, ".nxe-graph .js-plotly-plot", "nodes", pattern=pattern)
    try:
        page.wait_for_selector(f".nxe-node-title:has-text('{pattern}')", timeout=20000)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "click-failure.png"
        page.screenshot(path=str(shot))
        titles = page.evaluate(
            "() => [...document.querySelectorAll('.nxe-node-title')].map(e => e.innerText)"
        )
        raise AssertionError(
            f"clicking {pattern!r} did not open its panel; titles {titles} (see {shot})"
        ) from None
