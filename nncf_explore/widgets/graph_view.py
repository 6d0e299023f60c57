"""The graph canvas: a plotly ``FigureWidget`` wired to the pure figure builders.

Clicking a node selects it; clicking a collapsed module expands it (a new
layout, fetched from the layout cache when seen before).  A new quantizer
setup only recolours: node colours, activation marker colours/symbols and
hover texts change inside one ``fig.batch_update()``; positions never move.

The figure's list of traces is fixed when it is built (their type follows the
graph's size, not the view's) and every change updates those traces in place,
so a front end that draws late never meets added or deleted traces; and until
it has drawn, :class:`~._ui.FigureSync` keeps the state it will draw current.

Examples:
    A ``GraphView`` is normally built by :class:`~nncf_explore.widgets.explorer.Explorer`::

        view = GraphView(graph, index, QuantState(index, setup))
        view.on_select(lambda node_id: print(node_id))
"""

from __future__ import annotations

import html
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from nncf_explore.files import PathLike
from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._collapse import (
    COLLAPSE_ABOVE,
    ModuleTree,
    ViewKey,
    collapse,
    expand,
    initial_expanded,
    innermost_open_group,
    reveal,
    visible_graph,
)
from nncf_explore.widgets._figure import (
    DEFAULT_WIDTH_PX,
    HEIGHT_PX,
    MARGIN,
    PLOT_CONFIG,
    figure_data,
    figure_layout,
    plot_height,
    x_window,
    y_window,
)
from nncf_explore.widgets._labels import ViewBox, label_update
from nncf_explore.widgets._layout import Engine, compute_layout
from nncf_explore.widgets._overlay_colours import colorbar_update, item_values, node_marker
from nncf_explore.widgets._points import STATES, PointIndex, QuantState
from nncf_explore.widgets._scene import Scene, build_scene
from nncf_explore.widgets._snapshot import snapshot_html
from nncf_explore.widgets._styles import (
    TRACE_ACTIVATIONS,
    TRACE_COLORBAR,
    TRACE_HIGHLIGHT,
    TRACE_LABELS,
    TRACE_LEGEND,
    TRACE_NODES,
    Styles,
    changed_quantizers,
    colorscale,
    restyled,
    selection_style,
    styles,
)
from nncf_explore.widgets._theme import ThemeProbe, state_colours, theme_for, theme_layout, theme_traces
from nncf_explore.widgets._ui import FigureSync, button

SelectCallback = Callable[[int | None], None]
ErrorCallback = Callable[[BaseException], None]


