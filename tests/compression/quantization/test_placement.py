"""Placement against NNCF 2.19's own results (golden file and reference counts)."""

from __future__ import annotations

import json

import pytest

from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.errors import ConfigError
from nncf_explore.graph import Graph, normalize_node_name, trace_model
from tests import models
from tests.data import NNCF_RESNET18_GOLDEN

QUANT = {"algorithm": "quantization"}


@pytest.fixture(scope="module")
def resnet_graph() -> Graph:
    return trace_model(models.resnet18(), {"sample_size": [1, 3, 32, 32]})


def _golden_key(d: dict) -> tuple:
    return (
        d["kind"],
        normalize_node_name(d["target_node"]),
        d["input_port"] if d["kind"] == "activation" else None,
        d["bits"],
        d["mode"],
        d["per_channel"],
        tuple(d["scale_shape"]),
        d["narrow_range"],
        d["half_range"],
        tuple(sorted(normalize_node_name(x) for x in d["directly_quantized_ops"])),
    )


def test_resnet18_points_equal_nncf_golden() -> None:
    golden = json.loads(NNCF_RESNET18_GOLDEN.read_text())
    graph = trace_model(models.resnet18(), golden["config"]["input_info"])
    setup = build_quantizer_setup(graph, golden["config"])
    ours = {
        (
            p.kind,
            p.target_node,
            p.input_port if p.kind == "activation" else None,
            p.spec.bits,
            p.spec.mode,
            p.spec.per_channel,
            p.scale_shape,
            p.spec.narrow_range,
            p.spec.half_range,
            tuple(sorted(p.directly_quantized_ops)),
        )
        for p in setup
    }
    assert (len(setup.weights), len(setup.activations)) == (21, 30)
    assert ours == {_golden_key(d) for d in golden["quantization_points"]}
    assert all(p.spec.signed is True for p in setup.weights)  # CPU config forces signed weights
    assert all(p.spec.signed is None for p in setup.activations)  # from statistics


@pytest.mark.parametrize(
    ("config", "counts"),
    [
        ({"compression": {**QUANT, "quantize_inputs": False}}, (21, 29)),
        (
            {
                "ignored_scopes": ["{re}ResNet/Sequential\\[layer3\\].*"],
                "compression": {**QUANT, "ignored_scopes": ["{re}ResNet/Sequential\\[layer3\\].*"]},
            },
            (16, 23),
        ),
        (
            {
                "compression": {
                    **QUANT,
                    "activations": {"mode": "asymmetric"},
                    "weights": {"mode": "asymmetric"},
                }
            },
            (21, 30),
        ),
    ],
)
def test_resnet18_variants_match_nncf_reference_counts(
    resnet_graph: Graph, config: dict, counts: tuple
) -> None:
    setup = build_quantizer_setup(resnet_graph, config)
    assert (len(setup.weights), len(setup.activations)) == counts


def test_mobilenet_v2_depthwise_inputs_are_per_channel() -> None:
    graph = trace_model(models.MobileNetV2().eval(), {"sample_size": [2, 3, 32, 32]})
    setup = build_quantizer_setup(graph, {"compression": QUANT})
    # NNCF's reference quantized/hw/CPU/mobilenet_v2: 53 weight and 64 activation quantizers, 17 per channel
    assert (len(setup.weights), len(setup.activations)) == (53, 64)
    per_channel = [p for p in setup.activations if p.spec.per_channel]
    assert len(per_channel) == 17
    assert all(p.scale_shape[0] == 1 and p.scale_shape[1] > 1 and p.channel_axis == 1 for p in per_channel)


def test_presets_and_trial(resnet_graph: Graph) -> None:
    mixed = build_quantizer_setup(resnet_graph, {"compression": {**QUANT, "preset": "mixed"}})
    assert {p.spec.mode for p in mixed.weights} == {"symmetric"}
    assert {p.spec.mode for p in mixed.activations} == {"asymmetric"}
    trial = build_quantizer_setup(resnet_graph, {"target_device": "TRIAL", "compression": QUANT})
    w = trial.weights[0].spec
    assert (w.per_channel, w.narrow_range, w.half_range, w.bits) == (False, True, False, 8)
    four = build_quantizer_setup(
        resnet_graph,
        {"target_device": "TRIAL", "compression": {**QUANT, "weights": {"bits": 4, "per_channel": True}}},
    )
    assert {(p.spec.bits, p.spec.narrow_range, p.spec.per_channel) for p in four.weights} == {
        (4, False, True)
    }


def test_overflow_fix_modes(resnet_graph: Graph) -> None:
    first = build_quantizer_setup(
        resnet_graph, {"compression": {**QUANT, "overflow_fix": "first_layer_only"}}
    )
    assert [p.spec.half_range for p in first.weights][:2] == [True, False]
    off = build_quantizer_setup(resnet_graph, {"compression": {**QUANT, "overflow_fix": "disable"}})
    assert all(p.spec.narrow_range and not p.spec.half_range for p in off.weights)


