"""Which convolution filters must be pruned together: channel dependency groups from the traced graph.

Every tensor's channel axis (axis 1) gets a *layout*: the runs of channels it carries and the
convolution group each run comes from.  A convolution or linear layer starts a new run; ops
that keep channels in place (activations, pooling, BatchNorm, depthwise convolutions) pass
the layout on; an elementwise op joins the groups of its inputs, since their channels are
added one to one; a concatenation along the channels chains the layouts, so its producers stay
independent and each consumer sees the union; ``flatten`` before a linear layer turns each
channel into a block of ``H*W`` features.  Any other op, and the model output, *blocks* the
groups that reach it: those channels must stay.

Rules that keep a group unpruned (NNCF 2.19's): a group convolution that is not depthwise
(neither its filters nor its producers' are pruned); a transposed convolution; a layer whose
module runs more than once; with ``prune_first_conv`` false, a convolution the model input
reaches without passing another convolution; with ``prune_downsample_convs`` false, a
convolution with a stride above 1; a layer excluded by ``ignored_scopes``/``target_scopes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nncf_explore.graph.ir import Graph, Node
from nncf_explore.graph.ops import OpCategory

_PASS_CATEGORIES = frozenset({OpCategory.ACTIVATION, OpCategory.POOLING})
_MIXING_ACTIVATIONS = frozenset({"softmax", "log_softmax", "prelu"})
_PASS_RESHAPES = frozenset(
    {
        "dropout",
        "dropout1d",
        "dropout2d",
        "feature_dropout",
        "contiguous",
        "clone",
        "detach",
        "to",
        "type_as",
        "float",
        "interpolate",
        "upsample",
    }
)
_FLATTENS = frozenset({"flatten", "reshape", "view"})


_READERS = frozenset({OpCategory.CONVOLUTION, OpCategory.LINEAR, OpCategory.DEPTHWISE_CONVOLUTION})
_NONZERO_AT_ZERO = frozenset(
    {"sigmoid", "hardsigmoid", "exp", "softplus", "threshold", "softmax", "log_softmax"}
)
_PRODUCTS = frozenset({"mul", "mul_", "__mul__", "__imul__", "__rmul__"})
_QUOTIENTS = frozenset({"div", "div_", "__truediv__", "__itruediv__", "__floordiv__"})
_SIGN_FLIPS = frozenset({"neg", "__neg__"})


def _zero_after(node: Node, zeros: Sequence[bool], full: Sequence[bool]) -> bool:
    """Whether ``node`` keeps pruned channels at zero, given whether its inputs' are."""
    if node.category in _READERS or node.op == "batch_norm":
        return True  # masked weight and bias (and BatchNorm affine): zero whatever comes in
    if node.category is OpCategory.ACTIVATION:
        return all(zeros) and node.op not in _NONZERO_AT_ZERO
    if node.category is OpCategory.ELEMENTWISE:
        spanning = [z for z, f in zip(zeros, full, strict=False) if f] or list(zeros)
        if node.op in _PRODUCTS:
            return any(spanning)  # zero times anything is zero
        if node.op in _QUOTIENTS or node.op in _SIGN_FLIPS:
            return bool(zeros) and zeros[0]
        # a sum is zero only where every operand is: a constant or a bias added to it is not
        return len(spanning) > 1 and all(spanning)
    return all(zeros)


@dataclass(frozen=True)
class Segment:
    """A run of ``channels`` consecutive channels from one group (None: unprunable channels).

    ``repeat`` is how many features each channel became (``H*W`` after ``flatten``).
    """

    group: int | None
    channels: int
    repeat: int = 1


Layout = tuple[Segment, ...]


@dataclass
class PruningGroup:
    """Layers whose output channels are pruned together.

    Attributes:
        id: Index in :attr:`ChannelAnalysis.groups`.
        channels: Output channels every member has.
        sources: Node names of the convolutions and linear layers whose filters are pruned.
        blocked: Why the group cannot be pruned (empty: prunable).
    """

    id: int
    channels: int
    sources: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    @property
    def prunable(self) -> bool:
        """Whether the group may lose filters."""
        return not self.blocked


