"""Hutchinson Hessian traces (HAWQ), checked against Hessians known in closed form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.compression.precision.hessian import HessianTraces, hessian_traces, weight_perturbations

WID = "Sequential/Linear[0]/linear_0|WEIGHT"


def _regression(x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(x.shape[1], 1, bias=False))
    config = NNCFConfig.from_dict(
        {"input_info": {"sample_size": [1, x.shape[1]]}, "compression": {"algorithm": "quantization"}}
    )
    data = [(x, y)]
    _, qmodel = create_compressed_model(net, register_default_init_args(config, data, criterion=nn.MSELoss()))
    return qmodel, data


def test_diagonal_hessian_is_exact_in_one_draw() -> None:
    # L = mean((x·w - y)^2) has H = 2/N XᵀX; with orthogonal columns it is diagonal, and then
    # vᵀHv = tr(H) for every Rademacher v.
    scales = torch.tensor([1.0, 2.0, 3.0, 0.5])
    x = torch.diag(scales)
    qmodel, data = _regression(x, torch.zeros(4, 1))
    result = hessian_traces(qmodel, data, nn.MSELoss(), num_data_points=4, iter_number=10, progress=False)
    expected = float(2 / 4 * scales.square().sum()) / 4  # averaged over the 4 weight elements
    assert result.traces[WID] == pytest.approx(expected, rel=1e-6)
    assert result.converged and result.iterations == 2


def test_random_inputs_converge_near_the_true_trace() -> None:
    torch.manual_seed(3)
    x = torch.randn(64, 8)
    qmodel, data = _regression(x, torch.randn(64, 1))
    result = hessian_traces(
        qmodel, data, nn.MSELoss(), num_data_points=64, iter_number=400, tolerance=1e-5, progress=False
    )
    true = float(2 / 64 * x.square().sum()) / 8
    assert result.traces[WID] == pytest.approx(true, rel=0.1)
    assert len(result.history) == result.iterations
    assert result.history[-1] == result.traces


def test_same_seed_same_traces_and_the_model_is_untouched() -> None:
    torch.manual_seed(4)
    x = torch.randn(16, 8)
    qmodel, data = _regression(x, torch.randn(16, 1))
    qmodel.train()
    before = {k: v.clone() for k, v in qmodel.state_dict().items()}
    runs = [
        hessian_traces(qmodel, data, nn.MSELoss(), iter_number=5, tolerance=0.0, seed=7, progress=False)
        for _ in range(2)
    ]
    assert runs[0].traces == runs[1].traces
    assert runs[0].iterations == 5 and not runs[0].converged
    assert qmodel.training
    assert all(torch.equal(before[k], v) for k, v in qmodel.state_dict().items())
    assert all(p.grad is None for p in qmodel.parameters())


def test_perturbation_grows_as_bits_shrink_and_scales_with_the_trace() -> None:
    qmodel, _ = _regression(torch.randn(8, 16), torch.zeros(8, 1))
    one = weight_perturbations(qmodel, HessianTraces({WID: 1.0}, 1, True), [2, 4, 8])[WID]
    three = weight_perturbations(qmodel, HessianTraces({WID: 3.0}, 1, True), [2, 4, 8])[WID]
    assert one[2] > one[4] > one[8] > 0
    assert three[4] == pytest.approx(3 * one[4])


def test_an_empty_loader_is_a_clear_error() -> None:
    qmodel, _ = _regression(torch.randn(4, 4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="yielded no batch"):
        hessian_traces(qmodel, [], nn.MSELoss(), progress=False)


def test_a_negative_trace_never_rewards_fewer_bits() -> None:
    qmodel, _ = _regression(torch.randn(8, 16), torch.zeros(8, 1))
    perturbations = weight_perturbations(qmodel, HessianTraces({WID: -2.0}, 1, True), [2, 4, 8])[WID]
    assert perturbations == {2: 0.0, 4: 0.0, 8: 0.0}
