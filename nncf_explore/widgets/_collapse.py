"""Collapsing a graph by module hierarchy, as Model Explorer does (pure).

A *group* is one CALL of a module (``layer1.0``) standing for every node run
inside that call.  A module called twice (a shared ``pool``) makes two groups,
``pool`` and ``pool#2``; merging them would draw one box fed by both calls'
inputs, a false fork and a back edge.  The *expanded* set of group keys decides
what is visible: a node shows as itself when all its enclosing groups are
expanded, otherwise as its outermost collapsed group.  Edges between visible
items are aggregated.

Groups that add nothing are skipped: a module with one node (``conv1``) is
shown as that node, and of a module and its only child holding the same
nodes (``backbone`` around ``backbone.body``) only the outer one is a group.

Examples:
    >>> from nncf_explore.graph.ir import Edge, Graph, Node
    >>> from nncf_explore.graph.ops import OpCategory
    >>> def node(i, module):
    ...     return Node(i, f"n{i}", "relu", OpCategory.ACTIVATION, "", module, "ReLU")
    >>> g = Graph([node(0, ""), node(1, "a.x"), node(2, "a.y"), node(3, "")],
    ...           [Edge(0, 1, (1,), "float32", 0, 0), Edge(1, 2, (1,), "float32", 0, 0),
    ...            Edge(2, 3, (1,), "float32", 0, 0)])
    >>> tree = ModuleTree.from_graph(g)
    >>> [item.key for item in visible_graph(g, tree, frozenset()).items]
    [0, 'a', 3]
    >>> [item.key for item in visible_graph(g, tree, frozenset({"a"})).items]
    [0, 1, 2, 3]

    Module ``a`` called twice, with an op of the root between the calls:

    >>> chain = [Edge(i, i + 1, (1,), "float32", 0, 0) for i in range(4)]
    >>> g2 = Graph([node(0, "a.x"), node(1, "a.y"), node(2, ""), node(3, "a.x"), node(4, "a.y")], chain)
    >>> dict(ModuleTree.from_graph(g2).members)
    {'a': (0, 1), 'a#2': (3, 4)}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from nncf_explore.graph.ir import Edge, Graph

ViewKey = int | str
"""A visible item: a node id (int) or a group's module FQN (str)."""

COLLAPSE_ABOVE = 500
"""Graphs with more nodes than this open collapsed by module hierarchy."""

_SCOPE_CLASS = re.compile(r"^([^\[]+)\[")


def _call_keys(graph: Graph) -> list[list[str]]:
    """Per node, the key of each module call enclosing it, outermost first.

    The tracer does not record call instances, but trace order is execution
    order and a call runs all its ops before returning, so one call's nodes are
    consecutive: a module's nodes split into calls wherever another scope's node
    comes between them.  The key of a call is its parent call's key, a dot, the
    attribute name, and ``#k`` for the k-th call (k > 1) within that parent call.
    Back-to-back calls with nothing between (``m(m(x))``) are not told apart.
    """
    calls: dict[str, int] = {}  # call-qualified module path -> calls seen so far
    previous: list[tuple[str, str]] = []  # (path, key) per level of the previous node
    keys: list[list[str]] = []
    for node in graph.nodes:
        levels: list[tuple[str, str]] = []
        for depth, part in enumerate(node.module.split(".") if node.module else []):
            path = f"{levels[-1][1]}.{part}" if levels else part
            if depth < len(previous) and previous[depth][0] == path:
                key = previous[depth][1]  # the same call goes on
            else:
                calls[path] = calls.get(path, 0) + 1
                key = path if calls[path] == 1 else f"{path}#{calls[path]}"
            levels.append((path, key))
        keys.append([key for _, key in levels])
        previous = levels
    return keys


@dataclass(frozen=True)
class ModuleTree:
    """The module groups of a graph.

    Attributes:
        members: Node ids of each group, in trace order.
        chains: Per node id, the groups enclosing it, outermost first.
        classes: Module class name per group, when the scopes name it.
    """

    members: Mapping[str, tuple[int, ...]]
    chains: tuple[tuple[str, ...], ...]
    classes: Mapping[str, str]

    @classmethod
    def from_graph(cls, graph: Graph) -> ModuleTree:
        """The groups of ``graph``'s module calls, without single-node and pass-through groups."""
        call_keys = _call_keys(graph)
        raw: dict[str, list[int]] = {}
        for node, keys in zip(graph.nodes, call_keys, strict=True):
            for key in keys:
                raw.setdefault(key, []).append(node.id)
        chains = tuple(_kept(keys, raw) for keys in call_keys)
        kept = {g for chain in chains for g in chain}
        classes: dict[str, str] = {}
        for node, keys in zip(graph.nodes, call_keys, strict=True):
            segments = node.scope.split("/")[1:]
            for depth, prefix in enumerate(keys):
                match = _SCOPE_CLASS.match(segments[depth]) if depth < len(segments) else None
                if prefix in kept and match and prefix not in classes:
                    classes[prefix] = match.group(1)
        members = {g: tuple(raw[g]) for g in sorted(kept, key=lambda g: (raw[g][0], g))}
        return cls(members, chains, classes)

    def level(self, group: str) -> int:
        """How many groups enclose ``group`` (0 for a top-level group)."""
        return self.chains[self.members[group][0]].index(group)

    @property
    def depth(self) -> int:
        """The deepest nesting of groups."""
        return max((len(c) for c in self.chains), default=0)

    def label(self, group: str) -> str:
        """``"layer1.0 (BasicBlock)"``."""
        cls = self.classes.get(group)
        return f"{group} ({cls})" if cls else group


