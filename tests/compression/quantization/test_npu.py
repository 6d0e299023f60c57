"""``target_device`` NPU and CPU_SPR: NNCF's hardware constraints, per quantization point."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.compression.editing import EditSession
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.point_constraints import check_point, point_bits
from nncf_explore.compression.quantization.settings import resolve_settings
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.errors import ConfigError
from nncf_explore.graph import Graph, trace_model
from nncf_explore.graph.ops import OpCategory
from tests import models
from tests.config.conftest import DATA

INPUT = {"sample_size": [1, 3, 32, 32]}
QUANT = {"algorithm": "quantization"}


@pytest.fixture(scope="module")
def resnet_graph() -> Graph:
    return trace_model(models.resnet18(num_classes=10), INPUT)


@pytest.fixture(scope="module")
def mobilenet_graph() -> Graph:
    torch.manual_seed(0)
    return trace_model(models.MobileNetV2(num_classes=10, width=0.5).eval(), INPUT)


def _setup(graph: Graph, device: str, **section: Any) -> QuantizerSetup:
    return build_quantizer_setup(graph, {"target_device": device, "compression": {**QUANT, **section}})


def _manual(bits: int, qid: str) -> dict[str, Any]:
    return {"initializer": {"precision": {"type": "manual", "bitwidth_per_scope": [[bits, qid]]}}}


def _fed_categories(point: QuantizationPoint, graph: Graph) -> set[OpCategory]:
    return {graph.node(name).category for name in point.directly_quantized_ops}


def _depthwise_input(setup: QuantizerSetup, graph: Graph) -> QuantizationPoint:
    return next(
        p for p in setup.activations if _fed_categories(p, graph) == {OpCategory.DEPTHWISE_CONVOLUTION}
    )


def _conv_input(setup: QuantizerSetup, graph: Graph) -> QuantizationPoint:
    """An activation (a ReLU output) that feeds only ordinary convolutions."""
    return next(
        p
        for p in setup.activations
        if "relu" in p.target_node.lower() and _fed_categories(p, graph) == {OpCategory.CONVOLUTION}
    )


# -- placement ---------------------------------------------------------------------------------------


def test_npu_places_the_cpu_points_with_npu_specs(resnet_graph: Graph) -> None:
    cpu, npu = _setup(resnet_graph, "CPU"), _setup(resnet_graph, "NPU")
    assert [p.id for p in npu] == [p.id for p in cpu]
    assert (len(npu.weights), len(npu.activations)) == (21, 30)
    # The overflow fix is CPU-only: NPU keeps 8-bit narrow-range weights (-127..127).
    assert all(p.spec.half_range and not p.spec.narrow_range for p in cpu.weights)
    assert all(p.spec.narrow_range and not p.spec.half_range for p in npu.weights)
    assert all(p.spec.signed is True and p.spec.per_channel for p in npu.weights)
    assert [p.spec for p in npu.activations] == [p.spec for p in cpu.activations]


def test_npu_unifies_the_scales_of_residual_add_inputs(resnet_graph: Graph) -> None:
    cpu, npu = _setup(resnet_graph, "CPU"), _setup(resnet_graph, "NPU")
    assert all(p.unified_group is None for p in cpu)
    groups: dict[int, list[str]] = {}
    for p in npu.activations:
        if p.unified_group is not None:
            groups.setdefault(p.unified_group, []).append(p.id)
    assert len(groups) == 8  # one per BasicBlock: its add's two inputs
    first = groups[0]
    assert first == [
        "ResNet/ReLU[relu]/relu__0|OUTPUT",
        "ResNet/Sequential[layer1]/BasicBlock[0]/BatchNorm2d[bn2]/batch_norm_0|OUTPUT",
    ]


def test_cpu_spr_uses_the_cpu_config(resnet_graph: Graph) -> None:
    assert _setup(resnet_graph, "CPU_SPR").points == _setup(resnet_graph, "CPU").points
    with pytest.raises(ConfigError, match=r"4 bits is not allowed: target_device 'CPU_SPR' uses NNCF's CPU"):
        _setup(resnet_graph, "CPU_SPR", weights={"bits": 4})


def test_cpu_spr_creates_a_model_set_up_like_cpu() -> None:
    def create(device: str) -> QuantizerSetup:
        config = NNCFConfig.from_dict({"input_info": INPUT, "target_device": device, "compression": QUANT})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no init loader: ranges stay at their defaults
            _, qmodel = create_compressed_model(models.resnet18(num_classes=10), config, dump_graphs=False)
        setup: QuantizerSetup = qmodel.nncf.quantizer_setup
        return setup

    spr, cpu = create("CPU_SPR"), create("CPU")
    assert spr.target_device == "CPU_SPR"
    assert spr.points == cpu.points


def test_gpu_has_no_overflow_fix(resnet_graph: Graph) -> None:
    # NNCF applies half range only for the CPU config (reference §5.4); GPU weights are -127..127.
    gpu = _setup(resnet_graph, "GPU")
    assert all(p.spec.narrow_range and not p.spec.half_range for p in gpu.weights)


# -- bits per point ----------------------------------------------------------------------------------


def test_bits_allowed_per_point_on_npu(mobilenet_graph: Graph) -> None:
    settings = resolve_settings({"target_device": "NPU"}, QUANT)
    setup = _setup(mobilenet_graph, "NPU")
    conv_weight = next(
        p for p in setup.weights if mobilenet_graph.node(p.target_node).category is OpCategory.CONVOLUTION
    )
    assert point_bits(conv_weight, mobilenet_graph, settings) == (2, 4, 8)
    assert point_bits(conv_weight.respec(mode="asymmetric"), mobilenet_graph, settings) == (8,)
    assert point_bits(_conv_input(setup, mobilenet_graph), mobilenet_graph, settings) == (4, 8)
    depthwise = _depthwise_input(setup, mobilenet_graph)
    assert depthwise.spec.per_channel  # q8_a_ch, as on CPU
    assert point_bits(depthwise, mobilenet_graph, settings) == (8,)
    assert point_bits(depthwise.respec(per_channel=False), mobilenet_graph, settings) == (8,)
    assert point_bits(
        _conv_input(setup, mobilenet_graph).respec(mode="asymmetric"), mobilenet_graph, settings
    ) == (8,)


def test_edit_session_offers_the_bits_of_each_point() -> None:
    torch.manual_seed(0)
    net = models.MobileNetV2(num_classes=10, width=0.5).eval()
    config = {"input_info": INPUT, "target_device": "NPU", "compression": QUANT}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = EditSession(net, config)
    graph, setup = session.graph, session.setup
    weight = setup.get("MobileNetV2/Sequential[features]/Sequential[0]/Conv2d[0]/conv2d_0|WEIGHT")
    bits, reason = session.allowed_bits(weight)
    assert bits == (2, 4, 8)
    assert reason is not None and "4 and 2 bits symmetric only" in reason
    assert session.allowed_bits(_conv_input(setup, graph))[0] == (4, 8)
    depthwise = _depthwise_input(setup, graph)
    bits, reason = session.allowed_bits(depthwise)
    assert bits == (8,)
    assert reason is not None and "(depthwise convolution) may have 8 bits" in reason
    with pytest.raises(
        ConfigError, match=rf"quantizer '{re.escape(depthwise.id)}': 4 bits is not allowed.*NPU"
    ):
        session.apply(setup.with_points(p.respec(bits=4) if p.id == depthwise.id else p for p in setup))
    session.apply(setup.with_points(p.respec(bits=4) if p.id == weight.id else p for p in setup))
    assert session.setup.get(weight.id).spec.bits == 4


def test_bitwidth_per_scope_4_on_a_conv_weight_is_npu_only(resnet_graph: Graph) -> None:
    qid = "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0|WEIGHT"
    point = _setup(resnet_graph, "NPU", **_manual(4, qid)).get(qid)
    assert (point.spec.bits, point.spec.mode, point.spec.narrow_range, point.spec.half_range) == (
        4,
        "symmetric",
        False,
        False,
    )
    with pytest.raises(
        ConfigError, match=r"bitwidth_per_scope \[4, .*4 bits is not allowed.*\"TRIAL\".*\"NPU\""
    ):
        _setup(resnet_graph, "CPU", **_manual(4, qid))
    two = _setup(resnet_graph, "NPU", **_manual(2, qid)).get(qid)
    assert two.spec.bits == 2


def test_4_bit_depthwise_input_is_refused_on_npu_naming_the_op(mobilenet_graph: Graph) -> None:
    depthwise = _depthwise_input(_setup(mobilenet_graph, "NPU"), mobilenet_graph)
    op = depthwise.directly_quantized_ops[0]
    with pytest.raises(ConfigError) as info:
        _setup(mobilenet_graph, "NPU", **_manual(4, depthwise.id))
    message = str(info.value)
    assert message.startswith(f"quantizer {depthwise.id!r}: 4 bits is not allowed: target_device 'NPU'")
    assert f"feeding {op!r} (depthwise convolution) may have 8 bits" in message
    # A group setting is checked at every point too: the first depthwise input is named.
    with pytest.raises(
        ConfigError, match=r"4 bits is not allowed.*\(depthwise convolution\) may have 8 bits"
    ):
        _setup(mobilenet_graph, "NPU", activations={"bits": 4})


def test_4_bit_activations_before_convolutions_are_symmetric(resnet_graph: Graph) -> None:
    qid = "ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__0|OUTPUT"
    assert _setup(resnet_graph, "NPU", **_manual(4, qid)).get(qid).spec.bits == 4
    with pytest.raises(
        ConfigError, match=r"4 bits is not allowed.*per-tensor asymmetric activation.*may have 8"
    ):
        _setup(resnet_graph, "NPU", activations={"mode": "asymmetric"}, **_manual(4, qid))
    with pytest.raises(ConfigError, match=r"activations.bits: 2 bits is not allowed: target_device 'NPU'"):
        _setup(resnet_graph, "NPU", activations={"bits": 2})  # q2 is for weights only


def test_asymmetric_4_bit_weights_are_refused_on_npu(resnet_graph: Graph) -> None:
    with pytest.raises(
        ConfigError, match=r"4 bits is not allowed.*the asymmetric weight of .* may have 8 bits"
    ):
        _setup(resnet_graph, "NPU", weights={"mode": "asymmetric", "bits": 4})
    assert all(p.spec.bits == 4 for p in _setup(resnet_graph, "NPU", weights={"bits": 4}).weights)


def test_preset_with_npu_is_an_error(resnet_graph: Graph) -> None:
    for preset in ("performance", "mixed"):
        with pytest.raises(
            ConfigError, match=rf"compression.preset: '{preset}' cannot be used with target_device 'NPU'"
        ):
            _setup(resnet_graph, "NPU", preset=preset)


def test_every_placed_point_passes_its_own_check(mobilenet_graph: Graph) -> None:
    settings = resolve_settings({"target_device": "NPU"}, QUANT)
    for point in _setup(mobilenet_graph, "NPU"):
        check_point(point, mobilenet_graph, settings)


# -- NNCF's mixed-precision example ------------------------------------------------------------------


def _hawq_example(num_classes: int = 10) -> NNCFConfig:
    """NNCF's ``resnet50_imagenet_mixed_int_hawq.json`` at a small input, with a short trace budget."""
    data = json.loads((DATA / "resnet50_imagenet_mixed_int_hawq.json").read_text())
    data["input_info"] = {"sample_size": [1, 3, 16, 16]}  # small: the Hessian traces dominate the cost
    data["compression"]["initializer"]["precision"].update(num_data_points=2, iter_number=1)
    data["compression"]["initializer"]["batchnorm_adaptation"] = {"num_bn_adaptation_samples": 0}
    assert (
        data["target_device"] == "NPU" and data["compression"]["initializer"]["precision"]["type"] == "hawq"
    )
    config = NNCFConfig.from_dict(data)
    g = torch.Generator().manual_seed(0)
    loader = [
        (torch.randn(2, 3, 16, 16, generator=g), torch.randint(0, num_classes, (2,), generator=g))
        for _ in range(1)
    ]
    return register_default_init_args(config, loader, criterion=nn.CrossEntropyLoss())


