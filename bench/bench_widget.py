"""Python-side timings of the Explorer: layout, first draw and single interactions.

Run ``.venv/bin/python bench/bench_widget.py`` from the repository root.  It
prints one line per measurement and asserts nothing.  Targets (issue 12): layered
layout of 2,000 nodes < 0.5 s; first draw of the 5,000-node synthetic model
<= 1 s; each interaction (select, edit recolour, overlay on, zoom relabel,
theme switch, highlight) <= 100 ms.  Browser rendering is not included (see
docs/benchmarks.md for the plotly.js side).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import _layout
from nncf_explore.widgets._graphviz import dot_layout
from nncf_explore.widgets._layered import layered_layout
from nncf_explore.widgets._styles import TRACE_NODES
from tests.widgets.fakes import FakeSession, synthetic_graph


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Median wall time of ``fn`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(label: str, seconds: float) -> None:
    print(f"  {label:<58} {seconds * 1000:9.1f} ms")


def click(explorer: object, point: int) -> None:
    explorer.graph_view.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"xs": [0.0], "ys": [0.0], "point_indexes": [point], "trace_indexes": [TRACE_NODES]},
        "device_state": None,
        "selector": None,
    }


def bench_layouts() -> None:
    print("layout engines (no cache)")
    for n in (500, 2000, 5000):
        g = synthetic_graph(n)
        keys, edges = [x.id for x in g.nodes], [(e.src, e.dst) for e in g.edges]
        report(
            f"layered, {len(g)} nodes / {len(edges)} edges",
            timed(lambda k=keys, e=edges: layered_layout(k, e), 3),
        )
        if n <= _layout.DOT_MAX_NODES * 2 and _layout.shutil.which("dot"):
            report(
                f"dot (nslimit/mclimit), {len(g)} nodes",
                timed(lambda k=keys, e=edges: dot_layout(k, e, timeout=60), 3),
            )


def bench_explorer(label: str, graph: Graph, collapse_above: int, engine: _layout.Engine = "layered") -> None:
    from nncf_explore.widgets import Explorer

    print(f"{label}: {len(graph)} nodes, engine={engine}")
    _layout.clear_cache()
    session = FakeSession(graph)
    holder: list[Explorer] = []
    report(
        "first draw (Explorer built, layout not cached)",
        timed(lambda: holder.append(Explorer(session, collapse_above=collapse_above, layout_engine=engine))),
    )
    ex = holder[0]
    view = ex.graph_view
    print(f"    {len(view.scene.view.items)} items shown, traces are {view.scene.trace_type}")
    weighted = [
        i
        for i, item in enumerate(view.scene.view.items)
        if not item.is_group
        and ex.index.attached.get(int(item.key))
        and any(q in ex.index.weights for q in ex.index.attached[int(item.key)])
    ]
    points = iter(weighted * 10)
    report("select a node (click -> panel)", timed(lambda: click(ex, next(points)), 9))
    click(ex, weighted[len(weighted) // 2])
    row = ex.node_panel.weight_row
    assert row is not None

    def toggle() -> None:
        row.toggle.value = not row.toggle.value

    report("toggle its weight quantizer (apply, recolour, JSON, stats)", timed(toggle, 10))
    bits = iter([4, 8] * 10)
    report("set its bits (dropdown)", timed(lambda: setattr(row.bits, "value", next(bits)), 10))
    report(
        "recolour only (GraphView.set_state, 1 point changed)", timed(lambda: view.set_state(ex.state), 10)
    )
    report("undo", timed(ex.undo, 5))
    report(
        "search 'blocks.1' + op filter (matches ringed)",
        timed(lambda: ex.search("blocks.1", "category:convolution"), 3),
    )
    ex.search("", "category:convolution")
    ex.bulk_bar.bits.value = 4
    report(f"bulk: set bits on {len(ex.matches)} convs", timed(ex.bulk_bar.set_bits.click))
    groups = [k for k in view.scene.view.keys if isinstance(k, str)]
    if groups:
        report(
            f"expand module {groups[0]!r} (click, new layout)",
            timed(lambda: click(ex, view.scene.view.index[groups[0]])),
        )
        report("collapse all", timed(view.collapse_all_button.click))
        report("expand all (every node, layout not cached)", timed(view.expand_all_button.click))
        report("collapse all again (layout cached)", timed(view.collapse_all_button.click))
    bench_drawing(view)
    if ex.error.last is not None:
        print(f"    error shown: {ex.error.last!r}")


def bench_drawing(view: Any) -> None:
    """Overlay, highlight, zoom relabel, theme and snapshot on an Explorer's graph view."""
    import tempfile

    graph = view.graph
    values = {n.name: float(n.id % 31) for n in graph.nodes if n.id % 5}
    report(
        "overlay on (colour by a measure, colour bar)",
        timed(lambda: view.set_overlay(values, title="SQNR"), 5),
    )
    report("overlay off (back to bit widths)", timed(lambda: view.set_overlay(None, title=""), 5))
    changed = [n.name for n in graph.nodes[::7]]
    report(
        f"highlight {len(changed)} changed nodes (diff outline)",
        timed(lambda: view.set_highlight(changed), 5),
    )
    fig = view.figure
    y_high = float(view.scene.y.max())
    spans = iter([(y_high / 2 + 10 + k % 3, y_high / 2 - 5 - k % 3) for k in range(40)])

    def zoom() -> None:  # what a wheel zoom sends back: two range changes, each relabels
        bottom, top = next(spans)
        fig.layout.xaxis.range = [-2.0 - bottom % 1, 4.0]
        fig.layout.yaxis.range = [bottom, top]

    report("zoom in (wheel): relabel the nodes in view", timed(zoom, 9))
    report("fit all (zoom out, labels culled)", timed(view.fit_all, 5))
    flips = iter([False, True] * 10)
    report("theme switch (light <-> dark)", timed(lambda: view.set_theme(next(flips)), 6))
    with tempfile.TemporaryDirectory() as tmp:
        report(
            "snapshot_html (standalone, plotly.js inlined)",
            timed(lambda: view.snapshot_html(f"{tmp}/g.html"), 3),
        )


def main() -> None:
    start = time.perf_counter()
    import plotly.graph_objects as go

    go.FigureWidget()
    report("one-time: import plotly's FigureWidget and build an empty one", time.perf_counter() - start)
    bench_layouts()
    big = synthetic_graph(5000)
    bench_explorer("5,000-node synthetic, opened collapsed", big, collapse_above=500)
    bench_explorer("5,000-node synthetic, every node shown", big, collapse_above=10**9)
    from nncf_explore.graph import trace_model
    from tests.models import resnet18

    resnet = trace_model(resnet18(), {"sample_size": [1, 3, 224, 224]})
    bench_explorer("ResNet-18", resnet, collapse_above=500)
    if _layout.shutil.which("dot"):
        bench_explorer("ResNet-18", resnet, collapse_above=500, engine="dot")


if __name__ == "__main__":
    main()
