"""Magnitude sparsity: masks, schedules, and the composite [quantization, magnitude_sparsity] controller."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import CompressionStage, ConfigError, create_compressed_model
from nncf_explore.compression.controller import CompositeController
from nncf_explore.compression.schedulers import SparsityScheduler
from nncf_explore.compression.sparsity import compute_masks, importance
from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


SPARSIFIED = ["conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"]


# -- masks ------------------------------------------------------------------------------------------------
def test_global_threshold_with_abs_and_normed_abs_importance() -> None:
    big = torch.tensor([10.0, 20.0, 30.0, 40.0])
    small = torch.tensor([0.1, 0.2, 0.3, 0.4])
    by_abs = compute_masks({"big": big, "small": small}, 0.5, "abs", "global")
    assert by_abs["big"].tolist() == [1, 1, 1, 1] and by_abs["small"].tolist() == [0, 0, 0, 0]
    # normed_abs divides by each weight's L2 norm, so both layers lose their smallest half
    by_norm = compute_masks({"big": big, "small": small}, 0.5, "normed_abs", "global")
    assert by_norm["big"].tolist() == [0, 0, 1, 1] and by_norm["small"].tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(importance(big, "normed_abs"), big / big.norm())


def test_local_mode_gives_every_weight_the_level() -> None:
    weights = {"a": torch.arange(1.0, 11.0), "b": torch.arange(100.0, 120.0)}
    local = compute_masks(weights, 0.3, "abs", "local")
    assert [int(local[k].numel() - local[k].sum()) for k in weights] == [3, 6]
    global_ = compute_masks(weights, 0.3, "abs", "global")
    assert [int(global_[k].numel() - global_[k].sum()) for k in weights] == [9, 0]


def test_mask_errors_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="weight_importance 'l1' is not one of 'abs', 'normed_abs'"):
        compute_masks({"w": torch.ones(3)}, 0.5, "l1")
    with pytest.raises(ValueError, match="sparsity_level_setting_mode 'layer' is not 'global' or 'local'"):
        compute_masks({"w": torch.ones(3)}, 0.5, "abs", "layer")


# -- schedules ----------------------------------------------------------------------------------------------
def levels_over_epochs(epochs: int, **kwargs: Any) -> list[float]:
    seen: list[float] = []
    scheduler = SparsityScheduler(seen.append, **kwargs)
    for _ in range(epochs):
        scheduler.epoch_step()
    return seen  # construction, then one per epoch


def test_polynomial_schedule_values() -> None:
    common = {"schedule": "polynomial", "initial": 0.1, "target": 0.5, "target_epoch": 4, "power": 2.0}
    concave = levels_over_epochs(6, concave=True, **common)
    assert concave == pytest.approx([0.1, 0.1, 0.275, 0.4, 0.475, 0.5, 0.5])
    convex = levels_over_epochs(6, concave=False, **common)
    assert convex == pytest.approx([0.1, 0.1, 0.125, 0.2, 0.325, 0.5, 0.5])


def test_exponential_schedule_decays_the_dense_fraction_geometrically() -> None:
    levels = levels_over_epochs(6, schedule="exponential", initial=0.1, target=0.5, target_epoch=4)
    expected = [0.1] + [1 - 0.9 * (0.5 / 0.9) ** (min(e, 4) / 4) for e in range(6)]
    assert levels == pytest.approx(expected)
    assert levels[-1] == pytest.approx(0.5)


def test_multistep_schedule_starts_at_the_first_level_and_targets_the_last() -> None:
    seen: list[float] = []
    scheduler = SparsityScheduler(
        seen.append,
        "multistep",
        initial=0.0,
        target=0.9,
        multistep_steps=[3, 1],
        multistep_levels=[0.1, 0.3, 0.5],
    )
    assert scheduler.target == 0.5
    for _ in range(5):
        scheduler.epoch_step()
    assert seen == [0.1, 0.1, 0.3, 0.3, 0.5, 0.5]


def test_freeze_epoch_stops_level_changes() -> None:
    levels = levels_over_epochs(
        5, schedule="polynomial", initial=0.0, target=0.8, target_epoch=4, power=1.0, freeze_epoch=2
    )
    assert levels == pytest.approx([0.0, 0.0, 0.2])  # epochs 2, 3, 4 are frozen: no more updates


def test_per_step_updates_count_the_steps_of_the_first_epoch() -> None:
    seen: list[float] = []
    scheduler = SparsityScheduler(
        seen.append,
        "polynomial",
        initial=0.0,
        target=0.4,
        target_epoch=2,
        power=1.0,
        update_per_optimizer_step=True,
    )
    scheduler.epoch_step()
    for _ in range(4):
        scheduler.step()
    assert seen == [0.0, 0.0]  # steps per epoch unknown during epoch 0
    scheduler.epoch_step()
    assert scheduler.steps_per_epoch == 4
    for _ in range(2):
        scheduler.step()
    assert seen[2:] == pytest.approx([0.2, 0.25, 0.3])


def test_scheduler_state_round_trips_and_reapplies_the_level() -> None:
    first: list[float] = []
    scheduler = SparsityScheduler(
        first.append, "polynomial", initial=0.0, target=0.5, target_epoch=2, power=1.0
    )
    scheduler.epoch_step()
    scheduler.epoch_step()
    scheduler.step()
    second: list[float] = []
    restored = SparsityScheduler(
        second.append, "polynomial", initial=0.0, target=0.5, target_epoch=2, power=1.0
    )
    restored.load_state(json.loads(json.dumps(scheduler.get_state())))
    assert restored.get_state() == {"current_step": 0, "current_epoch": 1} and second[-1] == pytest.approx(
        0.25
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "adaptive"}, "params.schedule 'adaptive' is not supported by nncf_explore"),
        (
            {"schedule": "multistep", "multistep_steps": [1, 2], "multistep_levels": [0.1, 0.2]},
            "has 2 levels for 2 multistep_steps; give one level more than steps",
        ),
    ],
)
def test_bad_schedules_are_config_errors(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SparsityScheduler(lambda level: None, **kwargs)


# -- with create_compressed_model ---------------------------------------------------------------------------
def sparsity_section(**params: Any) -> dict[str, Any]:
    init = params.pop("sparsity_init", 0.1)
    defaults = {"schedule": "polynomial", "sparsity_target": 0.5, "sparsity_target_epoch": 2, "power": 1.0}
    return {"algorithm": "magnitude_sparsity", "sparsity_init": init, "params": {**defaults, **params}}


def config(*sections: dict[str, Any]) -> dict[str, Any]:
    return {"input_info": digits.INPUT_INFO, "compression": list(sections)}


def create(model: nn.Module, cfg: Any, **kwargs: Any) -> tuple[Any, nn.Module]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, cfg, dump_graphs=False, **kwargs)


def masked_fp32(compressed: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """The FP32 DigitsNet with the compressed model's weights, pruned by hand."""
    model = digits.DigitsNet().eval()
    model.load_state_dict({k: v for k, v in compressed.state_dict().items() if not k.startswith("_nncf.")})
    with torch.no_grad():
        for name, mask in masks.items():
            model.get_parameter(name).mul_(mask)
    return model


