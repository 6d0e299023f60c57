"""The graph IR: immutable nodes and edges recorded from one forward run.

A :class:`Graph` is what the tracer returns and what every later stage reads:
quantizer placement, the compressed model's hooks, the dot dumps and the
Explorer widget.  It is immutable and JSON-able, so one trace can serve many
re-compressions without being copied or re-run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from nncf_explore.errors import GraphError, did_you_mean
from nncf_explore.graph.ops import OpCategory
from nncf_explore.graph.scope import normalize_node_name

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Node:
    """One executed operation.

    Attributes:
        id: Position in trace order; trace order is a topological order.
        name: NNCF-style address ``{scope}/{op}_{call_order}``.
        op: Operator name as NNCF spells it (``conv2d``, ``__iadd__``, ``relu_``).
        category: Coarse kind used by placement rules and colouring.
        scope: ``Root/Child[attr]/...`` scope of the calling module.
        module: Fully qualified name of the calling module (``layer1.0.conv1``;
            ``""`` for the root module and for graph inputs and outputs).
        module_class: Class name of the calling module.
        params: Input port -> fully qualified name of an ``nn.Parameter`` passed
            to the op at that port (``{1: "conv1.weight", 2: "conv1.bias"}``).
        attrs: Layer attributes: channels, kernel, stride, groups, features,
            ``weight_shape``, ``has_weight``, ``has_bias`` where they apply.

    ``params`` and ``attrs`` are read-only copies of what was passed (lists in
    ``attrs`` become tuples), so a node is immutable all the way down and hashable.

    Examples:
        >>> node = Node(1, "Net/ReLU[act]/relu_0", "relu", OpCategory.ACTIVATION, "Net/ReLU[act]",
        ...             "act", "ReLU", attrs={"inplace": False})
        >>> node.attrs["inplace"] = True
        Traceback (most recent call last):
        ...
        TypeError: 'mappingproxy' object does not support item assignment
        >>> hash(node) == hash(Node.from_dict(node.to_dict()))
        True
    """

    id: int
    name: str
    op: str
    category: OpCategory
    scope: str
    module: str
    module_class: str
    params: Mapping[int, str] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copies, so the caller's dicts can change without changing the node; the frozen
        # dataclass only stops rebinding the fields, the proxies stop writes through them.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "attrs", MappingProxyType(_frozen_values(self.attrs)))

    def __hash__(self) -> int:
        # The generated hash would hash the mappings, which are not hashable themselves.
        fields = (self.id, self.name, self.op, self.category, self.scope, self.module, self.module_class)
        return hash((*fields, frozenset(self.params.items()), frozenset(self.attrs.items())))

    def __reduce__(self) -> tuple[type[Node], tuple[Any, ...]]:
        # Mapping proxies cannot be pickled or deep-copied; rebuild the node from plain dicts.
        fields = (self.id, self.name, self.op, self.category, self.scope, self.module, self.module_class)
        return (Node, (*fields, dict(self.params), dict(self.attrs)))

    @property
    def weight(self) -> str | None:
        """Fully qualified name of the op's weight parameter, if it has one."""
        if not self.attrs.get("has_weight"):
            return None
        return self.params.get(int(self.attrs.get("weight_port", 1)))

    def to_dict(self) -> JSONDict:
        """JSON-able form; :meth:`from_dict` inverts it exactly."""
        return {
            "id": self.id,
            "name": self.name,
            "op": self.op,
            "category": self.category.value,
            "scope": self.scope,
            "module": self.module,
            "module_class": self.module_class,
            "params": {str(k): v for k, v in self.params.items()},
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        """Build a node from :meth:`to_dict` output."""
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            op=str(data["op"]),
            category=OpCategory(data["category"]),
            scope=str(data["scope"]),
            module=str(data["module"]),
            module_class=str(data["module_class"]),
            params={int(k): str(v) for k, v in data.get("params", {}).items()},
            attrs=dict(data.get("attrs", {})),
        )