@pytest.mark.parametrize(
    "make",
    [lambda: models.resnet18(num_classes=10), lambda: models.MobileNetV2(10, 0.5).eval()],
    ids=["resnet18", "mobilenet_v2"],
)
def test_nncf_npu_hawq_example_creates_with_bits_the_hardware_allows(make: Any) -> None:
    torch.manual_seed(0)
    _, qmodel = create_compressed_model(make(), _hawq_example(), dump_graphs=False)
    setup: QuantizerSetup = qmodel.nncf.quantizer_setup
    graph = qmodel.nncf.get_original_graph()
    settings = resolve_settings({"target_device": "NPU"}, QUANT)
    assert setup.target_device == "NPU"
    assert {p.spec.bits for p in setup} <= {4, 8}
    assert any(p.spec.bits == 4 for p in setup.weights)  # compression_ratio 1.4 needs some 4-bit weights
    for point in setup:
        check_point(point, graph, settings)  # e.g. depthwise inputs stay 8-bit


class TwoAdds(nn.Module):
    """One ReLU output is an input of two additions, each with another branch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.left, self.right = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = torch.relu(self.stem(x))
        return (shared + torch.relu(self.left(x))) * (shared + torch.relu(self.right(x)))


def test_a_tensor_feeding_two_unified_adds_joins_both_groups() -> None:
    graph = trace_model(TwoAdds(), {"sample_size": [1, 3, 4, 4]})
    groups: dict[int, set[str]] = {}
    for p in _setup(graph, "NPU").activations:
        if p.unified_group is not None:
            groups.setdefault(p.unified_group, set()).add(p.target_node.split("/")[-1])
    # relu_0 (shared) merges the requests of both adds, so all three ReLU outputs share one scale.
    assert sorted(map(sorted, groups.values())) == [
        ["__add___0", "__add___1"],
        ["relu_0", "relu_1", "relu_2"],
    ]


class SharedScaleDepthwise(nn.Module):
    """``a + b`` unifies a and b on NPU; ``a`` also feeds a depthwise convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.one, self.two = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.relu(self.one(x)), torch.relu(self.two(x))
        return torch.cat([self.dw(a), a + b], dim=1)