def current_masks(ctrl: Any) -> dict[str, torch.Tensor]:
    sparsity = (
        next(c for c in ctrl.child_ctrls if c.name == "magnitude_sparsity")
        if hasattr(ctrl, "child_ctrls")
        else ctrl
    )
    return {name: sparsity.masks.mask(name).clone() for name in sparsity.weights}


def test_sparsity_alone_prunes_exactly_the_masked_weights_in_the_forward() -> None:
    ctrl, q = create(digits.trained_fp32(), config(sparsity_section()))
    assert ctrl.name == "magnitude_sparsity" and sorted(ctrl.weights) == SPARSIFIED
    assert ctrl.sparsity_level == pytest.approx(0.1, abs=1e-3)
    x, _ = digits.eval_split()
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        masks = current_masks(ctrl)
        with torch.no_grad():
            torch.testing.assert_close(q(x), masked_fp32(q, masks)(x), rtol=1e-5, atol=1e-5)
    assert ctrl.sparsity_level == pytest.approx(0.5, abs=1e-3)
    assert all(torch.equal(q.get_parameter(n), digits.trained_fp32().get_parameter(n)) for n in SPARSIFIED)


def test_sparsity_levels_follow_the_schedule_at_each_epoch() -> None:
    section = sparsity_section(
        schedule="multistep", multistep_steps=[1, 2], multistep_sparsity_levels=[0.2, 0.4, 0.6]
    )
    ctrl, _ = create(digits.trained_fp32(), config(section))
    levels = [ctrl.sparsity_level]
    stages = [ctrl.compression_stage()]
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        levels.append(ctrl.sparsity_level)
        stages.append(ctrl.compression_stage())
    assert levels == pytest.approx([0.2, 0.2, 0.4, 0.6], abs=1e-3)
    assert (
        stages[-1] is CompressionStage.FULLY_COMPRESSED and stages[0] is CompressionStage.PARTIALLY_COMPRESSED
    )
    assert ctrl.statistics().magnitude_sparsity.target_level == 0.6


