"""The filter pruning controller: masks against eager PyTorch, ranking, schedules, statistics, state."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from nncf_explore import CompressionStage, ConfigError, create_compressed_model
from nncf_explore.compression.pruning.schedule import scheduled_level
from tests.compression.pruning.nets import (
    Concat,
    Depthwise,
    Residual,
    compress,
    pruning_config,
    randomise_batchnorms,
)
from tests.models import MobileNetV2

X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def eager_pruned(model: nn.Module, pruned: dict[str, list[int]]) -> nn.Module:
    """A copy of ``model`` with the listed output channels zeroed by hand in plain PyTorch."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for module_name, channels in pruned.items():
            module = out.get_submodule(module_name)
            for param in (module.weight, getattr(module, "bias", None)):
                if param is not None:
                    param[channels] = 0
    return out


def dropped(flags: list[bool]) -> list[int]:
    return [i for i, keep in enumerate(flags) if not keep]


def group_flags(ctrl: object, module: str) -> list[bool]:
    """Keep flags of the group of the layer whose node name contains ``[module]``."""
    name = next(n for n in ctrl.analysis.group_of if f"[{module}]" in n)  # type: ignore[attr-defined]
    return ctrl.masks.flags()[ctrl.analysis.group_of[name]]  # type: ignore[attr-defined,no-any-return]


def test_masked_model_equals_eager_pytorch_with_the_filters_zeroed() -> None:
    model = randomise_batchnorms(Residual())
    ctrl, net = compress(model, pruning_config(prune_first_conv=True, pruning_init=0.5))
    residual, conv1, head = (dropped(group_flags(ctrl, m)) for m in ("conv2", "conv1", "head"))
    assert (len(residual), len(conv1), len(head)) == (4, 4, 3)
    pruned = {
        "stem": residual,
        "conv2": residual,
        "bn2": residual,
        "conv1": conv1,
        "bn1": conv1,
        "head": head,
    }
    reference = eager_pruned(model, pruned)
    net.eval()
    torch.testing.assert_close(net(X), reference(X))
    assert not torch.allclose(net(X), model(X))


def test_depthwise_and_batchnorm_masks_follow_the_producer() -> None:
    ctrl, _ = compress(randomise_batchnorms(Depthwise()), pruning_config(pruning_init=0.5))
    pruned = dropped(group_flags(ctrl, "expand"))
    for param in (
        "expand.weight",
        "expand.bias",
        "bn1.weight",
        "bn1.bias",
        "dw.weight",
        "dw.bias",
        "bn2.bias",
    ):
        mask = ctrl.masks.mask(param).flatten()
        assert dropped([bool(v) for v in mask.tolist()]) == pruned, param


def test_prune_batch_norms_false_leaves_batchnorms_unmasked() -> None:
    ctrl, _ = compress(Depthwise(), pruning_config(pruning_init=0.5, prune_batch_norms=False))
    assert "bn1.weight" not in ctrl.masks.names() and "dw.weight" in ctrl.masks.names()


@pytest.mark.parametrize("importance", ["L1", "L2", "geometric_median"])
def test_the_least_important_filters_are_pruned(importance: str) -> None:
    model = Concat()
    with torch.no_grad():
        weight = torch.ones_like(model.a.weight)
        # filters 0 and 1 are small and close to each other and to the rest: lowest norm and distance sum
        for i, scale in enumerate([0.1, 0.2, 3.0, 4.0, 5.0, 6.0]):
            weight[i] *= scale
        model.a.weight.copy_(weight)
    ctrl, _ = compress(model, pruning_config(pruning_init=0.34, filter_importance=importance))
    assert dropped(group_flags(ctrl, "a")) == [0, 1] if importance != "geometric_median" else [2, 3]


def test_all_weights_ranks_filters_across_layers() -> None:
    model = Concat()
    with torch.no_grad():
        model.b.weight.fill_(1.0)
        model.conv.weight.fill_(1.0)
        model.a.weight.fill_(1.0)
        model.a.weight[:5] *= 0.01  # after normalisation, five of a's six filters are the weakest
    local, _ = compress(model, pruning_config(pruning_init=0.5))
    shared, _ = compress(model, pruning_config(pruning_init=0.5, all_weights=True))
    assert [len(dropped(f)) for f in local.masks.flags().values()] == [3, 2, 2]
    assert dropped(group_flags(shared, "a")) == [0, 1, 2, 3, 4]
    assert sum(len(dropped(f)) for f in shared.masks.flags().values()) == math.floor(0.5 * 15)


def test_learned_ranking_is_a_clear_config_error() -> None:
    config = pruning_config(interlayer_ranking_type="learned_ranking")
    with pytest.raises(
        ConfigError,
        match=r"compression.params.interlayer_ranking_type: 'learned_ranking' \(LeGR\) is not implemented.*'all_weights': true",
    ):
        compress(Residual(), config)


