"""RB sparsity: learned masks against eager PyTorch, the loss, schedules, composition and state."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_explore import CompressionStage, ConfigError, create_compressed_model
from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.rb_sparsity import LOSS_SCALE, LearnedMasks, RBSparsityController
from tests.compression import digits
from tests.compression.tiny import TinyConv

INPUT_INFO = {"sample_size": [2, 3, 6, 6]}
WEIGHTS = ["conv.weight", "fc.weight"]
N_CONV, N_FC = 4 * 3 * 3 * 3, 5 * 4 * 6 * 6


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with digits.one_thread():
        yield


def rb(sparsity_init: float = 0.5, **params: Any) -> dict[str, Any]:
    return {"algorithm": "rb_sparsity", "sparsity_init": sparsity_init, "params": params}


def create(*sections: dict[str, Any], model: nn.Module | None = None, **kwargs: Any) -> tuple[Any, nn.Module]:
    if model is None:
        torch.manual_seed(0)
        model = TinyConv().eval()
    cfg = {"input_info": INPUT_INFO, "compression": list(sections)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, cfg, dump_graphs=False, **kwargs)


def rb_ctrl(ctrl: Any) -> RBSparsityController:
    found = next(c for c in getattr(ctrl, "child_ctrls", [ctrl]) if c.name == "rb_sparsity")
    assert isinstance(found, RBSparsityController)
    return found


def set_logits(ctrl: Any, values: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            rb_ctrl(ctrl).masks.logits(name).copy_(value)


def eager(compressed: nn.Module, masks: dict[str, torch.Tensor]) -> TinyConv:
    model = TinyConv().eval()
    model.load_state_dict({k: v for k, v in compressed.state_dict().items() if not k.startswith("_nncf.")})
    with torch.no_grad():
        for name, mask in masks.items():
            model.get_parameter(name).mul_(mask)
    return model


def loss_of(ctrl: Any) -> float:
    return float(ctrl.loss().detach())


# -- masks --------------------------------------------------------------------------------------------------
def test_masks_start_dense_and_sparsity_init_is_the_first_target() -> None:
    ctrl, q = create(rb(0.3))
    assert isinstance(ctrl, RBSparsityController) and sorted(ctrl.weights) == WEIGHTS
    for name in WEIGHTS:
        torch.testing.assert_close(
            ctrl.masks.logits(name), torch.full_like(q.get_parameter(name), math.log(99))
        )
    assert ctrl.sparsity_level == 0.0 and ctrl.level == 0.3
    # the logits are parameters of the model, so the user's optimizer trains them
    names = {n for n, _ in q.named_parameters()}
    assert {"_nncf.sparsity_masks.conv/weight", "_nncf.sparsity_masks.fc/weight"} <= names
    assert loss_of(ctrl) == pytest.approx(((1.0 - 0.7) / LOSS_SCALE) ** 2)


def test_eval_forward_equals_eager_pytorch_with_the_masked_weights() -> None:
    ctrl, q = create(rb())
    torch.manual_seed(1)
    logits = {name: torch.randn_like(q.get_parameter(name)) for name in WEIGHTS}
    set_logits(ctrl, logits)
    x = torch.randn(2, 3, 6, 6)
    expected = eager(q, {n: (v > 0).float() for n, v in logits.items()})(x)
    with torch.no_grad():
        torch.testing.assert_close(q.eval()(x), expected)
    assert ctrl.masks.level("conv.weight") == pytest.approx(
        float((logits["conv.weight"] <= 0).float().mean())
    )


def test_training_masks_are_binary_samples_and_the_logits_get_gradients() -> None:
    masks = LearnedMasks({"w": torch.zeros(1000)}).train()
    with torch.no_grad():
        masks.logits("w").zero_()
    first, second = masks.mask("w"), masks.mask("w")
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)  # stochastic at logit 0: keep probability 1/2
    assert 0.4 < float(first.detach().mean()) < 0.6
    ctrl, q = create(rb())
    q.train()(torch.randn(2, 3, 6, 6)).sum().backward()
    assert all(float(ctrl.masks.logits(n).grad.abs().sum()) > 0 for n in WEIGHTS)  # straight through


def test_loss_is_nncfs_formula_in_global_and_local_mode() -> None:
    level = 0.4
    for mode in ("global", "local"):
        ctrl, _ = create(rb(level, sparsity_level_setting_mode=mode))
        # conv fully pruned, fc fully kept
        set_logits(ctrl, {"conv.weight": -torch.ones(4, 3, 3, 3), "fc.weight": torch.ones(5, 144)})
        if mode == "global":
            expected = ((N_FC / (N_CONV + N_FC) - (1 - level)) / LOSS_SCALE) ** 2
        else:  # every layer must reach the level on its own
            expected = ((abs(0 - (1 - level)) + abs(1 - (1 - level))) / LOSS_SCALE) ** 2
        assert loss_of(ctrl) == pytest.approx(expected, rel=1e-5), mode
    # local: a model at the level overall but not per layer still pays a loss; global does not
    for mode, zero in (("global", True), ("local", False)):
        ctrl, _ = create(rb(0.5, sparsity_level_setting_mode=mode))
        fc = torch.ones(5, 144)
        fc.view(-1)[: (N_CONV + N_FC) // 2 - N_CONV] = -1.0
        set_logits(ctrl, {"conv.weight": -torch.ones(4, 3, 3, 3), "fc.weight": fc})
        assert ctrl.sparsity_level == pytest.approx(0.5)
        assert (loss_of(ctrl) == pytest.approx(0.0)) is zero, mode
        assert ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED


def test_loss_drives_sparsity_to_the_target_in_a_few_steps() -> None:
    torch.manual_seed(0)
    model = TinyConv().eval()
    ctrl, q = create(rb(0.5), model=model)
    x = torch.randn(64, 3, 6, 6)
    with torch.no_grad():
        y = model(x)
    optimizer = torch.optim.Adam(q.train().parameters(), lr=0.2)
    for _ in range(100):
        optimizer.zero_grad()
        (F.mse_loss(q(x), y) + ctrl.loss()).backward()
        optimizer.step()
    assert abs(ctrl.sparsity_level - 0.5) < 0.1
    assert loss_of(ctrl) < 0.1 * ((1 - 0.5) / LOSS_SCALE) ** 2


# -- schedules -----------------------------------------------------------------------------------------------
def levels(ctrl: RBSparsityController, epochs: int) -> list[float]:
    seen = [ctrl.level]
    for _ in range(epochs):
        ctrl.scheduler.epoch_step()
        seen.append(ctrl.level)
    return seen


def test_exponential_is_the_default_schedule() -> None:
    ctrl, _ = create(rb(0.1, sparsity_target=0.5, sparsity_target_epoch=4))
    expected = [0.1] + [1 - 0.9 * (0.5 / 0.9) ** (min(e, 4) / 4) for e in range(6)]
    assert levels(ctrl, 6) == pytest.approx(expected)
    assert ctrl.schedule.schedule == "exponential"


def test_polynomial_and_multistep_schedules() -> None:
    ctrl, _ = create(rb(0.1, schedule="polynomial", sparsity_target=0.5, sparsity_target_epoch=4, power=1.0))
    assert levels(ctrl, 5) == pytest.approx([0.1, 0.1, 0.2, 0.3, 0.4, 0.5])
    ctrl, _ = create(
        rb(schedule="multistep", multistep_steps=[2, 4], multistep_sparsity_levels=[0.1, 0.3, 0.6])
    )
    assert levels(ctrl, 5) == pytest.approx([0.1, 0.1, 0.1, 0.3, 0.3, 0.6])
    assert ctrl.target_level == 0.6 and ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED


def test_adaptive_schedule_raises_the_level_once_the_model_keeps_up() -> None:
    ctrl, _ = create(rb(0.1, schedule="adaptive", sparsity_target=0.2, patience=2))
    ctrl.scheduler.epoch_step()  # epoch 0: nothing achieved yet
    assert ctrl.level == pytest.approx(0.1)

    def achieve(level: float) -> None:
        fc = torch.ones(5, 144)
        fc.view(-1)[: math.ceil(level * (N_CONV + N_FC))] = -1.0
        set_logits(ctrl, {"fc.weight": fc})

    achieve(0.1)  # within 0.03 of the level: after `patience` such epochs it grows by 0.05
    assert levels(ctrl, 4)[1:] == pytest.approx([0.1, 0.15, 0.15, 0.15])  # 0.1 is not near 0.15
    achieve(0.15)
    assert levels(ctrl, 4)[1:] == pytest.approx([0.15, 0.2, 0.2, 0.2])  # capped at sparsity_target
    state = ctrl.scheduler.get_state()
    assert state["current_sparsity_level"] == pytest.approx(0.2)
    restored, _ = create(rb(0.1, schedule="adaptive", sparsity_target=0.2, patience=2))
    restored.scheduler.load_state(state)
    assert restored.level == pytest.approx(0.2)


def test_freeze_epoch_turns_off_the_loss_and_fixes_the_masks() -> None:
    ctrl, q = create(rb(0.3, schedule="polynomial", sparsity_target_epoch=2, sparsity_freeze_epoch=2))
    levels(ctrl, 3)
    assert loss_of(ctrl) == 0.0
    assert not any(ctrl.masks.logits(n).requires_grad for n in WEIGHTS)
    set_logits(ctrl, {"fc.weight": torch.zeros(5, 144) + 0.01})  # would be a coin flip if not frozen
    q.train()
    assert torch.equal(ctrl.masks.mask("fc.weight"), torch.ones(5, 144))


def test_adaptive_is_rejected_for_magnitude_sparsity_only() -> None:
    with pytest.raises(ConfigError, match=r"magnitude_sparsity params.schedule 'adaptive' is not supported"):
        create({"algorithm": "magnitude_sparsity", "params": {"schedule": "adaptive"}})


# -- composition and state ----------------------------------------------------------------------------------
def test_with_quantization_the_mask_comes_first_so_masked_weights_quantize_to_zero() -> None:
    ctrl, q = create({"algorithm": "quantization"}, rb())
    assert [c.name for c in ctrl.child_ctrls] == ["quantization", "rb_sparsity"]
    torch.manual_seed(2)
    logits = {name: torch.randn_like(q.get_parameter(name)) for name in WEIGHTS}
    set_logits(ctrl, logits)
    q.eval()
    plan = compression_interface(q).plan()
    for name in WEIGHTS:
        with torch.no_grad():
            quantized = plan.weights[name](q.get_parameter(name))
        assert torch.all(quantized[logits[name] <= 0] == 0)
        assert torch.count_nonzero(quantized[logits[name] > 0]) > 0
    # the fc weight quantizer sees the masked weight: quantize(w * mask), not quantize(w) * mask
    fc_quantizer = ctrl.weight_quantizers["TinyConv/Linear[fc]/linear_0|WEIGHT"].quantizer_module_ref
    w = q.get_parameter("fc.weight").detach()
    with torch.no_grad():
        torch.testing.assert_close(
            plan.weights["fc.weight"](w), fc_quantizer(w * (logits["fc.weight"] > 0).float())
        )
    assert "Statistics of the RB-sparsity algorithm:" in ctrl.statistics().to_str()


def test_two_sparsity_algorithms_are_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"compression\[1\]: rb_sparsity and magnitude_sparsity both sparsify"
    ):
        create({"algorithm": "magnitude_sparsity"}, rb())


def test_compression_state_round_trip_restores_masks_and_outputs() -> None:
    ctrl, q = create({"algorithm": "quantization"}, rb(0.2))
    torch.manual_seed(3)
    set_logits(ctrl, {name: torch.randn_like(q.get_parameter(name)) for name in WEIGHTS})
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.epoch_step()
    state, weights = copy.deepcopy(ctrl.get_compression_state()), copy.deepcopy(q.state_dict())
    assert state["builder_state"]["rb_sparsity"] == {"weights": WEIGHTS}
    torch.manual_seed(0)
    fresh, r = create(
        {"algorithm": "quantization"}, rb(0.2), model=TinyConv().eval(), compression_state=state
    )
    r.load_state_dict(weights)
    for name in WEIGHTS:
        assert torch.equal(rb_ctrl(fresh).masks.logits(name), rb_ctrl(ctrl).masks.logits(name))
    assert (
        fresh.scheduler.get_state() == ctrl.scheduler.get_state()
        and rb_ctrl(fresh).level == rb_ctrl(ctrl).level
    )
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(r.eval()(x), q.eval()(x))


def test_loading_a_state_dict_in_eval_is_not_hidden_by_cached_weights() -> None:
    _ctrl, q = create({"algorithm": "quantization"}, rb())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        dense = q.eval()(x)  # caches the masked, quantized weights
        state = q.state_dict()
        state["_nncf.sparsity_masks.fc/weight"] = -torch.ones(5, 144)
        q.load_state_dict(state)
        pruned = q(x)
    assert not torch.allclose(dense, pruned)
    fc_bias = q.get_parameter("fc.bias").detach()
    torch.testing.assert_close(pruned, fc_bias.expand(2, 5))


def test_compression_lr_multiplier_scales_the_logit_gradients_from_the_section_or_top_level() -> None:
    def logit_grad(section: dict[str, Any], **top: Any) -> torch.Tensor:
        torch.manual_seed(0)
        cfg = {"input_info": INPUT_INFO, "compression": [section], **top}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctrl, _q = create_compressed_model(TinyConv().eval(), cfg, dump_graphs=False)
        ctrl.loss().backward()
        return ctrl.masks.logits("fc.weight").grad.clone()

    plain = logit_grad(rb())
    assert float(plain.abs().sum()) > 0
    torch.testing.assert_close(logit_grad({**rb(), "compression_lr_multiplier": 10.0}), 10 * plain)
    torch.testing.assert_close(logit_grad(rb(), compression_lr_multiplier=3.0), 3 * plain)


def test_strip_computes_what_the_masked_quantized_model_computes() -> None:
    ctrl, q = create({"algorithm": "quantization"}, rb())
    torch.manual_seed(4)
    set_logits(ctrl, {name: torch.randn_like(q.get_parameter(name)) for name in WEIGHTS})
    stripped = ctrl.strip()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(stripped(x), q.eval()(x))


def test_eval_weight_cache_follows_in_place_mask_edits_and_still_hits_otherwise() -> None:
    ctrl, q = create({"algorithm": "quantization"}, rb())
    cache = compression_interface(q).weight_cache
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        dense = q.eval()(x)
        cached = cache.entries["fc.weight"][1]
        torch.testing.assert_close(q(x), dense)
        assert cache.entries["fc.weight"][1] is cached  # nothing changed: reused
        rb_ctrl(ctrl).masks.logits("fc.weight").fill_(-1.0)  # an in-place edit, e.g. by hand
        pruned = q(x)
    torch.testing.assert_close(pruned, q.get_parameter("fc.bias").detach().expand(2, 5))


def test_registered_init_data_runs_no_batchnorm_adaptation_for_rb_alone() -> None:
    # rb_sparsity has no `initializer` in NNCF's schema, so it asks for no BatchNorm adaptation;
    # registering init data (as NNCF's training scripts always do) must not fail on it.
    from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    config = NNCFConfig.from_dict(
        {"input_info": {"sample_size": [2, 3, 8, 8]}, "compression": {"algorithm": "rb_sparsity"}}
    )
    data = [(torch.randn(4, 3, 8, 8), 0)]
    _, model = create_compressed_model(net, register_default_init_args(config, data), dump_graphs=False)
    assert torch.equal(model[1].running_mean, net[1].running_mean)  # not adapted
