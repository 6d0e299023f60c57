"""Channel dependency groups: which filters are pruned together, and which cannot be pruned."""

from __future__ import annotations

import pytest
from torch import nn

from nncf_explore.compression.pruning.groups import (
    ChannelAnalysis,
    PruningRules,
    Segment,
    analyse_channels,
)
from nncf_explore.graph.trace import trace_model
from tests.compression.pruning.nets import (
    SIZE,
    Concat,
    Depthwise,
    Permuted,
    Residual,
    Shifted,
    SqueezeExcite,
    node_named,
)
from tests.models import MobileNetV2, resnet18


def analyse(
    model: nn.Module, size: list[int] | None = None, **rules: object
) -> tuple[object, ChannelAnalysis]:
    graph = trace_model(model, {"sample_size": size or SIZE})
    return graph, analyse_channels(graph, PruningRules(**rules))  # type: ignore[arg-type]


def sources(analysis: ChannelAnalysis, graph: object, module: str) -> tuple[list[str], bool, list[str]]:
    group = analysis.group(node_named(graph, module))
    assert group is not None
    modules = sorted(name.split("/")[-2].split("[")[1].rstrip("]") for name in group.sources)
    return modules, group.prunable, group.blocked


def test_residual_add_joins_the_convolutions_that_meet_in_it() -> None:
    graph, analysis = analyse(Residual(), prune_first_conv=True)
    assert sources(analysis, graph, "conv2")[:2] == (["conv2", "stem"], True)
    assert sources(analysis, graph, "conv1")[:2] == (["conv1"], True)


def test_the_first_convolution_blocks_its_whole_group_unless_prune_first_conv() -> None:
    graph, analysis = analyse(Residual())
    members, prunable, blocked = sources(analysis, graph, "conv2")
    assert members == ["conv2", "stem"] and not prunable
    assert "the first convolution (set prune_first_conv to prune it)" in blocked[0]


def test_the_layer_feeding_the_output_is_not_pruned() -> None:
    graph, analysis = analyse(Residual())
    _, prunable, blocked = sources(analysis, graph, "fc")
    assert not prunable and "the model output" in blocked[0]


def test_depthwise_convolution_and_batchnorm_follow_their_producer() -> None:
    graph, analysis = analyse(Depthwise())
    expand = analysis.group(node_named(graph, "expand"))
    assert expand is not None and expand.prunable
    for module in ("bn1", "dw", "bn2"):
        name = node_named(graph, module)
        assert name in analysis.followers
        assert analysis.inputs[name] == (Segment(expand.id, 8),)
    # the projection consumes the depthwise output, so it loses the expand group's channels
    assert analysis.inputs[node_named(graph, "project")] == (Segment(expand.id, 8),)


def test_group_convolution_that_is_not_depthwise_is_not_pruned_nor_its_producer() -> None:
    graph, analysis = analyse(Depthwise(groups=2))
    _, prunable, blocked = sources(analysis, graph, "dw")
    assert not prunable and "group convolution that is not depthwise" in blocked[0]
    _, prunable, blocked = sources(analysis, graph, "expand")
    assert not prunable and "a group convolution that is not depthwise" in blocked[0]


def test_linear_after_flatten_sees_each_channel_as_a_block_of_features() -> None:
    graph, analysis = analyse(Depthwise())
    project = analysis.group(node_named(graph, "project"))
    assert project is not None and project.prunable
    assert analysis.inputs[node_named(graph, "fc")] == (Segment(project.id, 6, repeat=16),)


def test_concat_producers_are_independent_and_consumers_see_the_union() -> None:
    graph, analysis = analyse(Concat())
    a, b = analysis.group(node_named(graph, "a")), analysis.group(node_named(graph, "b"))
    assert a is not None and b is not None and a.id != b.id and a.prunable and b.prunable
    union = (Segment(a.id, 6), Segment(b.id, 4))
    assert analysis.inputs[node_named(graph, "bn")] == union
    assert analysis.inputs[node_named(graph, "conv")] == union


def test_an_op_that_moves_channels_blocks_the_groups_reaching_it() -> None:
    graph, analysis = analyse(Permuted())
    _, prunable, blocked = sources(analysis, graph, "conv")
    assert not prunable and "'permute'" in blocked[0] and "pruning cannot follow" in blocked[0]


@pytest.mark.parametrize(("downsample", "expected"), [(False, False), (True, True)])
def test_strided_downsample_convs_and_their_groups_follow_prune_downsample_convs(
    downsample: bool, expected: bool
) -> None:
    graph, analysis = analyse(resnet18(10), [1, 3, 32, 32], prune_downsample_convs=downsample)
    members, prunable, blocked = sources(analysis, graph, "layer2.0.downsample.0")
    assert members == ["0", "conv2", "conv2"] and prunable is expected
    if not downsample:
        assert "a downsampling convolution (stride > 1" in blocked[0]
    # a stride-1 conv inside a block is prunable either way
    assert sources(analysis, graph, "layer2.1.conv1")[1]


def test_excluded_layers_are_not_pruned() -> None:
    graph, analysis = analyse(Residual(), excluded=lambda name: "conv1" in name)
    _, prunable, blocked = sources(analysis, graph, "conv1")
    assert not prunable and "excluded by ignored_scopes/target_scopes" in blocked[0]


def test_mobilenet_v2_residual_projections_are_grouped() -> None:
    graph, analysis = analyse(MobileNetV2(10), [1, 3, 32, 32])
    members, prunable, _ = sources(analysis, graph, "features.4.conv.6")
    assert members == ["6", "6", "6"] and prunable
    assert node_named(graph, "features.4.conv.3") in analysis.followers  # the depthwise conv


def test_channels_that_a_constant_is_added_to_are_not_pruned() -> None:
    # relu(conv(x) + 1) is 1, not 0, on a pruned channel: the next conv could not drop it
    graph, analysis = analyse(Shifted())
    _, prunable, blocked = sources(analysis, graph, "conv")
    assert not prunable and "its pruned channels are not zero where" in blocked[0] and "head" in blocked[0]


def test_a_sigmoid_gate_multiplied_in_joins_the_group_and_stays_prunable() -> None:
    graph, analysis = analyse(SqueezeExcite())
    members, prunable, _ = sources(analysis, graph, "conv")
    assert members == ["conv", "expand"] and prunable
