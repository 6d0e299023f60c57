"""ctrl.export_model (ONNX with standard Q/DQ, run by onnxruntime) and ctrl.strip (plain torch)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.compression.quantization.export import grid_params
from tests import models
from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def create(model: nn.Module, config: dict[str, Any], loader: Any) -> tuple[Any, nn.Module]:
    """``loader=None``: no init data (an empty loader is refused)."""
    nncf_config = NNCFConfig.from_dict(config)
    if loader is not None:
        nncf_config = register_default_init_args(nncf_config, loader)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, nncf_config, dump_graphs=False)


@pytest.fixture(scope="module")
def resnet() -> tuple[Any, nn.Module, torch.Tensor]:
    """ResNet-18's architecture at width 16, INT8 defaults (CPU: 7-bit weights), range-initialised."""
    torch.manual_seed(0)
    model = models.ResNet(width=16, num_classes=10).eval()
    generator = torch.Generator().manual_seed(3)
    batches = [(torch.randn(8, 3, 32, 32, generator=generator), 0) for _ in range(4)]
    config = {"input_info": {"sample_size": [1, 3, 32, 32]}, "compression": {"algorithm": "quantization"}}
    ctrl, q = create(model, config, batches)
    return ctrl, q, torch.randn(16, 3, 32, 32, generator=generator)


@pytest.fixture(scope="module")
def four_bit() -> tuple[Any, nn.Module, torch.Tensor]:
    """DigitsNet with 4-bit per-channel weights and 4-bit activations on TRIAL, after one QAT epoch."""
    config = digits.quantization_config(4, 4, weights={"per_channel": True})
    ctrl, q = create(digits.trained_fp32(), config, digits.train_loader(shuffle=False))
    digits.qat(ctrl, q, epochs=1)
    return ctrl, q, digits.eval_split()[0][:32]


def op_counts(path: Any) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def enabled_points(ctrl: Any) -> int:
    return sum(quantizer.is_enabled for quantizer in ctrl.all_quantizations.values())


def run_onnx(path: Any, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1].numpy()})[0] for i in range(len(x))])


def last_quantizer_tolerance(ctrl: Any, model: nn.Module) -> float:
    """How far one level of the quantizer feeding the head can move the logits.

    The head is ``fc(q(pooled))``; a value on a rounding boundary may land one level apart in
    onnxruntime (its kernel computes ``round(x / step)`` rather than NNCF's ``round(x * (levels-1)
    / range)``), which moves each logit by at most ``step * max_j sum_i |W_q[j, i]|``.
    """
    qid = next(qid for qid in ctrl.non_weight_quantizers if "avg_pool" in qid)
    step = grid_params(ctrl.non_weight_quantizers[qid].quantizer_module_ref)[0].max().item()
    with torch.no_grad():
        fc = next(q for q in ctrl.weight_quantizers if "Linear[fc]" in q)
        weight = ctrl.weight_quantizers[fc].quantizer_module_ref
        row_norm = weight(model.fc.weight).abs().sum(dim=1).max().item()
    return step * row_norm


