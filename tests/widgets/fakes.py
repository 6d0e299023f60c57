"""A fake :class:`ExplorerSession` and a synthetic large graph, for widget tests and benchmarks.

Neither needs torch: ``synthetic_graph`` builds a ResNet-like ``Graph`` of
chained residual blocks directly, and ``FakeSession`` places a weight
quantizer on every conv/linear node and an activation quantizer at the input
and after every ReLU (plus a unified pair before every residual add).
"""

from __future__ import annotations

import math
from typing import Any

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Edge, Graph, Node
from nncf_explore.graph.ops import OpCategory

BLOCK_NODES = 7  # conv, bn, relu, conv, bn, add, relu
ALL_BITS = (2, 3, 4, 5, 6, 7, 8)


class _Builder:
    def __init__(self, root: str) -> None:
        self.root = root
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.calls: dict[str, int] = {}

    def add(
        self, op: str, category: OpCategory, path: list[tuple[str, str]], inputs: list[int], **attrs: Any
    ) -> int:
        """Add a node called from module ``path`` (``[(class, attr), ...]``) fed by ``inputs``."""
        scope = "/".join([self.root] + [f"{cls}[{attr}]" for cls, attr in path])
        module = ".".join(attr for _, attr in path)
        key = f"{scope}/{op}"
        index = self.calls.get(key, 0)
        self.calls[key] = index + 1
        node_id = len(self.nodes)
        params: dict[int, str] = {}
        if attrs.get("has_weight"):
            params[1] = f"{module}.weight"
        self.nodes.append(
            Node(
                id=node_id,
                name=f"{scope}/{op}_{index}"
                if path or op not in ("nncf_model_input", "nncf_model_output")
                else f"/{op}_{index}",
                op=op,
                category=category,
                scope=scope
                if path
                else (self.root if category not in (OpCategory.INPUT, OpCategory.OUTPUT) else ""),
                module=module,
                module_class=path[-1][0]
                if path
                else ("" if category in (OpCategory.INPUT, OpCategory.OUTPUT) else self.root),
                params=params,
                attrs={"has_weight": False, **attrs},
            )
        )
        for port, src in enumerate(inputs):
            self.edges.append(Edge(src, node_id, (1, 16, 8, 8), "float32", 0, port))
        return node_id


def _conv(b: _Builder, path: list[tuple[str, str]], src: int, channels: int) -> int:
    return b.add(
        "conv2d",
        OpCategory.CONVOLUTION,
        path,
        [src],
        has_weight=True,
        weight_port=1,
        weight_shape=(channels, channels, 3, 3),
        in_channels=channels,
        out_channels=channels,
        kernel_size=(3, 3),
    )


def _block(b: _Builder, prefix: list[tuple[str, str]], src: int, channels: int) -> int:
    c1 = _conv(b, [*prefix, ("Conv2d", "conv1")], src, channels)
    n1 = b.add("batch_norm", OpCategory.NORMALIZATION, [*prefix, ("BatchNorm2d", "bn1")], [c1])
    r1 = b.add("relu_", OpCategory.ACTIVATION, [*prefix, ("ReLU", "relu")], [n1])
    c2 = _conv(b, [*prefix, ("Conv2d", "conv2")], r1, channels)
    n2 = b.add("batch_norm", OpCategory.NORMALIZATION, [*prefix, ("BatchNorm2d", "bn2")], [c2])
    add = b.add("__iadd__", OpCategory.ELEMENTWISE, prefix, [n2, src])
    return b.add("relu_", OpCategory.ACTIVATION, [*prefix, ("ReLU", "relu")], [add])


