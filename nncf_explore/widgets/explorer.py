"""The Explorer: see the traced graph, edit quantizers, and get the NNCF config back, live.

Every edit goes one way: a control emits an edit, :func:`._edits.apply_edit`
turns the session's setup into a new one, the session re-generates the
compressed model (:meth:`ExplorerSession.apply`), and the views refresh from
the session.  If anything raises, the error area shows the exception's type
and message and the session keeps its previous setup; nothing is only logged.

CSS classes (stable; browser tests select widgets by them):

=============================  ==============================================================
class                          widget
=============================  ==============================================================
``nxe-explorer``               the whole Explorer
``nxe-graph``                  the box around the plot (``.nxe-graph .js-plotly-plot`` is the
                               plot; the FigureWidget itself is ``nxe-graph-figure``)
``nxe-graph-toolbar``          the bar above it: ``nxe-expand-all``, ``nxe-collapse-all``,
                               ``nxe-collapse-module`` buttons, ``nxe-fit-all`` (back to the
                               whole graph), ``nxe-centre`` (centre the selection) and
                               ``nxe-visible-count``
``nxe-search``                 name search text (substring, or ``re:`` regex)
``nxe-op-filter``              op / category dropdown
``nxe-match-count``            "12 matches"
``nxe-undo`` ``nxe-redo``      history buttons, with ``nxe-reset`` and the ``nxe-history`` label
``nxe-bulk``                   the bulk bar: ``nxe-bulk-target`` (matches/selection),
                               ``nxe-bulk-kind`` (weights/activations/all), ``nxe-bulk-bits``,
                               ``nxe-bulk-set-bits``, ``nxe-bulk-on``, ``nxe-bulk-off``;
                               ``nxe-bulk-bits-reason`` says why the target restricts the bits
                               offered, with ``nxe-bulk-switch-trial``
``nxe-error``                  error message (empty when the last action succeeded)
``nxe-status``                 what the last action changed (e.g. a target switch's removed
                               quantizers)
``nxe-error-fix``              the fix offered with an error (e.g. switch to TRIAL)
``nxe-node-panel``             the selected node's panel: ``nxe-node-title``, ``nxe-node-note``
                               (why it has no quantizer), ``nxe-node-details`` (attributes)
``nxe-quantizer``              one quantizer row, also ``nxe-weight-quantizer`` or
                               ``nxe-act-quantizer``
``nxe-weight-toggle``          weight quantizer on/off checkbox; likewise ``nxe-weight-bits``,
                               ``nxe-weight-mode``, ``nxe-weight-per-channel``
``nxe-act-toggle``             activation quantizer on/off; likewise ``nxe-act-bits``,
                               ``nxe-act-mode``, ``nxe-act-per-channel``
``nxe-quantizer-notes``        quantizer id and spec, ``nxe-unified-note``, ``nxe-bits-reason``
``nxe-switch-trial``           "Switch target_device to TRIAL" (shown when bits are restricted)
``nxe-json``                   the config JSON, last edit's lines highlighted
``nxe-stats``                  quantizer counts, bit-width histogram, weight memory vs FP32
``nxe-metric-button``          evaluate the metric; ``nxe-metric-auto``, ``nxe-metric``,
                               ``nxe-metric-chart`` (appears after the first value)
``nxe-overlay-panel``          the overlay: ``nxe-overlay`` (measure menu), ``nxe-overlay-cancel``
                               (stops the metric ablation), ``nxe-overlay-status``,
                               ``nxe-overlay-values`` (the selected node's measures),
                               ``nxe-hist-quantizer`` and ``nxe-histogram`` (the box of the FP32
                               vs quantized histogram, ``nxe-histogram-figure``)
``nxe-mixed-precision``        the mixed-precision panel: ``nxe-mp-bits`` (each also
                               ``nxe-mp-bits-2`` ``-3`` ... ``nxe-mp-bits-8``, spelled
                               out: nxe-mp-bits-3 nxe-mp-bits-4 nxe-mp-bits-5 nxe-mp-bits-6
                               nxe-mp-bits-7),
                               ``nxe-mp-cost``, ``nxe-mp-loss``, ``nxe-mp-compute``,
                               ``nxe-mp-budget``, ``nxe-mp-budget-text``, ``nxe-mp-apply``,
                               ``nxe-mp-chart`` (the box of the front's plot,
                               ``nxe-mp-chart-figure``; click a point to apply it), and the
                               keeps ``nxe-mp-k``, ``nxe-mp-keep8``, ``nxe-mp-keep-fp32``
``nxe-export-path``            export path text
(no class)                     keyboard shortcuts (:mod:`._shortcuts`): Ctrl/⌘+Z undo,
                               Ctrl/⌘+Shift+Z or Ctrl/⌘+Y redo, ``/`` search, ``n``/``N``
                               next/previous match
``nxe-snapshot-path``          where ``nxe-snapshot-button`` writes the graph as standalone HTML
``nxe-diff``                   the diff view: ``nxe-diff-a``, ``nxe-diff-b`` (config paths; empty:
                               opened / current), ``nxe-diff-compare``, ``nxe-diff-clear``,
                               ``nxe-diff-table`` (quantizer, before, after)
``nxe-export-button``          write the config there; ``nxe-export-link`` shows the download
=============================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.config.jsonio import dumps
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.graph.ir import Node
from nncf_explore.widgets._collapse import COLLAPSE_ABOVE
from nncf_explore.widgets._diff import DiffPanel, device_change_note, load_setup, setup_changes
from nncf_explore.widgets._edits import (
    ApplySetup,
    BitsNotAllowedError,
    Edit,
    History,
    SetDevice,
    SetSpec,
    Toggle,
    apply_edit,
    describe,
)
from nncf_explore.widgets._html import json_diff_html, setup_stats, stats_html
from nncf_explore.widgets._layout import Engine
from nncf_explore.widgets._metric_chart import MetricPoint
from nncf_explore.widgets._mixed_precision import MixedPrecisionPanel
from nncf_explore.widgets._overlay import most_sensitive
from nncf_explore.widgets._overlay_panel import OverlayPanel
from nncf_explore.widgets._panels import ErrorArea, ExportPanel, MetricPanel
from nncf_explore.widgets._points import PointIndex, QuantState
from nncf_explore.widgets._search import match_nodes, op_filter_options, quantizers_of
from nncf_explore.widgets._session import (
    TRIAL_DEVICE,
    ExplorerSession,
    SensitivitySource,
    allowed_bits,
    sensitivity_of,
)
from nncf_explore.widgets._shortcuts import Shortcuts
from nncf_explore.widgets._styles import changed_quantizers
from nncf_explore.widgets._toolbar import BulkAction, BulkBar, HistoryBar, SearchBar
from nncf_explore.widgets._ui import css
from nncf_explore.widgets.graph_view import GraphView
from nncf_explore.widgets.node_panel import NodePanel, PanelContext


def uniform_int8(setup: QuantizerSetup) -> QuantizerSetup:
    """``setup``'s weights, all at 8 bits: the metric chart's INT8 reference size."""
    weights = tuple(p if p.spec.bits == 8 else p.respec(bits=8) for p in setup.weights)
    return QuantizerSetup(weights, setup.target_device)


def as_session(source: Any, config: Any = None, **options: Any) -> ExplorerSession:
    """``source`` if it is a session, else an :class:`~nncf_explore.compression.editing.EditSession`.

    Raises:
        TypeError: A session with a config or options, or a model without a config.
    """
    if isinstance(source, ExplorerSession):
        if config is not None or options:
            raise TypeError("pass either a session alone, or a model with its NNCF config and options")
        return source
    if config is None:
        raise TypeError(
            "Explorer(model, config, init_loader=...) needs the NNCF config to start from; "
            "or pass an ExplorerSession"
        )
    from nncf_explore.compression.editing import EditSession

    return EditSession(source, config, **options)


class Explorer(widgets.VBox):  # type: ignore[misc]
    """Graph, node panel, search, bulk edits, history, config JSON, stats, metric and export.

    Args:
        source: An :class:`ExplorerSession`, or the FP32 model to compress.
        config: With a model: the NNCF config to start from.
        collapse_above: Graphs with more nodes open collapsed by module.
        criterion: The loss for HAWQ's Hessian traces (the mixed-precision search).
        hawq_options: Hutchinson's parameters: ``num_data_points``, ``iter_number``, ``tolerance``
            (NNCF's ``precision`` fields; defaults 100, 200, 1e-4).
        layout_engine: ``"layered"`` (fast, keeps the main chain straight),
            ``"dot"`` (graphviz, falling back to layered) or ``"auto"`` (dot for
            views of at most 300 items when graphviz is installed).
        **session_options: With a model: options of
            :class:`~nncf_explore.compression.editing.EditSession`
            (``init_loader``, ``eval_fn``, ...).

    Examples:
        >>> ex = Explorer(model, config, init_loader=loader)  # doctest: +SKIP
        >>> ex.select("ResNet/Conv2d[conv1]/conv2d_0")  # doctest: +SKIP
        >>> ex.node_panel.weight_row.bits.value = 4  # doctest: +SKIP
        >>> ex.export_config("edited.json")  # doctest: +SKIP
    """

    def __init__(
        self,
        source: Any,
        config: Any = None,
        *,
        collapse_above: int = COLLAPSE_ABOVE,
        layout_engine: Engine = "layered",
        criterion: Any = None,
        hawq_options: Mapping[str, Any] | None = None,
        **session_options: Any,
    ) -> None:
        session = as_session(source, config, **session_options)
        self.session = session
        self._hawq_options = dict(hawq_options or {})
        self._sensitivity_args = (
            session_options.get("init_loader"),
            criterion,
            session_options.get("eval_fn"),
        )
        self._sensitivity: SensitivitySource | None = None
        self.overlay_values: Any = None  # what the graph is coloured by (None: bit widths)
        self.graph = session.graph
        self.index = PointIndex(self.graph, session.default_setup)
        self.state = QuantState(self.index, session.setup)
        self.history: History[QuantizerSetup] = History(session.setup, "opened")
        self.memory: dict[str, QuantizationPoint] = {p.id: p for p in session.setup}
        self.selected: int | None = None
        self.matches: list[int] = []
        self._fp32_bytes = session.weight_memory_bytes(QuantizerSetup())
        self._json = dumps(session.config_json())

        self.error = ErrorArea()
        self.graph_view = GraphView(
            self.graph,
            self.state,
            collapse_above=collapse_above,
            engine=layout_engine,
            on_error=self.error.show,
        )
        self.graph_view.on_select(self._guarded(self.select))
        self.node_panel = NodePanel(self._guarded(self.edit))
        self.search_bar = SearchBar(op_filter_options(self.graph), self._guarded(self._search_changed))
        self.bulk_bar = BulkBar(
            self._guarded(self.bulk), self._guarded(lambda: self.edit(SetDevice(TRIAL_DEVICE)))
        )
        self.history_bar = HistoryBar(
            self._guarded(self.undo), self._guarded(self.redo), self._guarded(self.reset)
        )
        self.json_panel = css(widgets.HTML(json_diff_html(None, self._json)), "nxe-json")
        self.stats_panel = css(widgets.HTML(), "nxe-stats")
        self.metric_panel = MetricPanel(
            self._guarded(self.evaluate),
            self._fp32_bytes,
            session.weight_memory_bytes(uniform_int8(self.index.default)),
        )
        self.export_panel = ExportPanel(self._guarded(self.export_config), self._guarded(self.snapshot_html))
        self.diff_panel = DiffPanel(self._guarded(self.diff), self._guarded(lambda: self.diff(clear=True)))
        self.overlay_panel = OverlayPanel(session, self.sensitivity, self._set_overlay, self.error.show)
        self.mixed_precision = MixedPrecisionPanel(
            self._require_sensitivity,
            self._guarded(self.edit),
            lambda: self.session.setup,
            self._guarded(self.keep_most_sensitive),
        )
        self.mixed_precision.on_error = self.error.show
        self.mixed_precision.on_start = self.error.clear
        self._allowed_cache: dict[str, tuple[tuple[int, ...], str | None]] = {}
        self._offer_allowed_bits()
        self.shortcuts = Shortcuts(
            {
                "undo": self._guarded(self.undo),
                "redo": self._guarded(self.redo),
                "next": self._guarded(lambda: self.step_match(1)),
                "previous": self._guarded(lambda: self.step_match(-1)),
            }
        )
        super().__init__([*self._arrange(), self.shortcuts])
        css(self, "nxe-explorer")
        self._refresh_stats()
        self._refresh_history()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displaying again creates new views: they must draw the figures as they are now.
        self.graph_view.prepare_display()
        self.metric_panel.prepare_display()
        self.overlay_panel.prepare_display()
        self.mixed_precision.prepare_display()
        return super()._repr_mimebundle_(**kwargs)

    # -- what the session holds ---------------------------------------------------
    @property
    def config(self) -> NNCFConfig:
        """The NNCF config of the current setup, as an ``NNCFConfig`` (a dict; a new one on each access)."""
        return NNCFConfig.from_dict(self.session.config_json())

    @property
    def controller(self) -> Any:
        """The compression controller of a session built from a model."""
        return self._session_attribute("controller")

    @property
    def compressed_model(self) -> Any:
        """The compressed model of a session built from a model."""
        return self._session_attribute("compressed_model")

    def _session_attribute(self, name: str) -> Any:
        if not hasattr(self.session, name):
            raise AttributeError(f"this Explorer's session ({type(self.session).__name__}) has no {name!r}")
        return getattr(self.session, name)

    def _arrange(self) -> list[widgets.Widget]:
        side = widgets.VBox(
            [self.node_panel, widgets.HTML("<hr style='margin:4px 0'>"), self.stats_panel],
            layout=widgets.Layout(width="360px", flex="0 0 auto"),
        )
        lower = widgets.HBox(
            [
                widgets.VBox(
                    [widgets.HTML("<b>Config</b>"), self.json_panel], layout=widgets.Layout(flex="1 1 60%")
                ),
                widgets.VBox(
                    [self.metric_panel, self.export_panel, self.diff_panel],
                    layout=widgets.Layout(flex="1 1 40%"),
                ),
            ]
        )
        wrap = widgets.Layout(flex_flow="row wrap")
        return [
            widgets.HBox([self.search_bar, self.history_bar], layout=wrap),
            self.bulk_bar,
            self.error,
            widgets.HBox([self.graph_view, side], layout=wrap),
            widgets.HBox([self.overlay_panel, self.mixed_precision], layout=wrap),
            lower,
        ]

    # -- errors -------------------------------------------------------------------
    def _guarded(self, action: Callable[..., Any]) -> Callable[..., None]:
        """``action`` reporting its exceptions in the error area instead of raising."""

        def run(*args: Any) -> None:
            self.error.clear()
            try:
                action(*args)
            except Exception as exc:
                self.error.show(exc, self._fix_for(exc))

        return run

    def _fix_for(self, exc: BaseException) -> tuple[str, Callable[[], None]] | None:
        if isinstance(exc, BitsNotAllowedError) and self.session.setup.target_device != TRIAL_DEVICE:
            return (
                f"Switch target_device to {TRIAL_DEVICE}",
                self._guarded(lambda: self.edit(SetDevice(TRIAL_DEVICE))),
            )
        return None

    # -- edits --------------------------------------------------------------------
    def edit(self, edit: Edit) -> None:
        """Apply one edit to the session, record it for undo, and refresh every view.

        Raises:
            BitsNotAllowedError: The target device does not allow the requested bits.
            Exception: Whatever the session raises; its setup is then unchanged.
        """
        current = self.session.setup
        try:
            new = apply_edit(edit, current, self.index.default, self.memory)
            self._check_bits(edit, current, new)
        except Exception:
            self._refresh_panel()  # put back the control the user moved
            raise
        if new == current:
            self._refresh_panel()
            return
        self._apply(new, describe(edit))
        if isinstance(edit, SetDevice):
            self.error.note(device_change_note(current, self.session.setup))

    def apply_setup(self, setup: QuantizerSetup, label: str = "apply setup") -> None:
        """Make ``setup`` current as one undoable edit (e.g. the setup ``Sensitivity.choose`` returns)."""
        self.edit(ApplySetup(setup, label))

    def _check_bits(self, edit: Edit, current: QuantizerSetup, new: QuantizerSetup) -> None:
        if not isinstance(edit, SetSpec) or "bits" not in edit.changes:
            return
        bits = edit.changes["bits"]
        for qid in sorted(changed_quantizers(current, new)):
            allowed = allowed_bits(self.session, new.get(qid))
            if bits not in allowed.bits:
                raise BitsNotAllowedError(
                    f"{bits} bits are not allowed for {qid} (allowed: {list(allowed.bits)})"
                    + (f": {allowed.reason}" if allowed.reason else "")
                )

    def _apply(self, setup: QuantizerSetup, label: str | None) -> None:
        previous = self.session.setup
        try:
            self.session.apply(setup)
        except Exception:
            if self.session.setup != previous:  # a session that broke its contract
                self.session.apply(previous)
            self._refresh_panel()  # put back the control the user moved
            raise
        if label is not None:
            self.history.push(self.session.setup, label)
        self._after_change()

    def _after_change(self) -> None:
        default = self.session.default_setup
        if default is not self.index.default and default != self.index.default:
            self.index = PointIndex(self.graph, default)
        self.memory.update((p.id, p) for p in self.session.setup)
        self.state = QuantState(self.index, self.session.setup)
        self.graph_view.set_state(self.state)
        self._refresh_panel()
        before, self._json = self._json, dumps(self.session.config_json())
        self.json_panel.value = json_diff_html(before, self._json)
        self._refresh_stats()
        self._refresh_history()
        self._offer_allowed_bits()
        self.overlay_panel.setup_changed()
        self.mixed_precision.redraw()
        if self.metric_panel.auto.value:
            self.evaluate()

    def bulk(self, action: BulkAction) -> None:
        """Apply the bulk bar's action to the quantizers of the matches (or the selection)."""
        target = self.bulk_bar.target.value
        nodes = self.matches if target == "matches" else [] if self.selected is None else [self.selected]
        if not nodes:
            hint = "search or filter first" if target == "matches" else "click a node first"
            raise ValueError(f"no nodes to edit: {hint}")
        kind = self.bulk_bar.kind.value
        qids = tuple(quantizers_of(self.index, nodes, kind))
        if not qids:
            raise ValueError(f"the {len(nodes)} {target} have no {kind} quantizers")
        if action == "set-bits":
            self.edit(SetSpec(qids, {"bits": self.bulk_bar.bits.value}))
        else:
            self.edit(Toggle(qids, action == "on"))

    def undo(self) -> None:
        """Go back to the setup before the last edit."""
        setup = self.history.undo()
        try:
            self._apply(setup, None)
        except Exception:
            self.history.redo()
            raise

    def redo(self) -> None:
        """Re-apply the last undone edit."""
        setup = self.history.redo()
        try:
            self._apply(setup, None)
        except Exception:
            self.history.undo()
            raise

    def reset(self) -> None:
        """Back to the setup the Explorer opened with (recorded, so it can be undone)."""
        if self.session.setup != self.history.initial:
            self._apply(self.history.initial, "reset")

    # -- selection and search -----------------------------------------------------
    def select(self, node: str | int | None) -> None:
        """Select a node by name or id (None clears); the panel shows it and the graph reveals it."""
        found: Node | None = None if node is None else self.graph.node(node)
        self.selected = None if found is None else found.id
        if found is not None and self.graph_view.selected != found.id:
            self.graph_view.reveal(found.id)
        self.graph_view.select(self.selected)
        self._refresh_panel()
        self.overlay_panel.show_node(None if found is None else found.name)

    def search(self, query: str, op_filter: str = "") -> list[int]:
        """Set the search box and op filter; return the matching node ids."""
        self.search_bar.set(query, op_filter)
        return self.matches

    def step_match(self, step: int) -> None:
        """Select the next (``step=1``) or previous (``-1``) search match, wrapping around.

        Raises:
            ValueError: There are no matches.
        """
        if not self.matches:
            raise ValueError("no search matches to step through: type in the search box first")
        at = self.matches.index(self.selected) if self.selected in self.matches else (-1 if step > 0 else 0)
        self.select(self.matches[(at + step) % len(self.matches)])

    def _search_changed(self) -> None:
        try:
            self.matches = match_nodes(
                self.graph, self.search_bar.query.value, self.search_bar.op_filter.value
            )
        except ValueError:
            # An invalid regex matches nothing: the count and the rings must not keep the last query's.
            self.matches = []
            self.graph_view.set_matches([])
            self.search_bar.count.value = "<span style='font-size:12px'>0 matches</span>"
            raise
        self.graph_view.set_matches(self.matches)
        n = len(self.matches)
        self.search_bar.count.value = f"<span style='font-size:12px'>{n} match{'' if n == 1 else 'es'}</span>"
        if n == 1:
            self.select(self.matches[0])

    # -- sensitivity: overlay and mixed precision -----------------------------------------
    def sensitivity(self) -> SensitivitySource | None:
        """The measures' source: the session's own hook, or one over its compressed model and init loader."""
        if self._sensitivity is None:
            self._sensitivity = sensitivity_of(self.session)
        loader, criterion, eval_fn = self._sensitivity_args
        if self._sensitivity is None and loader is not None and hasattr(self.session, "compressed_model"):
            from nncf_explore.widgets._analysis import SessionSensitivity

            self._sensitivity = SessionSensitivity(
                self.session, loader, criterion=criterion, eval_fn=eval_fn, **self._hawq_options
            )
        return self._sensitivity

    def _require_sensitivity(self) -> SensitivitySource:
        return self.overlay_panel.source()

    def _set_overlay(self, values: Any, title: str, higher_is_worse: bool) -> None:
        self.overlay_values = values
        self.graph_view.set_overlay(values, title=title, higher_is_worse=higher_is_worse)

    def show_overlay(self, measure: str) -> None:
        """Colour the graph by ``measure`` (``""`` turns the overlay off); see the overlay menu."""
        self.overlay_panel.show_measure(measure)

    def keep_most_sensitive(self, k: int, how: str) -> None:
        """Keep the ``k`` most sensitive nodes (by the overlay's measure) at 8 bits, or in FP32.

        One undoable edit.  FP32 turns their quantizers off, which the config writes as
        ``ignored_scopes``.

        Raises:
            ValueError: The overlay shows no sensitivity measure, or those nodes have no quantizers.
        """
        measure = self.overlay_panel.measure
        values = self.overlay_panel.values.get(measure)
        if measure in ("", "bits") or values is None:
            raise ValueError(
                "choose a sensitivity measure in the overlay first (SQNR, output error vs FP32, Hessian "
                "trace or metric drop): the most sensitive nodes are ranked by it"
            )
        nodes = most_sensitive(values, measure, k)
        current = self.session.setup
        ids = [self.graph.node(n).id for n in nodes]
        qids = tuple(q for q in quantizers_of(self.index, ids, "all") if q in current)
        if not qids:
            raise ValueError(f"the {len(nodes)} most sensitive nodes have no quantizers on: {nodes}")
        edit: Edit = SetSpec(qids, {"bits": 8}) if how == "8" else Toggle(qids, False)
        new = apply_edit(edit, current, self.index.default, self.memory)
        where = "at 8 bits" if how == "8" else "in FP32"
        self.edit(ApplySetup(new, f"keep {len(nodes)} most sensitive {where}"))

    def _offer_allowed_bits(self) -> None:
        device = self.session.setup.target_device
        if device not in self._allowed_cache:
            offered: set[int] = set()
            reason: str | None = None
            for point in self.session.default_setup:
                allowed = allowed_bits(self.session, point)
                offered.update(allowed.bits)
                reason = reason or allowed.reason
            self._allowed_cache[device] = (tuple(sorted(offered)), reason)
        bits, reason = self._allowed_cache[device]
        source = self.sensitivity()
        self.mixed_precision.set_allowed(bits, source is not None and source.has_metric)
        self.bulk_bar.offer_bits(bits, reason, device)

    # -- metric and export --------------------------------------------------------
    def evaluate(self) -> None:
        """Evaluate the session's metric and add it to the metric-vs-size chart."""
        value = self.session.eval_metric()
        if value is None:
            self.metric_panel.add(None)
            return
        memory = self.session.weight_memory_bytes(self.session.setup)
        self.metric_panel.add(MetricPoint(memory, float(value), self.history.current_label, self._json))

    def snapshot_html(self, path: str) -> str:
        """Write the graph as it is drawn now (overlay, highlight) as a standalone HTML file."""
        written = self.graph_view.snapshot_html(path)
        self.export_panel.wrote(written, "the graph snapshot")
        return written

    def diff(self, path_a: str = "", path_b: str = "", *, clear: bool = False) -> list[Any]:
        """Compare two setups: highlight the changed nodes and list each change (quantizer, before, after).

        Both paths empty: the opened setup against the current one.  One path: that
        config file against the current setup.  Two: the two config files.

        Returns:
            The changes (:class:`~nncf_explore.widgets._diff.Change`).

        Raises:
            ConfigError: A file is missing or is not a config for this graph.
        """
        if clear:
            self.graph_view.set_highlight(None)
            self.diff_panel.reset()
            return []
        before, before_name = (
            (load_setup(path_a, self.graph), path_a) if path_a else (self.history.initial, "opened")
        )
        after, after_name = (
            (load_setup(path_b, self.graph), path_b) if path_b else (self.session.setup, "current")
        )
        changes = setup_changes(before, after)
        self.graph_view.set_highlight(sorted({c.node for c in changes}) or None, label="changed")
        self.diff_panel.show(changes, before_name, after_name)
        return changes

    def export_config(self, path: str) -> str:
        """Write the current config JSON to ``path`` atomically; return the absolute path."""
        return self.export_panel.write(path, dumps(self.session.config_json()))

    # -- refreshing ---------------------------------------------------------------
    def _refresh_panel(self) -> None:
        node = None if self.selected is None else self.graph.nodes[self.selected]
        context = PanelContext(
            self.graph,
            self.state,
            lambda p: allowed_bits(self.session, p),
            self.session.unquantized_reason,
        )
        self.node_panel.show(node, context)

    def _refresh_stats(self) -> None:
        setup = self.session.setup
        stats = setup_stats(
            self.index.default, setup, self.session.weight_memory_bytes(setup), self._fp32_bytes
        )
        self.stats_panel.value = stats_html(stats)

    def _refresh_history(self) -> None:
        h = self.history
        self.history_bar.sync(h.can_undo, h.can_redo, h.label)
