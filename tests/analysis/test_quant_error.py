"""Per-quantizer and per-node quantization error, checked against errors computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.analysis import measure_quantization_error
from nncf_explore.analysis.quant_error import SAMPLE_SIZE, sqnr_db
from tests.models import MixedCNN


def _compressed(model: nn.Module, shape: list[int], data: list[tuple[torch.Tensor, int]], **section):
    # BatchNorm adaptation runs after range init and moves activations away from the ranges
    # it set; these tests compare bit widths, not that clipping, so it is off.
    section.setdefault("initializer", {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}})
    top = {"target_device": "TRIAL"} if "weights" in section else {}
    config = NNCFConfig.from_dict(
        {"input_info": {"sample_size": shape}, **top, "compression": {"algorithm": "quantization", **section}}
    )
    _, qmodel = create_compressed_model(model, register_default_init_args(config, data))
    return qmodel


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    data = [(torch.randn(8, 6), 0) for _ in range(3)]
    return net, data, _compressed(net, [1, 6], data)


def test_every_quantizer_is_measured_and_weight_error_is_q_of_w_against_w(mlp) -> None:
    _, data, qmodel = mlp
    report = measure_quantization_error(qmodel, data, num_samples=24, progress=False)
    assert sorted(report.tensors) == sorted(qmodel.nncf.quantizers())
    assert report.num_batches == 3
    wid = "Sequential/Linear[0]/linear_0|WEIGHT"
    weight = qmodel.get_parameter("0.weight").detach()
    with torch.no_grad():
        noise = float((qmodel.nncf.get_quantizer(wid)(weight) - weight).double().square().sum())
    expected = 10 * math.log10(float(weight.double().square().sum()) / noise)
    assert report.tensors[wid].sqnr_db == pytest.approx(expected, rel=1e-9)
    assert report.tensors[wid].kind == "weight"
    assert report.quantizers_at("Sequential/Linear[0]/linear_0")[0].quantizer_id == wid


def test_activation_error_is_the_quantizer_on_the_fp32_tensor(mlp) -> None:
    net, data, qmodel = mlp
    report = measure_quantization_error(qmodel, data, num_samples=24, progress=False)
    aid = "Sequential/ReLU[1]/relu_0|OUTPUT"
    quantizer = qmodel.nncf.get_quantizer(aid)
    signal = noise = 0.0
    with torch.no_grad():
        for x, _ in data:
            h = net[1](net[0](x)).double()
            q = quantizer(h.float()).double()
            signal += float(h.square().sum())
            noise += float((q - h).square().sum())
    assert report.tensors[aid].sqnr_db == pytest.approx(sqnr_db(signal, noise), rel=1e-6)
    assert report.tensors[aid].relative_mse == pytest.approx(noise / signal, rel=1e-6)
    low, high = report.tensors[aid].clip_range
    assert low == 0.0 and high > 0  # unsigned after ReLU
    assert 0 < len(report.tensors[aid].sample) <= SAMPLE_SIZE
    assert len(report.tensors[aid].sample) == len(report.tensors[aid].quantized_sample)


def test_node_error_of_the_last_op_is_the_model_output_error(mlp) -> None:
    net, data, qmodel = mlp
    report = measure_quantization_error(qmodel, data, num_samples=24, progress=False)
    signal = noise = 0.0
    with torch.no_grad():
        for x, _ in data:
            ref, out = net(x).double(), qmodel(x).double()
            signal += float(ref.square().sum())
            noise += float((out - ref).square().sum())
    last = report.nodes["Sequential/Linear[2]/linear_0"]
    assert last.relative_mse == pytest.approx(noise / signal, rel=1e-6)
    assert last.sqnr_db == pytest.approx(sqnr_db(signal, noise), rel=1e-6)


def test_fewer_bits_give_more_error_everywhere() -> None:
    torch.manual_seed(1)
    net = MixedCNN().eval()
    data = [(torch.randn(4, 3, 16, 16), 0) for _ in range(2)]
    eight = measure_quantization_error(
        _compressed(net, [1, 3, 16, 16], data, weights={"bits": 8}, activations={"bits": 8}),
        data,
        progress=False,
    )
    four = measure_quantization_error(
        _compressed(net, [1, 3, 16, 16], data, weights={"bits": 4}, activations={"bits": 4}),
        data,
        progress=False,
    )
    assert eight.tensors.keys() == four.tensors.keys()
    for qid, err in eight.tensors.items():
        assert four.tensors[qid].sqnr_db < err.sqnr_db, qid
    output = max(eight.nodes, key=lambda n: list(eight.nodes).index(n))
    assert four.nodes[output].relative_mse > eight.nodes[output].relative_mse > 0


def test_disabled_quantizers_are_left_out_and_a_lossless_tensor_is_infinite(mlp) -> None:
    _, data, qmodel = mlp
    aid = "Sequential/ReLU[1]/relu_0|OUTPUT"
    qmodel.nncf.get_quantizer(aid).disable()
    try:
        report = measure_quantization_error(qmodel, data, num_samples=8, progress=False)
    finally:
        qmodel.nncf.get_quantizer(aid).enable()
    assert aid not in report.tensors
    assert sqnr_db(1.0, 0.0) == math.inf


def test_the_compressed_model_is_left_as_it_was(mlp) -> None:
    _, data, qmodel = mlp
    qmodel.train()
    x = data[0][0]
    with torch.no_grad():
        before = qmodel(x)
    measure_quantization_error(qmodel, data, num_samples=8, progress=False)
    assert qmodel.training
    with torch.no_grad():
        assert torch.equal(qmodel(x), before)
    qmodel.eval()


def test_an_uncompressed_model_is_refused() -> None:
    with pytest.raises(ValueError, match="not a compressed model"):
        measure_quantization_error(nn.Linear(2, 2), [(torch.ones(1, 2), 0)], progress=False)