def synthetic_graph(n_nodes: int = 5000, blocks_per_stage: int = 64) -> Graph:
    """A ResNet-like graph of about ``n_nodes`` nodes: stages of residual blocks, then a linear head.

    Module FQNs look like ``stages.3.blocks.17.conv1``, so collapsing by module
    hierarchy has three levels (stage, block, layer).
    """
    b = _Builder("SynthNet")
    x = b.add("nncf_model_input", OpCategory.INPUT, [], [])
    x = _conv(b, [("Conv2d", "stem")], x, 16)
    n_blocks = max(1, (n_nodes - 6) // BLOCK_NODES)
    for i in range(n_blocks):
        stage, block = divmod(i, blocks_per_stage)
        prefix = [
            ("ModuleList", "stages"),
            ("Stage", str(stage)),
            ("ModuleList", "blocks"),
            ("Block", str(block)),
        ]
        # "stages" alone is a trivial group (it holds everything the stages do).
        x = _block(b, prefix, x, 16)
    x = b.add("adaptive_avg_pool2d", OpCategory.POOLING, [("AdaptiveAvgPool2d", "pool")], [x])
    x = b.add("flatten", OpCategory.RESHAPE, [], [x])
    x = b.add(
        "linear",
        OpCategory.LINEAR,
        [("Linear", "fc")],
        [x],
        has_weight=True,
        weight_port=1,
        weight_shape=(10, 16),
        in_features=16,
        out_features=10,
    )
    b.add("nncf_model_output", OpCategory.OUTPUT, [], [x])
    graph = Graph(b.nodes, b.edges, root_class="SynthNet")
    graph.lint()
    return graph


def default_setup_for(graph: Graph, target_device: str = "ANY", unified_adds: bool = True) -> QuantizerSetup:
    """A weight point per conv/linear, an activation point at the input and after each ReLU."""
    weights: list[QuantizationPoint] = []
    activations: list[QuantizationPoint] = []
    group = 0
    for node in graph.nodes:
        if node.category in (OpCategory.CONVOLUTION, OpCategory.LINEAR):
            shape = tuple(node.attrs.get("weight_shape", (1,)))
            weights.append(
                QuantizationPoint(
                    "weight",
                    node.name,
                    None,
                    QuantizerSpec(bits=8, mode="symmetric", per_channel=True, signed=True, narrow_range=True),
                    scale_shape=(shape[0],) + (1,) * (len(shape) - 1),
                    channel_axis=0,
                    weight_param=node.weight,
                    directly_quantized_ops=(node.name,),
                )
            )
        after = node.category is OpCategory.INPUT or node.op.startswith("relu")
        if after and graph.out_edges(node.id):
            consumers = tuple(n.name for n in graph.successors(node.id))
            activations.append(
                QuantizationPoint(
                    "activation", node.name, None, QuantizerSpec(), directly_quantized_ops=consumers
                )
            )
        if unified_adds and node.op == "__iadd__":
            group += 1
            for port in (0, 1):
                activations.append(
                    QuantizationPoint(
                        "activation",
                        node.name,
                        port,
                        QuantizerSpec(),
                        directly_quantized_ops=(node.name,),
                        unified_group=group,
                    )
                )
    return QuantizerSetup(tuple(weights + activations), target_device)


class FakeSession:
    """An :class:`ExplorerSession` with no model behind it.

    Attributes:
        fail_next: An exception the next :meth:`apply` raises (then cleared).
        applied: Every setup applied successfully, in order.
        reasons: ``unquantized_reason`` answers by node name.
    """

    def __init__(self, graph: Graph, target_device: str = "ANY", unified_adds: bool = True) -> None:
        self._graph = graph
        self._unified_adds = unified_adds
        self._defaults: dict[str, QuantizerSetup] = {}
        self._setup = self.default_for(target_device)
        self.fail_next: Exception | None = None
        self.applied: list[QuantizerSetup] = []
        self.reasons: dict[str, str] = {}
        self.metric_calls = 0

    def default_for(self, target_device: str) -> QuantizerSetup:
        if target_device not in self._defaults:
            self._defaults[target_device] = default_setup_for(self._graph, target_device, self._unified_adds)
        return self._defaults[target_device]

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def default_setup(self) -> QuantizerSetup:
        return self.default_for(self._setup.target_device)

    @property
    def setup(self) -> QuantizerSetup:
        return self._setup

    def _bits_for(self, device: str) -> tuple[tuple[int, ...], str | None]:
        if device == "CPU":
            return (
                8,
            ), "target_device 'CPU' uses NNCF's CPU hardware config, which allows only 8-bit quantizers"
        return ALL_BITS, None

    def allowed_bits(self, point: QuantizationPoint) -> tuple[tuple[int, ...], str | None]:
        return self._bits_for(self._setup.target_device)

    def apply(self, setup: QuantizerSetup) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        known = self.default_for(setup.target_device)
        bits, reason = self._bits_for(setup.target_device)
        for p in setup:
            if p.id not in known:
                raise ConfigError(f"quantizer {p.id!r} cannot be placed")
            if p.spec.bits not in bits:
                raise ConfigError(f"{p.id}: {p.spec.bits} bits not allowed; {reason}")
        self._setup = setup
        self.applied.append(setup)

    def config_json(self) -> dict[str, Any]:
        on = {p.id for p in self._setup}
        default = self.default_setup
        off_nodes = sorted({p.target_node for p in default if p.id not in on})
        per_scope = [[p.spec.bits, p.id] for p in self._setup if p.spec.bits != 8]
        algo: dict[str, Any] = {"algorithm": "quantization"}
        if off_nodes:
            algo["ignored_scopes"] = off_nodes
        if per_scope:
            algo["initializer"] = {"precision": {"type": "manual", "bitwidth_per_scope": per_scope}}
        config: dict[str, Any] = {"input_info": {"sample_size": [1, 3, 32, 32]}}
        if self._setup.target_device != "ANY":
            config["target_device"] = self._setup.target_device
        config["compression"] = algo
        return config

    def weight_memory_bytes(self, setup: QuantizerSetup) -> int:
        bits = {p.target_node: p.spec.bits for p in setup if p.kind == "weight"}
        total = 0.0
        for node in self._graph.nodes:
            if node.category in (OpCategory.CONVOLUTION, OpCategory.LINEAR):
                numel = math.prod(node.attrs.get("weight_shape", (1,)))
                total += numel * bits.get(node.name, 32) / 8
        return int(total)

    def eval_metric(self) -> float | None:
        self.metric_calls += 1
        loss = sum(8 - p.spec.bits for p in self._setup.weights) * 0.002
        return round(0.76 - loss - 0.0005 * len(self._setup.activations), 6)

    def unquantized_reason(self, node: Node) -> str | None:
        return self.reasons.get(node.name)


class FakeAblation:
    """A metric ablation over the fake's weight quantizers: instant, deterministic, cancellable."""

    def __init__(self, setup: QuantizerSetup, stop_after: int | None = None) -> None:
        self.groups: list[tuple[str, ...]] = [(p.id,) for p in setup.weights]
        self.results: dict[str, float] = {}
        self.stop_after = stop_after
        self.cancelled = False

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.groups)

    def run(self, *, max_seconds: float | None = None, progress: bool = True) -> bool:
        for i, (qid,) in enumerate(self.groups):
            if self.cancelled or (self.stop_after is not None and i >= self.stop_after):
                break
            self.results[qid] = 0.001 * (i % 7)
        return self.done

    def cancel(self) -> None:
        self.cancelled = True


