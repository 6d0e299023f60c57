"""create_compressed_model end to end: a drop-in copy, the user's model untouched, re-runs, state, errors."""

from __future__ import annotations

import copy
import inspect
import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_explore import (
    CompressionStage,
    ConfigError,
    NNCFConfig,
    create_compressed_model,
    load_state,
    register_default_init_args,
)
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.tracking import nncf_model_input
from tests import models
from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


RESNET_INPUT = {"sample_size": [1, 3, 32, 32]}


def image_batches(n: int = 2, batch: int = 4) -> list[tuple[torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(7)
    return [(torch.randn(batch, 3, 32, 32, generator=generator), 0) for _ in range(n)]


def image_config(**extra: Any) -> NNCFConfig:
    """Quantization with range init and BatchNorm adaptation on two fixed batches."""
    config = NNCFConfig.from_dict(
        {"input_info": RESNET_INPUT, "compression": {"algorithm": "quantization"}, **extra}
    )
    return register_default_init_args(config, image_batches())


def hook_count(model: nn.Module) -> int:
    return sum(
        len(getattr(m, name))
        for m in model.modules()
        for name in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_state_dict_hooks",
            "_state_dict_pre_hooks",
            "_load_state_dict_pre_hooks",
            "_load_state_dict_post_hooks",
        )
    )


def snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()},
        "flags": [(name, m.training) for name, m in model.named_modules()],
        "hooks": hook_count(model),
        "class": type(model),
        "dict": sorted(model.__dict__),
        "modules": [(name, type(m)) for name, m in model.named_modules()],
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert torch.equal(a["state"][key], b["state"][key]), key
    assert {k: v for k, v in a.items() if k != "state"} == {k: v for k, v in b.items() if k != "state"}


