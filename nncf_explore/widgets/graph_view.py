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
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

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
from nncf_explore.widgets._figure import figure_data, figure_layout, x_window, y_window
from nncf_explore.widgets._layout import Engine, compute_layout
from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets._scene import Scene, build_scene
from nncf_explore.widgets._styles import (
    TRACE_ACTIVATIONS,
    TRACE_NODES,
    Styles,
    changed_quantizers,
    restyled,
    selection_style,
    styles,
)
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
        self.figure = go.FigureWidget(
            {"data": figure_data(self.scene, self.styles), "layout": figure_layout(self.scene)}
        )
        # The figure's own element is plotly's ``.js-plotly-plot``; a wrapper carries
        # ``nxe-graph`` so that ``.nxe-graph .js-plotly-plot`` finds the plot.
        self.figure.add_class("nxe-graph-figure")
        self._sync = FigureSync(self.figure)
        self.canvas = widgets.Box([self.figure])
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
        self.expand_all_button.on_click(self._guarded(lambda: self.show(frozenset(self.tree.members))))
        self.collapse_all_button.on_click(self._guarded(lambda: self.show(frozenset())))
        self.collapse_button.on_click(self._guarded(self.collapse_selected))
        toolbar = widgets.HBox(
            [self.expand_all_button, self.collapse_all_button, self.collapse_button, self.status]
        )
        toolbar.add_class("nxe-graph-toolbar")
        super().__init__([toolbar, self.canvas])
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
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, data, strict=True):
                trace.update({k: v for k, v in new.items() if k != "type"})
            self.figure.layout.xaxis.range = x_window(scene)
            self.figure.layout.yaxis.range = y_window(scene, self._key(scene, centre))
        self._sync.changed()
        self.expanded, self.scene, self.styles = expanded, scene, style
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
        with self.figure.batch_update():
            self.figure.data[TRACE_NODES].update(self.styles.node_update())
            self.figure.data[TRACE_ACTIVATIONS].update(self.styles.marker_update())
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
