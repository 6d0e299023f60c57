"""Export helpers: emulated low-bit Q/DQ, ONNX graph and onnxruntime run, strip to torch FakeQuantize."""

from __future__ import annotations

import io
import itertools
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from nncf_explore.compression.quantization.export import grid_params, qdq_forward, to_torch_fake_quantize
from nncf_explore.compression.quantization.quantizers import BaseQuantizer, make_quantizer
from nncf_explore.compression.quantization.spec import QuantizerSpec

GRANULARITIES = {
    "per_tensor": ((1,), None, (4, 6, 5, 5)),
    "weights_axis0": ((6, 1, 1, 1), 0, (6, 4, 3, 3)),
    "activations_axis1": ((1, 6, 1, 1), 1, (4, 6, 5, 5)),
}


class QuantizerWrapper(nn.Module):
    """Runs a quantizer through its exportable Q/DQ form."""

    def __init__(self, quantizer: BaseQuantizer) -> None:
        super().__init__()
        self.quantizer = quantizer

    def forward(self, x: Tensor) -> Tensor:
        return qdq_forward(self.quantizer, x)


def build(
    bits: int, mode: str, signed: bool, narrow: bool, half: bool, gran: str, seed: int = 0
) -> BaseQuantizer:
    shape, axis, _ = GRANULARITIES[gran]
    spec = QuantizerSpec(bits, mode, axis is not None, signed, narrow, half)  # type: ignore[arg-type]
    q = make_quantizer(spec, shape, axis)
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(shape, generator=gen) * -2 * signed
    q.apply_minmax_init(low - 0.05, torch.rand(shape, generator=gen) * 2 + 0.2)
    return q


def away_from_ties(q: BaseQuantizer, x: Tensor) -> Tensor:
    """Inputs whose rounding argument is at least 1e-3 away from a half-integer."""
    low, rng = (t.detach() for t in q.quantization_range())
    s = (q.levels - 1) / rng
    t = (torch.clamp(x, low, low + rng) - low) * s - torch.round(-low * s)
    return ((t - torch.floor(t)) - 0.5).abs() > 1e-3


def _cases() -> list[Any]:
    out = []
    for bits, mode, signed, narrow, half, gran in itertools.product(
        range(2, 9), ("symmetric", "asymmetric"), (True, False), (False, True), (False, True), GRANULARITIES
    ):
        if not ((half and bits == 2) or (mode == "asymmetric" and signed)):
            out.append(pytest.param(bits, mode, signed, narrow, half, gran, id=f"b{bits}-{mode[:4]}-{gran}"))
    return out


@pytest.mark.parametrize(("bits", "mode", "signed", "narrow", "half", "gran"), _cases())
def test_emulated_qdq_equals_quantizer_forward(
    bits: int, mode: str, signed: bool, narrow: bool, half: bool, gran: str
) -> None:
    q = build(bits, mode, signed, narrow, half, gran)
    x = torch.randn(GRANULARITIES[gran][2], generator=torch.Generator().manual_seed(bits)) * 2
    with torch.no_grad():
        ours, emulated = q(x), qdq_forward(q, x)
    keep = away_from_ties(q, x)
    assert keep.float().mean() > 0.99
    torch.testing.assert_close(emulated[keep], ours[keep], rtol=0, atol=1e-6)
    step = grid_params(q)[0]
    assert ((emulated - ours).abs() <= step * 1.001).all()


def test_disabled_quantizer_exports_as_identity() -> None:
    q = build(8, "symmetric", True, False, False, "per_tensor")
    q.disable()
    x = torch.randn(5)
    assert qdq_forward(q, x) is x


def test_more_than_8_bits_cannot_be_exported_as_qdq() -> None:
    q = build(12, "symmetric", True, False, False, "per_tensor")
    with pytest.raises(ValueError, match="at most 8 bits.*set_bits"):
        qdq_forward(q, torch.randn(3))
    fq = to_torch_fake_quantize(q)
    assert fq.dtype == torch.qint32 and (fq.quant_min, fq.quant_max) == (-2048, 2047)