def test_scope_overrides_and_manual_precision(resnet_graph: Graph) -> None:
    conv = "ResNet/NNCFConv2d[conv1]/conv2d_0"  # NNCF spelling matches our Conv2d
    config = {
        "target_device": "TRIAL",
        "compression": {
            **QUANT,
            "scope_overrides": {
                "weights": {conv: {"mode": "asymmetric"}},
                "activations": {"{re}.*layer4.*": {"bits": 6}},
            },
            "initializer": {
                "precision": {
                    "type": "manual",
                    "bitwidth_per_scope": [[4, f"{conv}|WEIGHT"], [2, "/nncf_model_input_0|OUTPUT"]],
                }
            },
        },
    }
    setup = build_quantizer_setup(resnet_graph, config)
    w = setup.get("ResNet/Conv2d[conv1]/conv2d_0|WEIGHT").spec
    assert (w.bits, w.mode) == (4, "asymmetric")
    assert setup.get("/nncf_model_input_0|OUTPUT").spec.bits == 2
    layer4 = [p for p in setup.activations if "layer4" in p.id]
    assert layer4 and all(p.spec.bits == 6 for p in layer4)


def test_ignored_scopes_weights_activations_and_quantizer_ids(resnet_graph: Graph) -> None:
    fc = "ResNet/Linear[fc]/linear_0"
    config = {
        "compression": {
            **QUANT,
            "weights": {"ignored_scopes": [fc]},
            "activations": {
                "ignored_scopes": ["ResNet/AdaptiveAvgPool2d[avgpool]/adaptive_avg_pool2d_0|OUTPUT"]
            },
        }
    }
    setup = build_quantizer_setup(resnet_graph, config)
    assert f"{fc}|WEIGHT" not in setup
    assert "ResNet/AdaptiveAvgPool2d[avgpool]/adaptive_avg_pool2d_0|OUTPUT" not in setup
    assert (len(setup.weights), len(setup.activations)) == (20, 29)
    target = build_quantizer_setup(resnet_graph, {"compression": {**QUANT, "target_scopes": ["{re}layer1"]}})
    assert all("layer1" in p.target_node for p in target.weights) and len(target.weights) == 4


def test_unmatched_scope_raises_with_close_match(resnet_graph: Graph) -> None:
    config = {"compression": {**QUANT, "ignored_scopes": ["ResNet/Conv2d[conv9]/conv2d_0"]}}
    with pytest.raises(
        ConfigError,
        match=r"compression.ignored_scopes.*conv9.*did you mean 'ResNet/Conv2d\[conv1\]/conv2d_0'",
    ):
        build_quantizer_setup(resnet_graph, config)
    config["compression"]["validate_scopes"] = False
    assert len(build_quantizer_setup(resnet_graph, config)) == 51


def test_hardware_constraints_name_the_fix(resnet_graph: Graph) -> None:
    with pytest.raises(ConfigError, match="weights.bits.*4 bits is not allowed.*TRIAL"):
        build_quantizer_setup(resnet_graph, {"compression": {**QUANT, "weights": {"bits": 4}}})
    with pytest.raises(ConfigError, match="bitwidth_per_scope.*TRIAL"):
        build_quantizer_setup(
            resnet_graph,
            {
                "compression": {
                    **QUANT,
                    "initializer": {
                        "precision": {
                            "type": "manual",
                            "bitwidth_per_scope": [[4, "/nncf_model_input_0|OUTPUT"]],
                        }
                    },
                }
            },
        )
    with pytest.raises(ConfigError, match="per_channel.*TRIAL"):
        build_quantizer_setup(resnet_graph, {"compression": {**QUANT, "activations": {"per_channel": True}}})
    with pytest.raises(ConfigError, match="'VPU' is not supported.*'NPU'"):  # CPU_SPR is supported now
        build_quantizer_setup(resnet_graph, {"target_device": "VPU", "compression": QUANT})
    with pytest.raises(ConfigError, match=r"matches no quantizer.*did you mean"):
        build_quantizer_setup(
            resnet_graph,
            {
                "target_device": "TRIAL",
                "compression": {
                    **QUANT,
                    "initializer": {
                        "precision": {"bitwidth_per_scope": [[4, "ResNet/Conv2d[conv2]/conv2d_0|WEIGHT"]]}
                    },
                },
            },
        )


def test_attention_projections_and_matmul_inputs_are_quantized() -> None:
    graph = trace_model(models.TinyTransformer().eval(), {"sample_size": [2, 5], "type": "long"})
    setup = build_quantizer_setup(graph, {"compression": QUANT})
    params = {p.weight_param for p in setup.weights}
    assert {
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.layers.0.self_attn.out_proj.weight",
        "emb.weight",
    } <= params
    sdpa = [n.name for n in graph.nodes if n.op == "scaled_dot_product_attention"]
    fed = {op for p in setup.activations for op in p.directly_quantized_ops}
    assert set(sdpa) <= fed  # q, k and v enter the attention kernel quantized
    assert not any(p.id.startswith("/nncf_model_input") for p in setup.activations)  # integer tokens


def test_concat_of_conv_outputs_shares_one_scale() -> None:
    import torch
    from torch import nn

    class CatNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(torch.cat([self.a(x), self.b(x)], 1))

    graph = trace_model(CatNet(), {"sample_size": [1, 3, 4, 4]})
    setup = build_quantizer_setup(graph, {"compression": QUANT})
    unified = [p for p in setup.activations if p.unified_group is not None]
    assert sorted(p.target_node for p in unified) == [
        "CatNet/Conv2d[a]/conv2d_0",
        "CatNet/Conv2d[b]/conv2d_0",
    ]
    assert len({p.unified_group for p in unified}) == 1
    assert len(setup.group_members(unified[0].id)) == 2