def quiet_create(*args: Any, **kwargs: Any) -> tuple[Any, nn.Module]:
    kwargs.setdefault("dump_graphs", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(*args, **kwargs)


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


BUILDERS = {
    "resnet18": lambda: models.resnet18(num_classes=10),
    "mobilenet_v2": lambda: models.MobileNetV2(num_classes=10).eval(),
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def compressed(request: pytest.FixtureRequest) -> tuple[nn.Module, dict[str, Any], Any, nn.Module]:
    """(user model, its snapshot before compression, controller, compressed model)."""
    torch.manual_seed(0)
    model = BUILDERS[request.param]()
    model.layer1.train() if hasattr(model, "layer1") else model.classifier.train()  # mixed flags survive
    before = snapshot(model)
    ctrl, q = quiet_create(model, image_config())
    return model, before, ctrl, q


# -- 1. a drop-in copy --------------------------------------------------------------------------------
def test_user_model_is_bit_identical_after_range_init_and_batchnorm_adaptation(compressed) -> None:
    model, before, _, q = compressed
    assert_same(snapshot(model), before)
    assert q is not model and all(p.grad is None for p in model.parameters())
    # BatchNorm adaptation did run, on the copy
    bn_key = next(k for k in before["state"] if k.endswith("running_mean"))
    assert not torch.equal(q.state_dict()[bn_key], before["state"][bn_key])


def test_compressed_model_is_the_same_class_with_the_same_signature_and_submodules(compressed) -> None:
    model, _, ctrl, q = compressed
    assert type(q) is type(model) and isinstance(q, type(model))
    assert inspect.signature(q.forward) == inspect.signature(model.forward)
    assert ctrl.model is q
    if isinstance(model, models.ResNet):
        assert isinstance(q.layer1[0].conv1, nn.Conv2d) and q.layer1[0].conv1 is not model.layer1[0].conv1
        assert torch.equal(q.fc.weight, model.fc.weight)
    else:
        assert isinstance(q.features[1].conv[0], nn.Conv2d) and isinstance(q.classifier[1], nn.Linear)
    x = torch.randn(2, 3, 32, 32)
    fp32, quantized = outputs(model.eval(), x), outputs(q.eval(), x)
    assert fp32.shape == quantized.shape and not torch.equal(fp32, quantized)


def test_train_eval_to_and_state_dict_work_as_on_any_module(compressed) -> None:
    model, _, ctrl, q = compressed
    q.train()
    assert all(m.training for m in q.modules())
    q.eval()
    assert not any(m.training for m in q.modules())
    x = torch.randn(2, 3, 32, 32)
    expected = outputs(q, x)
    double = copy.deepcopy(q).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in double.parameters())
    torch.testing.assert_close(outputs(double, x.double()).float(), expected, rtol=0.05, atol=0.05)
    state = q.state_dict()
    assert list(state)[: len(model.state_dict())] == list(model.state_dict())
    assert all(k.startswith("_nncf.") for k in list(state)[len(model.state_dict()) :])
    _, twin = quiet_create(model, image_config(), compression_state=ctrl.get_compression_state())
    assert twin.load_state_dict(state) is not None
    torch.testing.assert_close(outputs(twin.eval(), x), expected, rtol=0, atol=0)


def test_graphs_are_reachable_from_model_nncf(compressed) -> None:
    _, _, ctrl, q = compressed
    graph, original = q.nncf.get_graph(), q.nncf.get_original_graph()
    assert isinstance(graph, Graph) and isinstance(original, Graph)
    names = {n.name for n in original.nodes}
    assert "/nncf_model_input_0" in names
    assert all(p.target_node in names for p in ctrl.setup)
    graph.lint()


def test_calling_again_on_the_same_model_gives_equal_outputs(compressed) -> None:
    model, _, _, q = compressed
    _, again = quiet_create(model, image_config())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(outputs(again, x), outputs(q, x), rtol=0, atol=0)


def test_rerun_on_the_compressed_model_warns_and_gives_equal_outputs() -> None:
    model = models.resnet18(num_classes=10)
    config = image_config()
    _, first = quiet_create(model, config)
    x = torch.randn(2, 3, 32, 32)
    expected = outputs(first, x)
    with pytest.warns(UserWarning, match="already compressed model .*FP32 model it was made from"):
        ctrl, second = create_compressed_model(first, config, dump_graphs=False)
    torch.testing.assert_close(outputs(second, x), expected, rtol=0, atol=0)
    torch.testing.assert_close(outputs(first, x), expected, rtol=0, atol=0)  # the first one still works
    assert second is not first and ctrl.model is second and type(second) is type(model)
    assert sum(k.startswith("_nncf.") for k in second.state_dict()) == sum(
        k.startswith("_nncf.") for k in first.state_dict()
    )


def test_rerun_after_training_compresses_the_trained_weights() -> None:
    config = digits.init_config(digits.quantization_config())
    ctrl, q = quiet_create(digits.trained_fp32(), config)
    digits.qat(ctrl, q, epochs=1)
    trained = digits.DigitsNet()
    trained.load_state_dict({k: v for k, v in q.state_dict().items() if not k.startswith("_nncf.")})
    with pytest.warns(UserWarning, match="changed since .*current weights"):
        _, rerun = create_compressed_model(q, config, dump_graphs=False)
    _, direct = quiet_create(trained.eval(), config)
    x, _ = digits.eval_split()
    torch.testing.assert_close(outputs(rerun, x), outputs(direct, x), rtol=0, atol=0)


# -- 2. training ------------------------------------------------------------------------------------------
def test_trains_under_an_ordinary_optimizer_and_scales_get_gradients() -> None:
    # W2A2 of the trained FP32 net starts far off (loss ~4), so a few steps show real learning.
    torch.manual_seed(0)
    ctrl, q = quiet_create(digits.trained_fp32(), digits.init_config(digits.quantization_config(2, 2)))
    optimizer = torch.optim.Adam(q.parameters(), lr=0.01)
    x, y = digits.train_split()
    x, y = x[:512], y[:512]
    q.train()
    losses = []
    with digits.one_thread():
        for _ in range(10):
            optimizer.zero_grad()
            loss = F.cross_entropy(q(x), y) + ctrl.loss()
            loss.backward()
            for qid, quantizer in ctrl.all_quantizations.items():
                assert quantizer.scale.grad is not None and quantizer.scale.grad.abs().sum() > 0, qid
            optimizer.step()
            losses.append(loss.item())
    assert losses[0] > 2.0 and losses[-1] < 0.3 * losses[0], losses
    assert ctrl.loss().shape == () and ctrl.loss().item() == 0.0


# -- 3. compression_state and checkpoints -----------------------------------------------------------------
class CountingLoader:
    """An init loader that counts how often it is iterated."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.iterations = 0
        self.batch_size = 64

    def __iter__(self) -> Any:
        self.iterations += 1
        return iter(self.batches)


@pytest.fixture(scope="module")
def trained_w4a8() -> tuple[Any, nn.Module]:
    config = digits.init_config(digits.quantization_config(4, 8))
    ctrl, q = quiet_create(digits.trained_fp32(), config)
    digits.qat(ctrl, q, epochs=1)
    return ctrl, q


def test_compression_state_is_json_and_restores_bit_identical_outputs_without_init(trained_w4a8) -> None:
    ctrl, q = trained_w4a8
    state = json.loads(json.dumps(ctrl.get_compression_state()))
    assert set(state) == {"builder_state", "ctrl_state"}
    assert state["ctrl_state"]["quantization"]["scheduler_state"]["current_epoch"] == 0
    loader = CountingLoader(list(digits.train_loader(shuffle=False)))
    config = register_default_init_args(NNCFConfig.from_dict(digits.quantization_config(4, 8)), loader)
    restored_ctrl, restored = quiet_create(digits.trained_fp32(), config, compression_state=state)
    assert loader.iterations == 0  # no range init, no BatchNorm adaptation
    assert restored_ctrl.setup == ctrl.setup
    assert restored_ctrl.scheduler.get_state() == ctrl.scheduler.get_state()
    restored.load_state_dict(q.state_dict())
    x, _ = digits.eval_split()
    torch.testing.assert_close(outputs(restored, x), outputs(q, x), rtol=0, atol=0)


def test_checkpoint_round_trip_with_weights_only_torch_load(trained_w4a8) -> None:
    ctrl, q = trained_w4a8
    buffer = io.BytesIO()
    torch.save({"state_dict": q.state_dict(), "compression_state": ctrl.get_compression_state()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    config = digits.quantization_config(4, 8)
    _, restored = quiet_create(
        digits.DigitsNet().eval(), config, compression_state=checkpoint["compression_state"]
    )
    assert load_state(restored, checkpoint, is_resume=True) == len(q.state_dict())
    x, _ = digits.eval_split()
    torch.testing.assert_close(outputs(restored, x), outputs(q, x), rtol=0, atol=0)


def test_load_state_strips_ddp_prefixes_and_is_strict_on_resume(trained_w4a8) -> None:
    _ctrl, q = trained_w4a8
    _, fresh = quiet_create(digits.DigitsNet(), digits.quantization_config(4, 8))
    prefixed = {f"module.{k}": v for k, v in q.state_dict().items()}
    assert load_state(fresh, prefixed) == len(prefixed)
    partial = {k: v for k, v in q.state_dict().items() if not k.startswith("fc.")}
    with pytest.raises(ConfigError, match=r"missing \['fc.weight', 'fc.bias'\].*compression_state saved"):
        load_state(fresh, partial, is_resume=True)
    assert load_state(fresh, partial) == len(partial)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"conv1.weight": torch.zeros(1)},
            r"compression_state is a checkpoint or model state_dict, not the output of "
            r"ctrl.get_compression_state\(\); pass checkpoint\['compression_state'\]",
        ),
        ({"ctrl_state": {}}, "a dict without a 'builder_state' key"),
        ([{"builder_state": {}}], "a list without a 'builder_state' key"),
        (
            {"builder_state": {"magnitude_sparsity": {}}, "ctrl_state": {}},
            r"no builder_state.quantization entry \(it holds \['magnitude_sparsity'\]\)",
        ),
        (
            {"builder_state": {"quantization": {"version": 2, "quantizer_setup": {}}}},
            "version is 2; this nncf_explore reads version 1",
        ),
        (
            {"builder_state": {"quantization": {"version": 1, "quantizer_setup": {"points": [{}]}}}},
            r"quantizer_setup.points\[0\].kind: missing; pass the compression_state exactly as",
        ),
    ],
)
def test_bad_compression_state_raises_a_config_error_naming_the_fix(state, message) -> None:
    with pytest.raises(ConfigError, match=message):
        quiet_create(digits.DigitsNet(), digits.quantization_config(), compression_state=state)


def test_compression_state_of_another_model_names_the_missing_node(trained_w4a8) -> None:
    ctrl, _ = trained_w4a8
    state = copy.deepcopy(ctrl.get_compression_state())
    point = state["builder_state"]["quantization"]["quantizer_setup"]["points"][0]
    point["target_node"] = "DigitsNet/Conv2d[conv9]/conv2d_0"
    with pytest.raises(
        ConfigError,
        match=r"points\[0\].target_node: this model's graph has no node 'DigitsNet/Conv2d\[conv9\]/conv2d_0'; "
        r"did you mean 'DigitsNet/Conv2d\[conv",
    ):
        quiet_create(digits.DigitsNet(), digits.quantization_config(4, 8), compression_state=state)


# -- 6. graph dumps ---------------------------------------------------------------------------------------
def test_dump_graphs_writes_both_graphs_with_quantizers_annotated(tmp_path) -> None:
    config = {**digits.quantization_config(), "log_dir": str(tmp_path / "logs")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(digits.DigitsNet(), config)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "compressed_graph.dot",
        "original_graph.dot",
    ]
    original = (tmp_path / "logs" / "original_graph.dot").read_text()
    compressed = (tmp_path / "logs" / "compressed_graph.dot").read_text()
    assert '"1 DigitsNet/Conv2d[conv1]/conv2d_0"' in original and "WEIGHT B:8" not in original
    assert compressed.count("WEIGHT B:8 M:S SGN:S PC:Y") == len(ctrl.weight_quantizers) == 4
    assert compressed.count("OUTPUT B:8 M:S") == len(ctrl.non_weight_quantizers)


def test_dump_graphs_false_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    quiet_create(digits.DigitsNet(), {**digits.quantization_config(), "log_dir": str(tmp_path / "logs")})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"compression": [{"algorithm": "movement_sparsity"}]},
            "'movement_sparsity' is valid NNCF but not implemented",
        ),
        (
            {"target_device": "TRIAL", "compression": {"algorithm": "quantization", "weights": {"bits": 9}}},
            "compression.weights.bits: 9 bits is out of range",
        ),
    ],
    ids=["unsupported_algorithm", "bits_out_of_range"],
)
def test_a_refused_config_writes_nothing(tmp_path, change, message) -> None:
    config = {**digits.quantization_config(), "log_dir": str(tmp_path / "logs"), **change}
    (tmp_path / "logs").mkdir()
    with pytest.raises(ConfigError, match=message):
        create_compressed_model(digits.DigitsNet(), config)
    assert list((tmp_path / "logs").iterdir()) == []


def test_a_refused_compression_state_writes_nothing(tmp_path, trained_w4a8) -> None:
    ctrl, _ = trained_w4a8
    state = copy.deepcopy(ctrl.get_compression_state())
    state["builder_state"]["quantization"]["quantizer_setup"]["points"][0]["kind"] = "junk"
    config = {**digits.quantization_config(4, 8), "log_dir": str(tmp_path / "logs")}
    (tmp_path / "logs").mkdir()
    with pytest.raises(ConfigError, match=r"points\[0\]\.kind: 'junk' is not one of"):
        create_compressed_model(digits.DigitsNet(), config, compression_state=state)
    assert list((tmp_path / "logs").iterdir()) == []


# -- 8. staged quantization -------------------------------------------------------------------------------
def test_staged_quantization_moves_through_the_stages_and_its_state_round_trips() -> None:
    params = {"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 2}
    config = digits.init_config(digits.quantization_config(params=params))
    ctrl, _q = quiet_create(digits.trained_fp32(), config)
    assert ctrl.scheduler.get_state() == {"current_step": -1, "current_epoch": -1}

    def enabled() -> tuple[set[bool], set[bool]]:
        return (
            {info.quantizer_module_ref.is_enabled for info in ctrl.non_weight_quantizers.values()},
            {info.quantizer_module_ref.is_enabled for info in ctrl.weight_quantizers.values()},
        )

    seen = [(ctrl.compression_stage(), enabled())]
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        ctrl.scheduler.step()
        seen.append((ctrl.compression_stage(), enabled()))
    off, on = {False}, {True}
    assert seen == [
        (CompressionStage.UNCOMPRESSED, (off, off)),
        (CompressionStage.UNCOMPRESSED, (off, off)),
        (CompressionStage.PARTIALLY_COMPRESSED, (on, off)),
        (CompressionStage.FULLY_COMPRESSED, (on, on)),
    ]
    state = json.loads(json.dumps(ctrl.get_compression_state()))
    assert state["ctrl_state"]["quantization"] == {
        "loss_state": None,
        "scheduler_state": {"current_step": 2, "current_epoch": 2},
        "compression_stage": 2,
    }
    restored, _ = quiet_create(digits.trained_fp32(), digits.quantization_config(params=params), state)
    assert restored.scheduler.get_state() == {"current_step": 2, "current_epoch": 2}
    assert restored.compression_stage() is CompressionStage.FULLY_COMPRESSED
    state["ctrl_state"]["quantization"]["scheduler_state"] = {"current_step": 5, "current_epoch": 1}
    partial, _ = quiet_create(digits.trained_fp32(), digits.quantization_config(params=params), state)
    assert partial.compression_stage() is CompressionStage.PARTIALLY_COMPRESSED


def test_staged_quantization_freezes_disabled_quantizers() -> None:
    params = {"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 1}
    ctrl, _ = quiet_create(digits.trained_fp32(), digits.quantization_config(params=params))
    assert not any(
        p.requires_grad for quantizer in ctrl.all_quantizations.values() for p in quantizer.parameters()
    )
    ctrl.scheduler.epoch_step(1)
    assert all(
        p.requires_grad for quantizer in ctrl.all_quantizations.values() for p in quantizer.parameters()
    )


# -- 12. error paths --------------------------------------------------------------------------------------
def test_no_input_info_and_no_loader_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match='no input_info and no init data loader .*"input_info": '):
        quiet_create(digits.DigitsNet(), {"compression": {"algorithm": "quantization"}})


def test_a_registered_loader_replaces_input_info() -> None:
    config = register_default_init_args(
        NNCFConfig.from_dict({"compression": {"algorithm": "quantization"}}),
        digits.train_loader(shuffle=False),
    )
    ctrl, q = quiet_create(digits.trained_fp32(), config)
    x, _ = digits.eval_split()
    _, reference = quiet_create(digits.trained_fp32(), digits.init_config(digits.quantization_config()))
    torch.testing.assert_close(outputs(q, x), outputs(reference, x), rtol=0, atol=0)
    assert ctrl.setup == reference.nncf.quantizer_setup


def test_unsupported_algorithm_is_a_config_error_listing_the_supported_ones() -> None:
    config = {**digits.quantization_config(), "compression": [{"algorithm": "movement_sparsity"}]}
    with pytest.raises(
        ConfigError,
        match=r"compression\[0\].algorithm: 'movement_sparsity' is valid NNCF but not implemented by "
        r"nncf_explore; supported: \['quantization', 'magnitude_sparsity', ",
    ) as raised:
        quiet_create(digits.DigitsNet(), config)
    for name in ("rb_sparsity", "const_sparsity", "knowledge_distillation"):
        assert f"'{name}'" in str(raised.value)


def test_dummy_forward_fn_needs_wrap_inputs_fn() -> None:
    def dummy_forward(model: nn.Module) -> Any:
        return model(nncf_model_input(torch.zeros(1, 1, 8, 8)))

    with pytest.raises(
        ValueError, match=r"dummy_forward_fn was given without wrap_inputs_fn\. .*Pass both, or neither"
    ):
        quiet_create(digits.DigitsNet(), digits.quantization_config(), dummy_forward_fn=dummy_forward)


def test_dummy_forward_fn_with_wrap_inputs_fn_gives_the_default_setup() -> None:
    def dummy_forward(model: nn.Module) -> Any:
        return model(nncf_model_input(torch.zeros(1, 1, 8, 8)))

    def wrap_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (nncf_model_input(args[0]),), kwargs

    ctrl, q = quiet_create(
        digits.DigitsNet(),
        digits.quantization_config(),
        dummy_forward_fn=dummy_forward,
        wrap_inputs_fn=wrap_inputs,
    )
    reference, _ = quiet_create(digits.DigitsNet(), digits.quantization_config())
    assert ctrl.setup == reference.setup
    assert q(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_config_must_be_a_dict_or_nncf_config() -> None:
    with pytest.raises(TypeError, match="config must be an NNCFConfig or a dict, not list"):
        quiet_create(digits.DigitsNet(), [{"algorithm": "quantization"}])


def test_no_compression_section_gives_a_full_no_op_controller(tmp_path) -> None:
    ctrl, q = quiet_create(digits.trained_fp32(), {"input_info": digits.INPUT_INFO})
    x, _ = digits.eval_split()
    torch.testing.assert_close(outputs(q, x), outputs(digits.trained_fp32(), x), rtol=0, atol=0)
    assert (
        ctrl.name == "NoCompressionAlgorithm"
        and ctrl.compression_stage() is CompressionStage.FULLY_COMPRESSED
    )
    assert ctrl.loss().item() == 0.0 and ctrl.statistics().to_str() == ""
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.step()
    assert json.loads(json.dumps(ctrl.get_compression_state()))["ctrl_state"] == {
        "NoCompressionAlgorithm": {
            "loss_state": None,
            "scheduler_state": {"current_step": 0, "current_epoch": 0},
            "compression_stage": 2,
        }
    }
    ctrl.export_model(tmp_path / "plain.onnx")
    assert (tmp_path / "plain.onnx").stat().st_size > 0