@dataclass
class ChannelAnalysis:
    """The result of :func:`analyse_channels`.

    Attributes:
        groups: Every group, prunable or not.
        inputs: Node name -> layout of the channels entering it, for every convolution, linear
            layer, BatchNorm and depthwise convolution (what to cut when filters go).
        followers: Node names of BatchNorms and depthwise convolutions whose channels follow
            their input's layout.
        group_of: Source node name -> its group id.
    """

    groups: list[PruningGroup]
    inputs: dict[str, Layout]
    followers: list[str]
    group_of: dict[str, int]

    def group(self, node_name: str) -> PruningGroup | None:
        """The group a convolution or linear layer's filters belong to."""
        gid = self.group_of.get(node_name)
        return None if gid is None else self.groups[gid]


@dataclass(frozen=True)
class PruningRules:
    """NNCF's switches for which layers may be pruned.

    ``excluded`` says whether scoping (``ignored_scopes``/``target_scopes``) keeps a node.
    """

    prune_first_conv: bool = False
    prune_downsample_convs: bool = False
    excluded: Callable[[str], bool] = lambda name: False


def _width(layout: Layout) -> int:
    return sum(s.channels * s.repeat for s in layout)


class _Analyser:
    """One pass over the graph in trace (topological) order."""

    def __init__(self, graph: Graph, rules: PruningRules) -> None:
        self.graph = graph
        self.rules = rules
        self.parent: list[int] = []
        self.groups: list[PruningGroup] = []
        self.layouts: dict[int, Layout] = {}
        self.inputs: dict[str, Layout] = {}
        self.followers: list[str] = []
        self.group_of: dict[str, int] = {}
        self.after_conv: dict[int, bool] = {}
        # Whether a tensor's pruned channels are exactly zero: a layer may only drop input
        # channels that are, or strip() would change its output.
        self.zero: dict[int, bool] = {}
        modules = [n.module for n in graph.nodes if n.weight is not None]
        self.shared = {m for m in modules if modules.count(m) > 1}

    # -- union-find over groups ------------------------------------------------------------
    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def new_group(self, channels: int) -> int:
        self.parent.append(len(self.groups))
        self.groups.append(PruningGroup(len(self.groups), channels))
        return len(self.groups) - 1

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.groups[ra].sources += self.groups[rb].sources
            self.groups[ra].blocked += self.groups[rb].blocked

    def block(self, layout: Layout, reason: str) -> None:
        for segment in layout:
            if segment.group is not None:
                self.groups[self.find(segment.group)].blocked.append(reason)

    # -- per node ----------------------------------------------------------------------------
    def input_layouts(self, node: Node) -> list[tuple[Layout, tuple[int, ...]]]:
        edges = sorted(self.graph.in_edges(node.id), key=lambda e: e.in_port)
        return [(self.layouts.get(e.src, ()), e.shape) for e in edges if not e.is_integer]

    def visit(self, node: Node) -> None:
        ins = self.input_layouts(node)
        preds = self.graph.predecessors(node.id)
        self.after_conv[node.id] = any(
            self.after_conv.get(p.id, False) or p.category is OpCategory.CONVOLUTION for p in preds
        )
        zeros = self.input_zeros(node)
        if node.category in _READERS and ins and not zeros[0]:
            self.block(ins[0][0], f"its pruned channels are not zero where {node.name} reads them")
        self.layouts[node.id] = self.layout_of(node, ins)
        self.zero[node.id] = _zero_after(node, zeros, self.full_inputs(node))

    def input_zeros(self, node: Node) -> list[bool]:
        edges = sorted(self.graph.in_edges(node.id), key=lambda e: e.in_port)
        return [self.zero.get(e.src, True) for e in edges if not e.is_integer]

    def full_inputs(self, node: Node) -> list[bool]:
        """Which tensor inputs span the output's channels (the others broadcast over them)."""
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        channels = out_shape[1] if len(out_shape) > 1 else None
        return [len(shape) > 1 and shape[1] == channels for _, shape in self.input_layouts(node)]

    def layout_of(self, node: Node, ins: list[tuple[Layout, tuple[int, ...]]]) -> Layout:
        first = ins[0][0] if ins else ()
        category = node.category
        if category in (OpCategory.CONVOLUTION, OpCategory.LINEAR):
            return self.weighted(node, first)
        if category is OpCategory.DEPTHWISE_CONVOLUTION:
            return self.follow(node, first)
        if category is OpCategory.NORMALIZATION and node.op == "batch_norm":
            return self.follow(node, first)
        if category in _PASS_CATEGORIES and node.op not in _MIXING_ACTIVATIONS:
            return first
        if category is OpCategory.ELEMENTWISE:
            return self.elementwise(node, ins)
        if category is OpCategory.CONCAT:
            return self.concat(node, ins)
        if category is OpCategory.RESHAPE:
            return self.reshape(node, ins)
        if category is OpCategory.REDUCTION:
            return self.reduction(node, ins)
        for layout, _ in ins:
            what = "the model output" if category is OpCategory.OUTPUT else f"{node.op!r} ({node.name})"
            self.block(layout, f"its channels reach {what}, which needs all of them")
        return ()

    def weighted(self, node: Node, layout: Layout) -> Layout:
        self.inputs[node.name] = layout
        channels = int(node.attrs.get("out_channels", node.attrs.get("out_features", 0)))
        reason = self.unprunable_reason(node)
        if int(node.attrs.get("groups", 1)) != 1:
            self.block(layout, f"it feeds {node.name}, a group convolution that is not depthwise")
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        if node.category is OpCategory.LINEAR and len(out_shape) != 2:
            reason = reason or "a linear layer on a tensor other than (batch, features)"
        gid = self.new_group(channels)
        self.groups[gid].sources.append(node.name)
        self.group_of[node.name] = gid
        if reason:
            self.groups[gid].blocked.append(f"{node.name}: {reason}")
        return (Segment(gid, channels),)

    def unprunable_reason(self, node: Node) -> str:
        attrs = node.attrs
        if attrs.get("transpose"):
            return "a transposed convolution (not pruned)"
        if int(attrs.get("groups", 1)) != 1:
            return "a group convolution that is not depthwise (NNCF does not prune those)"
        if node.module in self.shared:
            return f"module {node.module!r} runs more than once"
        if self.rules.excluded(node.name):
            return "excluded by ignored_scopes/target_scopes"
        if node.category is OpCategory.CONVOLUTION:
            if not self.rules.prune_first_conv and not self.after_conv.get(node.id, False):
                return "the first convolution (set prune_first_conv to prune it)"
            if not self.rules.prune_downsample_convs and any(int(s) > 1 for s in attrs.get("stride", ())):
                return "a downsampling convolution (stride > 1; set prune_downsample_convs to prune it)"
        return ""

    def follow(self, node: Node, layout: Layout) -> Layout:
        self.inputs[node.name] = layout
        self.followers.append(node.name)
        if node.module in self.shared:
            self.block(layout, f"{node.name}: module {node.module!r} runs more than once")
        return layout

    def elementwise(self, node: Node, ins: list[tuple[Layout, tuple[int, ...]]]) -> Layout:
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        channels = out_shape[1] if len(out_shape) > 1 else None
        full = [(layout, shape) for layout, shape in ins if len(shape) > 1 and shape[1] == channels]
        if len(full) <= 1:
            return full[0][0] if full else ()
        layouts = [layout for layout, _ in full]
        shapes = {tuple((s.channels, s.repeat) for s in layout) for layout in layouts}
        if () in {tuple(layout) for layout in layouts} or len(shapes) != 1:
            for layout in layouts:
                self.block(layout, f"{node.name} adds channels that cannot be pruned alike")
            return ()
        for segments in zip(*layouts, strict=True):
            gids = [s.group for s in segments if s.group is not None]
            for gid in gids[1:]:
                self.union(gids[0], gid)
        return layouts[0]

    def concat(self, node: Node, ins: list[tuple[Layout, tuple[int, ...]]]) -> Layout:
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        on_channels = len(out_shape) > 1 and sum(s[1] for _, s in ins if len(s) > 1) == out_shape[1]
        if on_channels and all(layout for layout, _ in ins):
            return tuple(segment for layout, _ in ins for segment in layout)
        if on_channels:
            # Unprunable inputs keep their channels; the prunable ones stay independent.
            out: list[Segment] = []
            for layout, shape in ins:
                out += layout or (Segment(None, shape[1]),)
            return tuple(out)
        for layout, _ in ins:
            self.block(layout, f"{node.name} concatenates along an axis other than the channels")
        return ()

    def reshape(self, node: Node, ins: list[tuple[Layout, tuple[int, ...]]]) -> Layout:
        if not ins:
            return ()
        layout, in_shape = ins[0]
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        if node.op in _PASS_RESHAPES and tuple(out_shape) == tuple(in_shape):
            return layout
        if node.op in _FLATTENS and _is_flatten(in_shape, out_shape) and all(s.repeat == 1 for s in layout):
            spatial = math.prod(in_shape[2:])
            return tuple(Segment(s.group, s.channels, spatial) for s in layout)
        self.block(layout, f"{node.op!r} ({node.name}) moves channels in a way pruning cannot follow")
        return ()

    def reduction(self, node: Node, ins: list[tuple[Layout, tuple[int, ...]]]) -> Layout:
        if not ins:
            return ()
        layout, in_shape = ins[0]
        out_shape = next((e.shape for e in self.graph.out_edges(node.id)), ())
        if len(in_shape) > 2 and len(out_shape) > 1 and out_shape[:2] == in_shape[:2]:
            return layout  # a reduction over the spatial axes keeps the channels
        self.block(layout, f"{node.op!r} ({node.name}) reduces over the channels")
        return ()

    def result(self) -> ChannelAnalysis:
        roots: dict[int, int] = {}
        groups: list[PruningGroup] = []
        for gid in range(len(self.groups)):
            root = self.find(gid)
            if root not in roots:
                roots[root] = len(groups)
                merged = self.groups[root]
                groups.append(PruningGroup(len(groups), merged.channels, merged.sources, merged.blocked))
        remap = {gid: roots[self.find(gid)] for gid in range(len(self.groups))}

        def renumber(layout: Layout) -> Layout:
            return tuple(
                Segment(None if s.group is None else remap[s.group], s.channels, s.repeat) for s in layout
            )

        return ChannelAnalysis(
            groups,
            {name: renumber(layout) for name, layout in self.inputs.items()},
            list(self.followers),
            {name: remap[gid] for name, gid in self.group_of.items()},
        )