@pytest.mark.parametrize("mode", ["global", "local"])
def test_local_and_global_modes_per_layer_levels(mode: str) -> None:
    section = sparsity_section(sparsity_init=0.5, sparsity_level_setting_mode=mode, weight_importance="abs")
    ctrl, _ = create(digits.trained_fp32(), config(section))
    levels = ctrl.statistics().magnitude_sparsity.levels
    assert sorted(levels) == SPARSIFIED
    if mode == "local":
        assert all(level == pytest.approx(0.5, abs=0.01) for level in levels.values())
    else:
        assert max(levels.values()) - min(levels.values()) > 0.1
    assert ctrl.sparsity_level == pytest.approx(0.5, abs=1e-3)


def test_normed_abs_and_abs_prune_different_weights() -> None:
    masks = {}
    for kind in ("abs", "normed_abs"):
        ctrl, _ = create(
            digits.trained_fp32(), config(sparsity_section(sparsity_init=0.5, weight_importance=kind))
        )
        masks[kind] = current_masks(ctrl)
    assert any(not torch.equal(masks["abs"][n], masks["normed_abs"][n]) for n in SPARSIFIED)
    fp32 = digits.trained_fp32()
    scores = torch.cat(
        [(fp32.get_parameter(n).abs() / fp32.get_parameter(n).norm()).flatten() for n in SPARSIFIED]
    )
    kept = torch.cat([masks["normed_abs"][n].flatten() for n in SPARSIFIED]).bool()
    assert scores[kept].min() >= scores[~kept].max()


@pytest.fixture(scope="module")
def composite() -> tuple[Any, nn.Module]:
    quantization = digits.quantization_config()["compression"]
    return create(digits.trained_fp32(), digits.init_config(config(quantization, sparsity_section())))


def test_composite_controller_combines_both_algorithms(composite) -> None:
    ctrl, _q = composite
    assert isinstance(ctrl, CompositeController)
    assert [c.name for c in ctrl.child_ctrls] == ["quantization", "magnitude_sparsity"]
    stats = ctrl.statistics()
    assert stats.quantization is not None and stats.magnitude_sparsity is not None
    text = stats.to_str()
    assert (
        "Statistics of the quantization algorithm:" in text and "Statistics of the magnitude sparsity" in text
    )
    loss = ctrl.loss()
    assert isinstance(loss, torch.Tensor) and loss.shape == () and loss.item() == 0.0
    assert len(ctrl.weight_quantizers) == 4  # members of the children are reachable through the composite
    state = json.loads(json.dumps(ctrl.get_compression_state()))
    assert set(state["builder_state"]) == set(state["ctrl_state"]) == {"quantization", "magnitude_sparsity"}
    assert state["builder_state"]["magnitude_sparsity"]["weights"] == SPARSIFIED