def _kept(prefixes: list[str], raw: Mapping[str, list[int]]) -> tuple[str, ...]:
    # Members of a group include its children's, so equal counts mean equal
    # sets: of a run of such groups keep the outermost, whose name is shortest.
    kept = []
    for i, prefix in enumerate(prefixes):
        count = len(raw[prefix])
        outer = len(raw[prefixes[i - 1]]) if i > 0 else 0
        if count > 1 and count != outer:
            kept.append(prefix)
    return tuple(kept)


@dataclass(frozen=True)
class VisibleItem:
    """A node or a collapsed group as drawn."""

    key: ViewKey
    members: tuple[int, ...]

    @property
    def is_group(self) -> bool:
        """Whether this item stands for a collapsed module."""
        return isinstance(self.key, str)


@dataclass(frozen=True)
class VisibleEdge:
    """Edges between two visible items, aggregated; ``edge`` is the first of them."""

    src: ViewKey
    dst: ViewKey
    edge: Edge
    count: int


@dataclass(frozen=True)
class VisibleGraph:
    """What is drawn for one expanded set.

    Attributes:
        items: Visible nodes and groups, ordered by their first member.
        edges: Aggregated edges between distinct items.
        expanded: The expanded group FQNs this view was built from.
        rep: Per node id, the key of the item showing it.
    """

    items: tuple[VisibleItem, ...]
    edges: tuple[VisibleEdge, ...]
    expanded: frozenset[str]
    rep: tuple[ViewKey, ...]

    @property
    def keys(self) -> list[ViewKey]:
        """Item keys in drawing order."""
        return [item.key for item in self.items]

    @cached_property
    def index(self) -> Mapping[ViewKey, int]:
        """Position of each key in :attr:`items` (built once: lookups run per click and per node)."""
        return MappingProxyType({item.key: i for i, item in enumerate(self.items)})


def representative(tree: ModuleTree, node_id: int, expanded: frozenset[str]) -> ViewKey:
    """The key showing ``node_id``: its outermost collapsed group, or the node itself."""
    for group in tree.chains[node_id]:
        if group not in expanded:
            return group
    return node_id


def visible_graph(graph: Graph, tree: ModuleTree, expanded: frozenset[str]) -> VisibleGraph:
    """The items and aggregated edges visible when exactly ``expanded`` groups are open."""
    rep = tuple(representative(tree, n.id, expanded) for n in graph.nodes)
    members: dict[ViewKey, list[int]] = {}
    for node_id, key in enumerate(rep):
        members.setdefault(key, []).append(node_id)
    items = tuple(VisibleItem(k, tuple(v)) for k, v in members.items())  # first-member order
    first: dict[tuple[ViewKey, ViewKey], Edge] = {}
    counts: dict[tuple[ViewKey, ViewKey], int] = {}
    for e in graph.edges:
        pair = (rep[e.src], rep[e.dst])
        if pair[0] != pair[1]:
            first.setdefault(pair, e)
            counts[pair] = counts.get(pair, 0) + 1
    edges = tuple(VisibleEdge(a, b, first[(a, b)], counts[(a, b)]) for a, b in first)
    return VisibleGraph(items, edges, expanded, rep)


def visible_count(tree: ModuleTree, n_nodes: int, expanded: frozenset[str]) -> int:
    """How many items :func:`visible_graph` would show, without building it."""
    return len({representative(tree, i, expanded) for i in range(n_nodes)})


def initial_expanded(tree: ModuleTree, n_nodes: int, limit: int = COLLAPSE_ABOVE) -> frozenset[str]:
    """The groups open at first draw: all when ``n_nodes <= limit``, else whole levels while they fit.

    Opening a level at a time (never half a level) keeps the first picture
    uniform: every stage, or every block, looks the same.
    """
    everything = frozenset(tree.members)
    if n_nodes <= limit:
        return everything
    expanded: frozenset[str] = frozenset()
    for level in range(tree.depth):
        wider = expanded | {g for g in tree.members if tree.level(g) == level}
        if visible_count(tree, n_nodes, wider) > limit:
            break
        expanded = frozenset(wider)
    return expanded


def expand(expanded: frozenset[str], group: str) -> frozenset[str]:
    """``expanded`` with ``group`` open."""
    return expanded | {group}


def collapse(expanded: frozenset[str], group: str) -> frozenset[str]:
    """``expanded`` with ``group`` and everything inside it closed."""
    inner = group + "."
    return frozenset(g for g in expanded if g != group and not g.startswith(inner))


def reveal(tree: ModuleTree, expanded: frozenset[str], node_ids: Iterable[int]) -> frozenset[str]:
    """``expanded`` with every group enclosing ``node_ids`` open, so the nodes show themselves."""
    return expanded | {g for i in node_ids for g in tree.chains[i]}


def innermost_open_group(tree: ModuleTree, node_id: int, expanded: frozenset[str]) -> str | None:
    """The deepest expanded group enclosing ``node_id`` (what "collapse" on the node closes)."""
    open_groups = [g for g in tree.chains[node_id] if g in expanded]
    return open_groups[-1] if open_groups else None
