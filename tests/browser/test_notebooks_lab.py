"""Shipped notebooks in a real JupyterLab: Run All, then every Explorer figure must have its traces drawn.

Notebook 04 edits its Explorer (select, search, bulk, undo) in the cells right
after the one that displays it, so under Run All those edits may reach the
front end before plotly has drawn the figure; it also runs at playwright's
default window size, where the Explorer wraps and scrolls.  A second test
makes the race certain: it edits in the same cell that displays the Explorer,
then displays it again, and checks that both views draw the kernel's final
state.  Screenshots go to ``build/screenshots/`` (gitignored) for a human to
look at."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser._lab import (
    ERRORS_JS,
    ROOT,
    SCREENSHOTS,
    WIDE,
    open_notebook,
    run_all,
    serve_lab,
    write_notebook,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
# The Explorer beside its panel, and playwright's default size, where it wraps and scrolls.
VIEWPORTS = {"wide": WIDE, "default": {"width": 1280, "height": 720}}

# Per Explorer figure: traces plotly drew (SVG ``g.trace`` per scatter trace,
# or WebGL canvases), marker points drawn, and the traces plotly holds.
FIGURES_JS = """() => [...document.querySelectorAll('.nxe-graph .js-plotly-plot')].map(gd => ({
  svgTraces: gd.querySelectorAll('.scatterlayer .trace').length,
  points: gd.querySelectorAll('.scatterlayer .trace path.point').length,
  glCanvases: gd.querySelectorAll('.gl-container canvas').length,
  dataTraces: (gd.data || []).length,
  nodeTrace: (gd.data || []).filter(t => t.name === 'nodes').map(t => (t.x || []).length)[0] || 0,
}))"""


def _figures_drawn(figures: list[dict[str, Any]]) -> bool:
    return bool(figures) and all(
        f["nodeTrace"] > 0 and (f["points"] >= f["nodeTrace"] or f["glCanvases"] > 0) for f in figures
    )


@pytest.mark.parametrize(
    ("name", "size"),
    [(name, "wide") for name in NOTEBOOKS] + [("04_custom_inputs.ipynb", "default")],
)
def test_notebook_explorers_render_after_run_all(tmp_path: Path, name: str, size: str) -> None:
    from playwright.sync_api import sync_playwright

    shutil.copy(ROOT / "notebooks" / name, tmp_path / name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(name).stem}-{size}"
    shot = SCREENSHOTS / f"{stem}.png"
    with (
        serve_lab(tmp_path) as port,
        sync_playwright() as p,
        open_notebook(p, tmp_path, port, name, VIEWPORTS[size]) as page,
    ):
        run_all(page, shot)
        errors = page.evaluate(ERRORS_JS)
        deadline = time.time() + 30
        figures = page.evaluate(FIGURES_JS)
        while not _figures_drawn(figures) and time.time() < deadline:
            page.wait_for_timeout(500)
            figures = page.evaluate(FIGURES_JS)
        graphs = page.locator(".nxe-graph")
        for i in range(graphs.count()):
            graphs.nth(i).scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / f"{stem}-graph{i}.png"))
        page.screenshot(path=str(shot))
    assert errors == [], f"{name}: cells raised {errors}"
    if "Explorer(" not in (ROOT / "notebooks" / name).read_text():
        return  # a notebook without an Explorer (03): it runs, with nothing to draw
    assert figures, f"{name}: no Explorer figure in the page (see {shot})"
    assert _figures_drawn(figures), f"{name}: an Explorer figure is not drawn: {figures} (see {shot})"


# Display, then edit in the same cell (the edits are sent while the view is
# still being created), then display again after the edits (a view created
# late).  Both views must draw what the kernel holds at the end.
EDIT_BEFORE_RENDER_CELL = """\
import json, os
import torch
from IPython.display import display
from torch import nn
from nncf_explore import Explorer

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
).eval()
config = {"input_info": {"sample_size": [1, 1, 8, 8]}, "target_device": "TRIAL",
          "compression": {"algorithm": "quantization"}}
ex = Explorer(model, config)
display(ex)
ex.select("Sequential/Conv2d[2]/conv2d_0")
ex.search("re:conv")
ex.bulk_bar.kind.value = "weights"
ex.bulk_bar.bits.value = 4
ex.bulk("set-bits")
ex.bulk("off")
ex.undo()
ex.graph_view.show(frozenset())
ex.graph_view.show(frozenset(ex.graph_view.tree.members))
data = {t.name: t for t in ex.graph_view.figure.data}
with open(os.environ["NXE_EXPECTED"], "w") as f:
    json.dump({"colors": [float(c) for c in data["nodes"].marker.color],
               "matches": len(data["matches"].x), "traces": len(ex.graph_view.figure.data)}, f)
"""

DRAWN_STATE_JS = """() => [...document.querySelectorAll('.nxe-graph .js-plotly-plot')].map(gd => {
  const t = name => (gd.data || []).find(t => t.name === name);
  return {colors: t('nodes') ? Array.from(t('nodes').marker.color).map(Number) : null,
          matches: t('matches') ? t('matches').x.length : null, traces: (gd.data || []).length};
})"""


def test_edits_before_the_first_render_and_a_late_view_are_drawn(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    write_notebook(tmp_path / "early.ipynb", EDIT_BEFORE_RENDER_CELL, "ex")
    expected_file = tmp_path / "expected.json"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (
        serve_lab(tmp_path, {"NXE_EXPECTED": str(expected_file)}) as port,
        sync_playwright() as p,
        open_notebook(p, tmp_path, port, "early.ipynb") as page,
    ):
        run_all(page, SCREENSHOTS / "early-edits.png")
        errors = page.evaluate(ERRORS_JS)
        page.wait_for_function(f"() => ({FIGURES_JS})().length === 2", timeout=30000)
        page.wait_for_timeout(2000)
        figures = page.evaluate(FIGURES_JS)
        drawn = page.evaluate(DRAWN_STATE_JS)
        page.screenshot(path=str(SCREENSHOTS / "early-edits.png"), full_page=True)
    assert errors == []
    expected = json.loads(expected_file.read_text())
    assert _figures_drawn(figures), f"a figure edited before its first draw is not drawn: {figures}"
    for view, state in zip(("first view", "view displayed after the edits"), drawn, strict=True):
        assert state == expected, f"{view} draws {state}, the kernel holds {expected}"