@pytest.mark.parametrize("case", ["resnet", "four_bit"])
def test_export_writes_standard_qdq_onnx_that_onnxruntime_runs_like_torch(case, request, tmp_path) -> None:
    ctrl, q, x = request.getfixturevalue(case)
    path = tmp_path / "model.onnx"
    ctrl.export_model(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    counts = op_counts(path)
    assert counts["QuantizeLinear"] == counts["DequantizeLinear"] == enabled_points(ctrl) == len(ctrl.setup)
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
    assert [i.name for i in proto.graph.input] == ["input.0"] and [o.name for o in proto.graph.output] == [
        "output.0"
    ]
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    with torch.no_grad():  # batch 1, as exported: a batched conv may round differently in the last bit
        expected = torch.cat([q.eval()(x[i : i + 1]) for i in range(len(x))]).numpy()
    got = run_onnx(path, x)
    tolerance = last_quantizer_tolerance(ctrl, q)
    assert np.abs(got - expected).max() <= tolerance, (np.abs(got - expected).max(), tolerance)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # written atomically, no temp files left


def test_disabled_quantizers_are_left_out_of_the_export(four_bit, tmp_path) -> None:
    ctrl, q, x = four_bit
    ctrl.disable_activation_quantization()
    try:
        ctrl.export_model(tmp_path / "weights_only.onnx")
    finally:
        ctrl.enable_activation_quantization()
    assert op_counts(tmp_path / "weights_only.onnx")["QuantizeLinear"] == len(ctrl.weight_quantizers) == 4
    with torch.no_grad():
        expected = q(x).numpy()
    ctrl.export_model(tmp_path / "all.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "all.onnx", x), expected, atol=1e-4)


def test_export_options_opset_names_and_model_args(resnet, tmp_path) -> None:
    ctrl, q, x = resnet
    training = [m.training for m in q.modules()]
    ctrl.export_model(
        tmp_path / "m13.onnx", save_format="onnx_13", input_names=["image"], output_names=["logits"]
    )
    proto = onnx.load(str(tmp_path / "m13.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert [i.name for i in proto.graph.input] == ["image"] and [o.name for o in proto.graph.output] == [
        "logits"
    ]
    ctrl.export_model(tmp_path / "batch4.onnx", model_args=(x[:4],))
    dims = [
        d.dim_value
        for d in onnx.load(str(tmp_path / "batch4.onnx")).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == [4, 3, 32, 32]
    assert [m.training for m in q.modules()] == training


@pytest.mark.parametrize(
    ("save_format", "message"),
    [
        (
            "openvino",
            r"save_format 'openvino' is not supported; use 'onnx' or 'onnx_<opset>' \(e.g. 'onnx_17'\)",
        ),
        ("onnx_12", "save_format 'onnx_12': per-channel QuantizeLinear needs opset 13 or newer"),
        ("onnx_x", "save_format 'onnx_x' is not supported"),
    ],
)
def test_bad_save_format_is_refused_before_anything_is_written(
    resnet, tmp_path, save_format, message
) -> None:
    ctrl, _, _ = resnet
    with pytest.raises(ValueError, match=message):
        ctrl.export_model(tmp_path / "m.onnx", save_format=save_format)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["resnet", "four_bit"])
def test_strip_gives_plain_torch_with_equal_outputs_at_any_batch_size(case, request) -> None:
    ctrl, q, x = request.getfixturevalue(case)
    stripped = ctrl.strip()
    ours = [type(m) for m in stripped.modules() if type(m).__module__.startswith("nncf_explore")]
    assert ours == []
    with torch.no_grad():
        for batch in (x, x[:1], x[:5]):
            torch.testing.assert_close(stripped(batch), q(batch), rtol=0, atol=0)
    shared = ctrl.strip(do_copy=False)
    assert shared is not q and {p.data_ptr() for p in shared.parameters()} <= {
        t.data_ptr() for t in (*q.parameters(), *q.buffers())
    }
    assert not {p.data_ptr() for p in stripped.parameters()} & {t.data_ptr() for t in q.parameters()}


def test_stripped_model_is_independent_of_the_compressed_one(four_bit) -> None:
    ctrl, q, x = four_bit
    stripped = ctrl.strip()
    with torch.no_grad():
        expected = stripped(x)
        quantizer = next(iter(ctrl.weight_quantizers.values())).quantizer_module_ref
        saved = quantizer.scale.clone()
        quantizer.scale.mul_(0.5)
        try:
            assert not torch.equal(q(x), expected)
            torch.testing.assert_close(stripped(x), expected, rtol=0, atol=0)
        finally:
            quantizer.scale.copy_(saved)
        torch.testing.assert_close(q(x), expected, rtol=0, atol=0)


def test_keyword_inputs_export_and_strip(tmp_path) -> None:
    info = [{"sample_size": [2, 4]}, {"sample_size": [2, 3], "keyword": "scale"}]
    ctrl, q = create(
        models.KeywordModel().eval(), {"input_info": info, "compression": {"algorithm": "quantization"}}, None
    )
    ctrl.export_model(tmp_path / "keyword.onnx")
    session = ort.InferenceSession(str(tmp_path / "keyword.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input.0", "input.1"]
    x, scale = torch.randn(1, 4), torch.randn(1, 3)
    with torch.no_grad():
        expected = q(x, scale=scale)
    got = session.run(None, {"input.0": x.numpy(), "input.1": scale.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
    stripped = ctrl.strip()
    x, scale = torch.randn(5, 4), torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(stripped(x, scale=scale), q(x, scale=scale), rtol=0, atol=0)


def attention_export(tmp_path: Any) -> tuple[Any, int, list[warnings.WarningMessage]]:
    info = [{"sample_size": [1, 8, 16]}, {"sample_size": [1, 12, 16]}]
    ctrl, _ = create(
        models.CrossAttention().eval(),
        {"input_info": info, "compression": {"algorithm": "quantization"}},
        None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctrl.export_model(tmp_path / "attention.onnx")
    return ctrl, op_counts(tmp_path / "attention.onnx")["QuantizeLinear"], caught


def test_export_never_drops_quantizers_silently(tmp_path) -> None:
    ctrl, exported, caught = attention_export(tmp_path)
    messages = [str(w.message) for w in caught if "export_model" in str(w.message)]
    expected = enabled_points(ctrl)
    if exported < expected:
        assert len(messages) == 1 and f"{expected - exported} of the {expected} quantizers" in messages[0]
        assert "ctrl.strip()" in messages[0]
    else:
        assert messages == []


def test_multihead_attention_exports_every_quantizer(tmp_path) -> None:
    ctrl, exported, _ = attention_export(tmp_path)
    assert exported == enabled_points(ctrl)