def test_composite_stage_combines_the_children(composite) -> None:
    ctrl, _ = composite
    assert ctrl.child_ctrls[0].compression_stage() is CompressionStage.FULLY_COMPRESSED
    assert ctrl.child_ctrls[1].compression_stage() is CompressionStage.PARTIALLY_COMPRESSED
    assert ctrl.compression_stage() is CompressionStage.PARTIALLY_COMPRESSED
    assert (
        CompressionStage.FULLY_COMPRESSED + CompressionStage.FULLY_COMPRESSED
        is CompressionStage.FULLY_COMPRESSED
    )
    assert (
        CompressionStage.UNCOMPRESSED + CompressionStage.FULLY_COMPRESSED
        is CompressionStage.PARTIALLY_COMPRESSED
    )


def test_composite_forward_quantizes_the_pruned_weights(composite) -> None:
    ctrl, q = composite
    x, _ = digits.eval_split()
    quantization = ctrl.child_ctrls[0]
    with torch.no_grad():
        zeros = total = 0
        for qid, point in ((p.id, p) for p in quantization.setup.weights):
            weight = q.get_parameter(point.weight_param) * current_masks(ctrl)[point.weight_param]
            zeros += int((quantization.weight_quantizers[qid].quantizer_module_ref(weight) == 0).sum())
            total += weight.numel()
        assert zeros >= int(0.1 * total)  # pruned weights stay exactly zero after quantization
    # the same quantizers on a model whose weights were pruned by hand give the same output
    _reference_ctrl, reference = create(
        masked_fp32(q, current_masks(ctrl)),
        config(digits.quantization_config()["compression"]),
        compression_state={"builder_state": {"quantization": ctrl.builder_state()["quantization"]}},
    )
    reference.load_state_dict(
        {
            **{k: v for k, v in q.state_dict().items() if k.startswith("_nncf.") and "sparsity" not in k},
            **{k: v for k, v in reference.state_dict().items() if not k.startswith("_nncf.")},
        }
    )
    with torch.no_grad():
        torch.testing.assert_close(q(x), reference(x), rtol=1e-5, atol=1e-5)


def test_composite_state_round_trips() -> None:
    quantization = digits.quantization_config()["compression"]
    ctrl, q = create(digits.trained_fp32(), digits.init_config(config(quantization, sparsity_section())))
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.epoch_step()
    state = json.loads(json.dumps(ctrl.get_compression_state()))
    restored_ctrl, restored = create(
        digits.trained_fp32(), config(quantization, sparsity_section()), compression_state=state
    )
    restored.load_state_dict(q.state_dict())
    assert (
        restored_ctrl.scheduler.get_state()
        == ctrl.scheduler.get_state()
        == {"current_step": -1, "current_epoch": 1}
    )
    assert restored_ctrl.child_ctrls[1].sparsity_level == pytest.approx(ctrl.child_ctrls[1].sparsity_level)
    x, _ = digits.eval_split()
    with torch.no_grad():
        torch.testing.assert_close(restored(x), q(x), rtol=0, atol=0)
    assert math.isclose(restored_ctrl.child_ctrls[1].sparsity_level, 0.3, abs_tol=1e-3)


def test_composite_exports_and_strips_with_masks_applied(composite, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    ctrl, q = composite
    x, _ = digits.eval_split()
    stripped = ctrl.strip()
    with torch.no_grad():
        torch.testing.assert_close(stripped(x[:7]), q(x[:7]), rtol=0, atol=0)
        expected = torch.cat([q(x[i : i + 1]) for i in range(32)])
    ctrl.export_model(tmp_path / "composite.onnx")
    session = ort.InferenceSession(str(tmp_path / "composite.onnx"), providers=["CPUExecutionProvider"])
    got = torch.cat(
        [torch.from_numpy(session.run(None, {"input.0": x[i : i + 1].numpy()})[0]) for i in range(32)]
    )
    exact = (got - expected).abs().amax(dim=1) < 1e-5
    assert exact.float().mean() >= 0.9  # the rest differ by a rounding flip at a half-step boundary
    assert torch.equal(got.argmax(1), expected.argmax(1))