def _is_flatten(in_shape: Sequence[int], out_shape: Sequence[int]) -> bool:
    return len(in_shape) > 2 and len(out_shape) == 2 and out_shape[1] == math.prod(in_shape[1:])


def analyse_channels(graph: Graph, rules: PruningRules | None = None) -> ChannelAnalysis:
    """The pruning groups of ``graph`` and the channel layout entering every layer.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from nncf_explore.graph.trace import trace_model
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 2, 1))
        >>> analysis = analyse_channels(trace_model(net, {"sample_size": [1, 3, 8, 8]}))
        >>> [(g.sources[0].split("/")[1], g.prunable) for g in analysis.groups]
        [('Conv2d[0]', False), ('Conv2d[2]', True), ('Conv2d[3]', False)]
    """
    analyser = _Analyser(graph, rules or PruningRules())
    for node in graph.nodes:
        analyser.visit(node)
    return analyser.result()


def channel_mask(layout: Layout, group_masks: Mapping[int, Sequence[bool]]) -> list[bool]:
    """Which input features of a layer survive, given each group's kept-filter flags.

    Examples:
        >>> channel_mask((Segment(0, 2, repeat=2), Segment(None, 1)), {0: [True, False]})
        [True, True, False, False, True]
    """
    out: list[bool] = []
    for segment in layout:
        keep = group_masks.get(segment.group) if segment.group is not None else None
        flags = list(keep) if keep is not None else [True] * segment.channels
        out += [flag for flag in flags for _ in range(segment.repeat)]
    return out