def export_onnx(q: BaseQuantizer, x: Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            nn.Sequential(QuantizerWrapper(q)).eval(), (x,), buffer, dynamo=False, opset_version=17
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("bits", "mode", "signed", "narrow", "half", "gran", "allowed"),
    [
        (8, "symmetric", True, False, False, "per_tensor", set()),
        (8, "symmetric", False, False, False, "per_tensor", set()),
        (8, "asymmetric", False, False, False, "per_tensor", set()),
        (8, "symmetric", True, True, False, "per_tensor", {"Clip"}),
        (8, "symmetric", True, False, True, "per_tensor", {"Clip"}),
        (4, "symmetric", True, False, False, "per_tensor", {"Clip"}),
        (4, "asymmetric", False, False, False, "per_tensor", {"Clip"}),
        (8, "symmetric", True, False, True, "weights_axis0", {"Max", "Min"}),
        (8, "symmetric", True, False, False, "activations_axis1", set()),
        (4, "asymmetric", False, False, False, "activations_axis1", {"Max", "Min"}),
    ],
)
def test_onnx_export_has_standard_qdq_nodes_and_runs_in_onnxruntime(
    bits: int, mode: str, signed: bool, narrow: bool, half: bool, gran: str, allowed: set[str]
) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    q = build(bits, mode, signed, narrow, half, gran).eval()
    x = torch.randn(GRANULARITIES[gran][2], generator=torch.Generator().manual_seed(3)) * 2
    model_bytes = export_onnx(q, x)
    ops = {node.op_type for node in onnx.load_from_string(model_bytes).graph.node}
    assert (
        {"QuantizeLinear", "DequantizeLinear"}
        <= ops
        <= {"QuantizeLinear", "DequantizeLinear", "Constant"} | allowed
    )
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.no_grad():
        want = q(x)
    assert ((got - want).abs() <= grid_params(q)[0] * 1.001).all()
    assert (got - want).abs().le(1e-6).float().mean() > 0.99


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(
    ("mode", "signed", "narrow", "half", "gran", "qscheme"),
    [
        ("symmetric", True, False, False, "per_tensor", torch.per_tensor_symmetric),
        ("symmetric", False, False, False, "per_tensor", torch.per_tensor_affine),
        ("symmetric", True, True, False, "weights_axis0", torch.per_channel_symmetric),
        ("symmetric", True, False, True, "weights_axis0", torch.per_channel_symmetric),
        ("asymmetric", False, False, False, "per_tensor", torch.per_tensor_affine),
        ("asymmetric", False, True, False, "activations_axis1", torch.per_channel_affine),
    ],
)
def test_strip_to_torch_fake_quantize(
    bits: int, mode: str, signed: bool, narrow: bool, half: bool, gran: str, qscheme: torch.qscheme
) -> None:
    q = build(bits, mode, signed, narrow, half, gran, seed=bits)
    fq = to_torch_fake_quantize(q)
    assert isinstance(fq, torch.ao.quantization.FakeQuantize)
    assert fq.qscheme == qscheme
    assert (fq.quant_min, fq.quant_max) == grid_params(q)[2:]
    assert fq.observer_enabled.item() == 0 and fq.fake_quant_enabled.item() == 1
    if q.spec.per_channel:
        assert fq.ch_axis == q.channel_axis
    x = torch.randn(GRANULARITIES[gran][2], generator=torch.Generator().manual_seed(5)) * 2
    with torch.no_grad():
        ours, stripped = q(x), fq(x)
    keep = away_from_ties(q, x)
    torch.testing.assert_close(stripped[keep], ours[keep], rtol=0, atol=1e-6)
    state = fq.state_dict()
    assert state["scale"].dtype == torch.float32 and state["zero_point"].dtype == torch.int32


def test_stripped_disabled_quantizer_is_identity() -> None:
    q = build(8, "symmetric", True, False, False, "per_tensor")
    q.disable()
    x = torch.randn(7)
    assert torch.equal(to_torch_fake_quantize(q)(x), x)