class FakeSensitivity:
    """A :class:`SensitivitySource` with deterministic values from node positions (no model)."""

    def __init__(self, session: FakeSession, has_metric: bool = True) -> None:
        self.session = session
        self.has_metric = has_metric
        self.calls: list[str] = []
        self._ablation: FakeAblation | None = None
        self.ablation_stop_after: int | None = None

    def _node_rank(self) -> dict[str, int]:
        return {n.name: n.id for n in self.session.graph.nodes}

    def node_values(self, measure: str) -> dict[str, float]:
        self.calls.append(measure)
        rank = self._node_rank()
        nodes = sorted({p.target_node for p in self.session.setup}, key=rank.__getitem__)
        if measure == "metric_drop":
            done = self.ablation().results
            weights = {p.id: p.target_node for p in self.session.setup.weights}
            return {weights[q]: v for q, v in done.items() if q in weights}
        if measure == "hessian_trace":
            return {n: float(rank[n] % 11) for n in nodes}
        base = 40.0 if measure == "sqnr_db" else 30.0
        return {n: base - (rank[n] % 13) for n in nodes}

    def tensor_error(self, qid: str) -> Any:
        from types import SimpleNamespace

        if qid not in self.session.setup:
            return None
        sample = tuple(math.sin(i) for i in range(200))
        quantized = tuple(round(v * 4) / 4 for v in sample)
        return SimpleNamespace(sample=sample, quantized_sample=quantized, clip_range=(-0.9, 0.9))

    def ablation(self) -> FakeAblation:
        if self._ablation is None:
            self._ablation = FakeAblation(self.session.setup, self.ablation_stop_after)
        return self._ablation

    def front(self, candidates: Any, cost: str, loss: str) -> Any:
        from nncf_explore.compression.precision.mixed_precision import mixed_precision_front

        self.calls.append(f"front:{cost}:{loss}")
        setup = self.session.setup
        losses = {
            p.id: {b: (8 - b) * (1 + i % 5) * 0.01 for b in candidates} for i, p in enumerate(setup.weights)
        }
        return mixed_precision_front(self.session.graph, setup, losses, list(candidates), cost=cost)  # type: ignore[arg-type]


def with_sensitivity(session: FakeSession, has_metric: bool = True) -> FakeSensitivity:
    """Give ``session`` the optional ``sensitivity()`` hook; return the fake source."""
    source = FakeSensitivity(session, has_metric)
    session.sensitivity = lambda: source  # type: ignore[attr-defined]
    return source
