"""Render the Explorer's graph to PNG in light and dark, for looking at it (not a test).

Run ``.venv/bin/python bench/screenshot_graph.py`` from the repository root.  It
writes the figure with :meth:`GraphView.snapshot_html` and screenshots it with
Playwright on the system chromium into ``build/screenshots/``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets.graph_view import GraphView
from tests.widgets.fakes import FakeSession, synthetic_graph

OUT = Path(__file__).resolve().parents[1] / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _resnet_view() -> GraphView:
    from nncf_explore.graph import trace_model
    from tests.models import resnet18

    graph = trace_model(resnet18(), {"sample_size": [1, 3, 32, 32]})
    session = FakeSession(graph)
    index = PointIndex(graph, session.default_setup)
    setup = session.setup
    for k, p in enumerate(setup.weights[:8]):
        setup = setup.replace_point(p.id, spec={"bits": (4, 2, 6, 3, 5, 7, 4, 8)[k]})
    view = GraphView(graph, QuantState(index, setup))
    view.select(5)
    view.set_matches([12, 13])
    view.set_highlight([graph.nodes[7].name, graph.nodes[9].name], label="changed vs config")
    return view


def shoot(pages: list[tuple[str, Path, bool]]) -> None:
    """Screenshot each ``(name, html file, dark page)``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1200, "height": 760},
        )  # fmt: skip
        page = context.new_page()
        for name, html_file, dark in pages:
            page.goto(html_file.as_uri())
            page.add_style_tag(content=f"body {{ background: {'#111111' if dark else '#ffffff'}; }}")
            page.wait_for_selector(".main-svg")
            page.wait_for_timeout(800)
            page.screenshot(path=str(OUT / f"{name}.png"))
        context.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    view = _resnet_view()
    pages = []
    light = Path(view.snapshot_html(OUT / "resnet_light.html"))
    pages.append(("resnet_light", light, False))
    view.set_theme(False)
    pages.append(("resnet_dark", Path(view.snapshot_html(OUT / "resnet_dark.html")), True))
    view.set_theme(True)
    view.figure.layout.xaxis.range = [-2.0, 4.5]  # zoomed in: two-line labels
    view.figure.layout.yaxis.range = [22.5, 11.5]
    pages.append(("resnet_zoomed", Path(view.snapshot_html(OUT / "resnet_zoomed.html")), False))
    view.fit_all()
    values = {n.name: float(n.id % 23) for n in view.graph.nodes if n.id % 4}
    view.set_overlay(values, title="SQNR (dB)")
    pages.append(("resnet_overlay", Path(view.snapshot_html(OUT / "resnet_overlay.html")), False))
    big = synthetic_graph(5000)
    session = FakeSession(big)
    big_view = GraphView(big, QuantState(PointIndex(big, session.default_setup), session.setup))
    pages.append(("synthetic_collapsed", Path(big_view.snapshot_html(OUT / "synthetic.html")), False))
    big_view.show(frozenset(big_view.tree.members))
    big_view.figure.layout.xaxis.range = [-3, 5]
    big_view.figure.layout.yaxis.range = [2060, 2040]
    pages.append(("synthetic_zoomed", Path(big_view.snapshot_html(OUT / "synthetic_zoom.html")), False))
    shoot(pages)
    for name, _, _ in pages:
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