def test_legr_params_without_learned_ranking_warn_that_they_are_ignored() -> None:
    config = pruning_config(legr_params={"generations": 10})
    with pytest.warns(UserWarning, match=r"params.legr_params only applies to .*learned_ranking"):
        create_compressed_model(Residual(), config, dump_graphs=False)


# -- schedules --------------------------------------------------------------------------------------------
def test_exponential_schedule_steps_the_level_each_epoch_and_freezes_at_the_end() -> None:
    config = pruning_config(pruning_init=0.25, schedule="exponential", pruning_target=0.5, pruning_steps=3)
    ctrl, _ = compress(Depthwise(), config)
    expected = [scheduled_level("exponential", 0.25, 0.5, 3, e) for e in range(5)]
    assert (
        expected[0] == pytest.approx(0.25) and 0.25 < expected[1] < expected[2] < 0.5 and expected[3] == 0.5
    )
    assert ctrl.compression_stage() is CompressionStage.PARTIALLY_COMPRESSED
    levels = []
    for _ in range(5):
        ctrl.scheduler.epoch_step()
        levels.append(ctrl.schedule.current_level)
    assert levels == pytest.approx(expected)
    assert ctrl.compression_stage() is CompressionStage.FULLY_COMPRESSED
    before = ctrl.masks.flags()
    with torch.no_grad():
        ctrl.model.get_parameter("expand.weight").mul_(torch.linspace(10, 0.1, 8).view(-1, 1, 1, 1))
    ctrl.scheduler.epoch_step()
    assert ctrl.masks.flags() == before  # frozen after pruning_steps


def test_baseline_waits_num_init_steps_then_prunes_to_the_target() -> None:
    config = pruning_config(pruning_init=0.0, schedule="baseline", pruning_target=0.5, num_init_steps=2)
    ctrl, _ = compress(Depthwise(), config)
    assert ctrl.compression_stage() is CompressionStage.UNCOMPRESSED
    levels = []
    for _ in range(4):
        ctrl.scheduler.epoch_step()
        levels.append(round(ctrl.pruning_level, 3))
    assert levels[:2] == [0.0, 0.0] and levels[2] == levels[3] == 0.5


def test_exponential_with_bias_passes_nncf_s_three_points() -> None:
    steps = 16
    assert scheduled_level("exponential_with_bias", 0.1, 0.5, steps, 0) == pytest.approx(0.1)
    assert scheduled_level("exponential_with_bias", 0.1, 0.5, steps, 2) == pytest.approx(0.375, abs=1e-6)
    assert scheduled_level("exponential_with_bias", 0.1, 0.5, steps, steps) == 0.5


def test_flops_target_prunes_until_that_share_of_flops_is_gone() -> None:
    config = pruning_config([1, 3, 32, 32], pruning_init=0.0, pruning_flops_target=0.3, pruning_steps=2)
    ctrl, _ = compress(MobileNetV2(10), config)
    for _ in range(3):
        ctrl.scheduler.epoch_step()
    stats = ctrl.statistics().filter_pruning
    assert stats.target_is_flops and 0.3 <= stats.flops_level < 0.33
    assert "Target FLOPs pruning level" in stats.to_str()


# -- statistics and state ---------------------------------------------------------------------------------
def test_statistics_table_has_nncf_s_shape_and_flops_before_and_after() -> None:
    ctrl, _ = compress(Residual(), pruning_config(prune_first_conv=True, pruning_init=0.5))
    stats = ctrl.statistics()
    text = stats.to_str()
    assert "Statistics of the filter pruning algorithm:" in text
    assert "| Layer " in text and "| Weight's shape " in text and "| Mask's shape " in text
    assert "| Mask zero % " in text and "| 50.00 " in text
    pruning = stats.filter_pruning
    assert pruning.flops[1] < pruning.flops[0] and pruning.params[1] < pruning.params[0]
    assert "FLOPs after pruning / FLOPs before pruning" in text


def test_compression_state_restores_the_masks_exactly() -> None:
    config = pruning_config(pruning_init=0.1, pruning_target=0.6, pruning_steps=4, filter_importance="L1")
    ctrl, net = compress(randomise_batchnorms(Depthwise()), config)
    for _ in range(2):
        with torch.no_grad():
            net.get_parameter("expand.weight").add_(torch.randn(8, 4, 1, 1))
        ctrl.scheduler.epoch_step()
    saved = {"state_dict": net.state_dict(), "compression_state": ctrl.get_compression_state()}
    ctrl2, net2 = create_compressed_model(
        Depthwise(), config, compression_state=saved["compression_state"], dump_graphs=False
    )
    net2.load_state_dict(saved["state_dict"])
    assert ctrl2.masks.flags() == ctrl.masks.flags()
    assert ctrl2.scheduler.current_epoch == ctrl.scheduler.current_epoch == 1
    net.eval(), net2.eval()
    torch.testing.assert_close(net2(X), net(X))