def test_the_menu_of_a_unified_point_is_what_every_member_allows() -> None:
    config = {"input_info": {"sample_size": [1, 3, 4, 4]}, "target_device": "NPU", "compression": QUANT}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = EditSession(SharedScaleDepthwise(), config)
    b = session.setup.get("SharedScaleDepthwise/relu_1|OUTPUT")
    a = session.setup.get("SharedScaleDepthwise/relu_0|OUTPUT")
    assert a.unified_group is not None and a.unified_group == b.unified_group
    assert point_bits(b, session.graph, resolve_settings({"target_device": "NPU"}, QUANT)) == (
        4,
        8,
    )  # alone, b could take 4 bits
    bits, reason = session.allowed_bits(b)
    assert bits == (8,)
    assert (
        reason is not None and "'SharedScaleDepthwise/Conv2d[dw]/conv2d_0' (depthwise convolution)" in reason
    )


def test_a_width_given_to_one_unified_member_applies_to_its_group(resnet_graph: Graph) -> None:
    # The second member: before, the group took the first member's 8 bits and the entry did nothing.
    second = "ResNet/Sequential[layer1]/BasicBlock[0]/BatchNorm2d[bn2]/batch_norm_0|OUTPUT"
    setup = _setup(resnet_graph, "NPU", **_manual(4, second))
    group = setup.get(second).unified_group
    members = [p for p in setup if group is not None and p.unified_group == group]
    assert [p.id for p in members] == ["ResNet/ReLU[relu]/relu__0|OUTPUT", second]
    assert all(p.spec.bits == 4 for p in members)