@dataclass(frozen=True)
class Edge:
    """A tensor flowing from output ``out_port`` of ``src`` to input ``in_port`` of ``dst``."""

    src: int
    dst: int
    shape: tuple[int, ...]
    dtype: str
    out_port: int
    in_port: int

    @property
    def is_integer(self) -> bool:
        """Whether the tensor has an integer or boolean dtype."""
        return self.dtype.startswith(("int", "uint", "bool"))

    def to_dict(self) -> JSONDict:
        """JSON-able form."""
        return {
            "src": self.src,
            "dst": self.dst,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "out_port": self.out_port,
            "in_port": self.in_port,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Edge:
        """Build an edge from :meth:`to_dict` output."""
        return cls(
            src=int(data["src"]),
            dst=int(data["dst"]),
            shape=tuple(int(s) for s in data["shape"]),
            dtype=str(data["dtype"]),
            out_port=int(data["out_port"]),
            in_port=int(data["in_port"]),
        )


class Graph:
    """An immutable traced graph.

    Examples:
        >>> import torch
        >>> from nncf_explore import trace_model
        >>> g = trace_model(torch.nn.Linear(4, 2), {"sample_size": [1, 4]})
        >>> [n.name for n in g.nodes]
        ['/nncf_model_input_0', 'Linear/linear_0', '/nncf_model_output_0']
        >>> g.lint()
    """

    def __init__(self, nodes: Sequence[Node], edges: Sequence[Edge], root_class: str = "") -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.edges: tuple[Edge, ...] = tuple(edges)
        self.root_class = root_class

    # -- lookups -----------------------------------------------------------------
    @cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def _by_normalized_name(self) -> dict[str, Node]:
        return {normalize_node_name(n.name): n for n in self.nodes}

    @cached_property
    def _in_edges(self) -> dict[int, tuple[Edge, ...]]:
        table: dict[int, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            table[e.dst].append(e)
        return {k: tuple(sorted(v, key=lambda e: e.in_port)) for k, v in table.items()}

    @cached_property
    def _out_edges(self) -> dict[int, tuple[Edge, ...]]:
        table: dict[int, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            table[e.src].append(e)
        return {k: tuple(v) for k, v in table.items()}

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> Node | None:
        """The node called ``name`` (NNCF spelling such as ``NNCFConv2d`` accepted), or None."""
        node = self._by_name.get(name)
        if node is None:
            node = self._by_normalized_name.get(normalize_node_name(name))
        return node

    def node(self, key: str | int) -> Node:
        """The node with this name or id; raises :class:`GraphError` with a suggestion if absent."""
        if isinstance(key, int):
            if 0 <= key < len(self.nodes):
                return self.nodes[key]
            raise GraphError(f"node id {key} is out of range: the graph has ids 0..{len(self.nodes) - 1}")
        node = self.find(key)
        if node is None:
            hint = did_you_mean(key, [n.name for n in self.nodes])
            raise GraphError(f"node {key!r} not found in the graph{hint}")
        return node

    def in_edges(self, node_id: int) -> tuple[Edge, ...]:
        """Edges into ``node_id``, sorted by input port."""
        return self._in_edges[node_id]

    def out_edges(self, node_id: int) -> tuple[Edge, ...]:
        """Edges out of ``node_id``, in consumer trace order."""
        return self._out_edges[node_id]

    def predecessors(self, node_id: int) -> list[Node]:
        """Producers of the node's inputs, by input port."""
        return [self.nodes[e.src] for e in self.in_edges(node_id)]

    def successors(self, node_id: int) -> list[Node]:
        """Consumers of the node's outputs, without duplicates, in trace order."""
        seen = dict.fromkeys(e.dst for e in self.out_edges(node_id))
        return [self.nodes[i] for i in seen]

    @property
    def input_nodes(self) -> list[Node]:
        """The ``/nncf_model_input_i`` nodes."""
        return [n for n in self.nodes if n.category is OpCategory.INPUT]

    @property
    def output_nodes(self) -> list[Node]:
        """The ``/nncf_model_output_i`` nodes."""
        return [n for n in self.nodes if n.category is OpCategory.OUTPUT]

    # -- invariants --------------------------------------------------------------
    def lint(self) -> None:
        """Check the graph's invariants; raise :class:`GraphError` naming the first broken one.

        Ids are dense and in order, names unique, every edge goes forward in
        trace order between existing nodes, no input port is fed twice, and
        inputs have no producers while outputs have no consumers.
        """
        names: set[str] = set()
        for i, n in enumerate(self.nodes):
            if n.id != i:
                raise GraphError(f"node {n.name!r} has id {n.id} at position {i}; ids must be dense")
            if n.name in names:
                raise GraphError(f"duplicate node name {n.name!r}")
            names.add(n.name)
        fed: set[tuple[int, int]] = set()
        for e in self.edges:
            if not (0 <= e.src < len(self.nodes) and 0 <= e.dst < len(self.nodes)):
                raise GraphError(f"edge {e} points outside the graph")
            if e.src >= e.dst:
                raise GraphError(
                    f"edge {self.nodes[e.src].name!r} -> {self.nodes[e.dst].name!r} goes backwards"
                )
            if (e.dst, e.in_port) in fed:
                raise GraphError(f"input port {e.in_port} of {self.nodes[e.dst].name!r} is fed twice")
            fed.add((e.dst, e.in_port))
        for n in self.input_nodes:
            if self.in_edges(n.id):
                raise GraphError(f"input node {n.name!r} has a producer")
        for n in self.output_nodes:
            if self.out_edges(n.id):
                raise GraphError(f"output node {n.name!r} has consumers")

    # -- conversions -------------------------------------------------------------
    def to_dict(self) -> JSONDict:
        """JSON-able form; ``Graph.from_dict(g.to_dict()) == g``."""
        return {
            "format": "nncf_explore.graph/1",
            "root_class": self.root_class,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        """Inverse of :meth:`to_dict`."""
        return cls(
            [Node.from_dict(n) for n in data["nodes"]],
            [Edge.from_dict(e) for e in data["edges"]],
            root_class=str(data.get("root_class", "")),
        )

    def to_json(self) -> str:
        """The graph as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (self.nodes, self.edges, self.root_class) == (other.nodes, other.edges, other.root_class)

    def __hash__(self) -> int:
        return hash((self.nodes[:3], len(self.nodes), len(self.edges)))

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph`` keyed by node id, with node and edge attributes."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for n in self.nodes:
            g.add_node(n.id, **n.to_dict())
        for e in self.edges:
            g.add_edge(e.src, e.dst, **e.to_dict())
        return g

    def dump_dot(self, path: str, annotations: Mapping[int, str] | None = None) -> None:
        """Write the graph in NNCF's dot dialect (see :mod:`nncf_explore.graph.dot`)."""
        from nncf_explore.graph.dot import write_dot

        write_dot(self, path, annotations)

    def summary(self) -> str:
        """A short human-readable description: counts by category and the inputs/outputs."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.category.value] = counts.get(n.category.value, 0) + 1
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        weighted = sum(1 for n in self.nodes if n.weight)
        lines = [
            f"Graph of {self.root_class or 'model'}: {len(self.nodes)} nodes, {len(self.edges)} edges, "
            f"{weighted} with weights",
            f"  by category: {parts}",
        ]
        for n in self.input_nodes + self.output_nodes:
            shapes = [e.shape for e in (self.out_edges(n.id) or self.in_edges(n.id))[:1]]
            lines.append(f"  {n.name} {list(shapes[0]) if shapes else ''}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph {self.root_class} nodes={len(self.nodes)} edges={len(self.edges)}>"

    def __str__(self) -> str:
        return self.summary()


NNCFGraph = Graph
"""Alias for users coming from NNCF, whose traced graph class had this name."""


def _frozen_values(attrs: Mapping[str, Any]) -> dict[str, Any]:
    # Layer attributes are tuples (kernel, stride, shapes), and JSON gives lists back: one rule
    # for both keeps ``from_dict(to_dict(g)) == g`` and every value hashable.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items()}