class GraphView(widgets.VBox):  # type: ignore[misc]
    """The graph of a model, coloured by quantizer state.

    Args:
        graph: The traced graph.
        state: Quantizer state to colour by.
        collapse_above: Graphs with more nodes open collapsed by module.
        engine: Layout engine (see :func:`~._layout.compute_layout`).
        on_error: Receives exceptions raised while handling clicks and buttons.
    """

    def __init__(
        self,
        graph: Graph,
        state: QuantState,
        *,
        collapse_above: int = COLLAPSE_ABOVE,
        engine: Engine = "layered",
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.graph = graph
        self.tree = ModuleTree.from_graph(graph)
        self.engine: Engine = engine
        self.state = state
        self.selected: int | None = None
        self.matches: tuple[int, ...] = ()
        self._on_error = on_error
        self._callbacks: list[SelectCallback] = []
        self.expanded = initial_expanded(self.tree, len(graph), collapse_above)
        self.scene = self._scene(self.expanded, state.index)
        self.styles: Styles = styles(self.scene, state)
        self.overlay: _Overlay | None = None
        self.highlighted: frozenset[int] = frozenset()
        self.light = True
        self.figure = go.FigureWidget(
            {"data": figure_data(self.scene, self.styles), "layout": figure_layout(self.scene)}
        )
        self.figure._config = PLOT_CONFIG
        self._restyle_theme()  # light until the probe reports otherwise
        # The figure's own element is plotly's ``.js-plotly-plot``; a wrapper carries
        # ``nxe-graph`` so that ``.nxe-graph .js-plotly-plot`` finds the plot.
        self.figure.add_class("nxe-graph-figure")
        self._sync = FigureSync(self.figure)
        self._label_key: tuple[Any, ...] = ()
        self.figure.layout.on_change(self._on_view_change, "xaxis.range", "yaxis.range")
        self.theme_probe = ThemeProbe()
        self.theme_probe.observe(lambda change: self.set_theme(bool(change["new"])), names=["light"])
        # A block box, not a flex row: the plot then takes the box's whole width
        # (as a flex item it kept plotly's 700 px fallback), and autosize follows it.
        self.canvas = widgets.Box([self.figure], layout=widgets.Layout(width="100%", display="block"))
        self.canvas.add_class("nxe-graph")
        self._connect_clicks()
        self.status = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.status.add_class("nxe-visible-count")
        self.expand_all_button = button(
            "Expand all", "nxe-expand-all", "Show every node (slow on huge graphs)"
        )
        self.collapse_all_button = button("Collapse all", "nxe-collapse-all", "Show top-level modules only")
        self.collapse_button = button(
            "Collapse module", "nxe-collapse-module", "Collapse the selected node's module"
        )
        self.fit_button = button("Fit all", "nxe-fit-all", "Zoom out to show the whole graph")
        self.centre_button = button("Centre selected", "nxe-centre", "Centre the view on the selected node")
        self.fit_button.on_click(self._guarded(self.fit_all))
        self.centre_button.on_click(self._guarded(self._centre_selected))
        self.expand_all_button.on_click(self._guarded(lambda: self.show(frozenset(self.tree.members))))
        self.collapse_all_button.on_click(self._guarded(lambda: self.show(frozenset())))
        self.collapse_button.on_click(self._guarded(self.collapse_selected))
        toolbar = widgets.HBox(
            [
                self.expand_all_button,
                self.collapse_all_button,
                self.collapse_button,
                self.fit_button,
                self.centre_button,
                self.status,
            ],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        toolbar.add_class("nxe-graph-toolbar")
        super().__init__(
            [toolbar, self.canvas, self.theme_probe], layout=widgets.Layout(width="100%", min_width="0")
        )
        self._update_status()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.prepare_display()
        return super()._repr_mimebundle_(**kwargs)

    def prepare_display(self) -> None:
        """Make a view about to be created draw the current figure (call when displaying again)."""
        self._sync.redisplayed()

    # -- events -------------------------------------------------------------------
    def on_select(self, callback: SelectCallback) -> None:
        """Call ``callback(node_id)`` when the user selects a node (None: selection cleared)."""
        self._callbacks.append(callback)

    def _guarded(self, action: Callable[[], Any]) -> Callable[..., None]:
        def run(*_: Any) -> None:
            try:
                action()
            except Exception as exc:
                if self._on_error is None:
                    raise
                self._on_error(exc)

        return run

    def _connect_clicks(self) -> None:
        # One handler per point trace; plotly calls every trace's handler on a
        # click, with empty point lists for the traces not hit.
        def from_nodes(_trace: Any, points: Any, _state: Any) -> None:
            if points.point_inds:
                self.click(self.scene.view.items[points.point_inds[0]].key)

        def from_markers(_trace: Any, points: Any, _state: Any) -> None:
            if points.point_inds:
                node_id = self.scene.markers.node_ids[points.point_inds[0]]
                self.click(self.scene.view.rep[node_id])

        self.figure.data[TRACE_NODES].on_click(self._guarded_click(from_nodes))
        self.figure.data[TRACE_ACTIVATIONS].on_click(self._guarded_click(from_markers))

    def _guarded_click(self, handler: Callable[[Any, Any, Any], None]) -> Callable[[Any, Any, Any], None]:
        def run(trace: Any, points: Any, state: Any) -> None:
            self._guarded(lambda: handler(trace, points, state))()

        return run

    def click(self, key: ViewKey) -> None:
        """What a click on ``key`` does: expand a collapsed module, or select a node."""
        if isinstance(key, str):
            self.show(expand(self.expanded, key))
        else:
            self.select(key)
            for callback in self._callbacks:
                callback(key)

    # -- what is shown ------------------------------------------------------------
    def _scene(self, expanded: frozenset[str], index: PointIndex) -> Scene:
        view = visible_graph(self.graph, self.tree, expanded)
        layout = compute_layout(view.keys, [(e.src, e.dst) for e in view.edges], self.engine)
        return build_scene(self.graph, self.tree, view, layout, index)

    def show(self, expanded: frozenset[str], centre: int | None = None) -> None:
        """Redraw with exactly ``expanded`` modules open, centred on node ``centre`` if given."""
        scene = self._scene(expanded, self.state.index)
        style = styles(scene, self.state)
        data = figure_data(scene, style, *self._selection_keys(scene))
        self.expanded, self.scene, self.styles = expanded, scene, style
        self._label_key = ()
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, data, strict=True):
                trace.update({k: v for k, v in new.items() if k != "type"})
            self.figure.layout.xaxis.range = x_window(scene)
            self.figure.layout.yaxis.range = y_window(scene, self._key(scene, centre))
        # A second batch: inside one, plotly drops a value set back to what it
        # was before the batch, so the theme, overlay and highlight would be lost.
        with self.figure.batch_update():
            self._restyle_theme()
            self._restyle_overlay()
            self._restyle_highlight()
            self._relabel()
        self._sync.changed()
        self._update_status()

    def _update_status(self) -> None:
        layout = self.scene.layout
        note = f" ({html.escape(layout.note)})" if layout.note else ""
        self.status.value = (
            f"<span style='font-size:11px;color:#555'>{len(self.scene.view.items)} items shown for "
            f"{len(self.graph)} nodes, layout: {layout.engine}{note}</span>"
        )

    def set_state(self, state: QuantState) -> None:
        """Recolour for a new setup; re-place activation markers if the default setup changed."""
        previous, self.state = self.state, state
        if state.index is not previous.index:
            self.show(self.expanded)
            return
        changed = changed_quantizers(previous.current, state.current)
        self.styles = restyled(self.scene, state, self.styles, changed)
        self._label_key = ()
        with self.figure.batch_update():
            update = self.styles.node_update()
            if self.overlay is not None:  # the overlay owns the node colours until cleared
                update.pop("marker")
            self.figure.data[TRACE_NODES].update(update)
            self.figure.data[TRACE_ACTIVATIONS].update(self.styles.marker_update())
            self._relabel()  # badges follow the bits
        self._sync.changed()

    # -- selection ----------------------------------------------------------------
    @staticmethod
    def _key(scene: Scene, node_id: int | None) -> ViewKey | None:
        return None if node_id is None else scene.view.rep[node_id]

    def _selection_keys(self, scene: Scene) -> tuple[ViewKey | None, set[ViewKey]]:
        return self._key(scene, self.selected), {scene.view.rep[i] for i in self.matches}

    def _restyle_selection(self) -> None:
        with self.figure.batch_update():
            for i, update in selection_style(self.scene, *self._selection_keys(self.scene)).items():
                self.figure.data[i].update(update)
        self._sync.changed()

    def select(self, node_id: int | None) -> None:
        """Ring ``node_id`` (or the module showing it) and highlight its edges; no callbacks."""
        self.selected = node_id
        self._restyle_selection()

    def set_matches(self, node_ids: Iterable[int]) -> None:
        """Ring the items showing ``node_ids``."""
        self.matches = tuple(node_ids)
        self._restyle_selection()

    def reveal(self, node_id: int) -> None:
        """Open the modules around ``node_id`` and scroll it into view."""
        opened = reveal(self.tree, self.expanded, [node_id])
        if opened != self.expanded:
            self.show(opened, centre=node_id)
        else:
            self.figure.layout.yaxis.range = y_window(self.scene, self._key(self.scene, node_id))
            self._sync.changed()

    def collapse_selected(self) -> None:
        """Close the innermost open module around the selected node."""
        if self.selected is None:
            raise ValueError("select a node first: 'Collapse module' closes the module around it")
        group = innermost_open_group(self.tree, self.selected, self.expanded)
        if group is None:
            raise ValueError(f"{self.graph.nodes[self.selected].name!r} is not inside a module group")
        self.show(collapse(self.expanded, group), centre=self.selected)

    # -- view: labels, fit, centre -----------------------------------------------
    def _view_box(self) -> ViewBox:
        layout = self.figure.layout
        # The browser reports the autosized width in the layout defaults once drawn.
        width = self.figure._layout_defaults.get("width") or DEFAULT_WIDTH_PX
        height = self.figure._layout_defaults.get("height") or HEIGHT_PX
        x0, x1 = layout.xaxis.range or x_window(self.scene)
        y0, y1 = layout.yaxis.range or y_window(self.scene)
        return ViewBox(
            (float(x0), float(x1)),
            (float(y0), float(y1)),
            float(width) - MARGIN["l"] - MARGIN["r"],
            plot_height(float(height)),
        )

    def _relabel(self) -> None:
        """Restyle the label trace for the current view, unless nothing it depends on moved."""
        view = self._view_box()
        key = (id(self.scene), id(self.styles), view)
        if key == self._label_key:
            return
        self._label_key = key
        self.figure.data[TRACE_LABELS].update(
            label_update(
                self.scene.x,
                self.scene.y,
                self.styles.node_labels,
                view,
                markup=self.scene.trace_type == "scatter",
            )
        )

    def _on_view_change(self, *_: Any) -> None:
        self._guarded(self._relabel)()
        self._sync.changed()

    def fit_all(self) -> None:
        """Zoom out so that every visible item is on screen."""
        y_low = float(self.scene.y.min()) if len(self.scene.y) else 0.0
        y_high = float(self.scene.y.max()) if len(self.scene.y) else 0.0
        with self.figure.batch_update():
            self.figure.layout.xaxis.range = x_window(self.scene)
            self.figure.layout.yaxis.range = [y_high + 0.5, y_low - 0.5]
            self._relabel()
        self._sync.changed()

    def center_on(self, node: str) -> None:
        """Open the modules around node ``node`` (a graph node name) and centre the view on it.

        The zoom level stays; the view only moves.

        Raises:
            GraphError: No node has this name; the message suggests close names.
        """
        node_id = self.graph.node(node).id
        opened = reveal(self.tree, self.expanded, [node_id])
        if opened != self.expanded:
            self.show(opened, centre=node_id)
        i = self.scene.view.index[self.scene.view.rep[node_id]]
        x, y = float(self.scene.x[i]), float(self.scene.y[i])
        view = self._view_box()
        half_x = abs(view.x_range[1] - view.x_range[0]) / 2
        half_y = abs(view.y_range[1] - view.y_range[0]) / 2
        with self.figure.batch_update():
            self.figure.layout.xaxis.range = [x - half_x, x + half_x]
            self.figure.layout.yaxis.range = [y + half_y, y - half_y]
            self._relabel()
        self._sync.changed()

    def _centre_selected(self) -> None:
        if self.selected is None:
            raise ValueError("select a node first: 'Centre selected' centres the view on it")
        self.center_on(self.graph.nodes[self.selected].name)

    # -- overlay and highlight -----------------------------------------------------
    def set_overlay(
        self, values: Mapping[str, float] | None, *, title: str, higher_is_worse: bool = False
    ) -> None:
        """Colour every node by ``values`` (node name -> number) with a colour bar titled ``title``.

        Nodes missing from ``values`` are grey; a collapsed module takes its worst
        member's value.  ``higher_is_worse`` flips the scale so that bad values
        always get the same (dark) colour.  ``None`` restores the bit-width colours.

        Raises:
            GraphError: A name in ``values`` is not a node of the graph.
        """
        if values is not None:
            unknown = [name for name in values if name not in self.graph]
            if unknown:
                self.graph.node(unknown[0])  # raises, naming the closest node
        self.overlay = None if values is None else _Overlay(dict(values), title, higher_is_worse)
        with self.figure.batch_update():
            self._restyle_overlay()
        self._sync.changed()

    def _restyle_overlay(self) -> None:
        nodes = self.figure.data[TRACE_NODES]
        bar = self.figure.data[TRACE_COLORBAR]
        for i in range(len(STATES)):  # the bit-width swatches mean nothing under an overlay
            self.figure.data[TRACE_LEGEND + i].showlegend = self.overlay is None
        if self.overlay is None:
            nodes.update(
                {
                    "marker": {
                        "color": self.styles.node_codes,
                        "colorscale": colorscale(state_colours(theme_for(self.light))),
                        "cmin": 0,
                        "cmax": len(STATES) - 1,
                    }
                }
            )
            bar.update(colorbar_update(None, "", False))
            return
        o = self.overlay
        vals = item_values(self.scene, o.values, o.higher_is_worse)
        nodes.update({"marker": node_marker(vals, o.higher_is_worse)})
        bar.update(colorbar_update(vals, o.title, o.higher_is_worse))

    def set_highlight(self, nodes: Collection[str] | None, *, label: str = "changed") -> None:
        """Outline ``nodes`` (graph node names) with their own ring shape, listed in the legend as ``label``.

        ``None`` (or no nodes) clears the highlight.  Nodes inside a collapsed
        module outline the module.

        Raises:
            GraphError: A name is not a node of the graph.
        """
        ids = frozenset(self.graph.node(n).id for n in nodes or ())
        self.highlighted = ids
        self.figure.data[TRACE_HIGHLIGHT].name = label
        with self.figure.batch_update():
            self._restyle_highlight()
        self._sync.changed()

    def _restyle_highlight(self) -> None:
        keys = {self.scene.view.rep[i] for i in self.highlighted}
        at = sorted(self.scene.view.index[k] for k in keys)
        self.figure.data[TRACE_HIGHLIGHT].update(
            {"x": self.scene.x[at], "y": self.scene.y[at], "showlegend": bool(at)}
        )

    # -- theme and snapshot --------------------------------------------------------
    def set_theme(self, light: bool) -> None:
        """Switch the figure to JupyterLab's light or dark colours (the theme probe calls this)."""
        self.light = light
        with self.figure.batch_update():
            self._restyle_theme()
        self._sync.changed()

    def _restyle_theme(self) -> None:
        theme = theme_for(self.light)
        self.figure.layout.update(theme_layout(theme))
        for i, update in theme_traces(theme, overlay=self.overlay is not None).items():
            self.figure.data[i].update(update)

    def snapshot_html(self, path: PathLike) -> str:
        """Write the current figure, with its overlay and highlight, as a standalone HTML file.

        plotly.js is inlined, so the file opens offline; the write is atomic.

        Returns:
            The absolute path written.

        Raises:
            FileWriteError: The file cannot be written; the message names ``path`` and the fix.
        """
        return snapshot_html(self.figure, path, title=f"{self.graph.root_class or 'model'} graph")


class _Overlay:
    """The measure the nodes are coloured by."""

    def __init__(self, values: dict[str, float], title: str, higher_is_worse: bool) -> None:
        self.values, self.title, self.higher_is_worse = values, title, higher_is_worse
