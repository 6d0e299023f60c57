"""Metric ablation: the most harmful group stands out, runs resume, the user's model is untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.analysis.ablation import AblationRun

X = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))


def _model(bits_per_scope=()):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    precision = {"precision": {"type": "manual", "bitwidth_per_scope": [list(e) for e in bits_per_scope]}}
    config = NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": [1, 8]},
            "target_device": "TRIAL",
            "compression": {"algorithm": "quantization", "initializer": precision},
        }
    )
    _, qmodel = create_compressed_model(net, register_default_init_args(config, [(X, 0)]), dump_graphs=False)
    return net, qmodel


def _metric(net):
    with torch.no_grad():
        ref = net(X)

    def minus_mse(model: nn.Module) -> float:
        with torch.no_grad():
            return -float((model(X) - ref).square().mean())

    return minus_mse


def test_fp32_ablation_finds_the_2_bit_layer() -> None:
    bad = "Sequential/Linear[2]/linear_0|WEIGHT"
    net, qmodel = _model([(2, bad)])
    run = AblationRun(qmodel, _metric(net), mode="fp32")
    assert run.run(progress=False)
    best = max(run.results.values(), key=lambda r: r.delta)
    assert best.group == (bad,)
    assert best.delta > 0 and best.metric > run.baseline
    assert set(run.deltas()) == {p.id for p in qmodel.nncf.quantizer_setup}


def test_bits_ablation_lowers_one_group_at_a_time_and_hurts() -> None:
    net, qmodel = _model()
    run = AblationRun(qmodel, _metric(net), mode="bits", bits=2)
    assert run.run(progress=False)
    assert len(run.results) == len(qmodel.nncf.quantizer_setup)
    assert sum(r.delta for r in run.results.values()) < 0
    assert all(r.delta < 0 for r in run.results.values() if r.group[0].endswith("|WEIGHT"))


def test_cancel_and_resume_measure_each_group_once() -> None:
    net, qmodel = _model()
    metric = _metric(net)
    calls = []

    def counting(model: nn.Module) -> float:
        calls.append(1)
        if len(calls) == 3:
            run.cancel()
        return metric(model)

    run = AblationRun(qmodel, counting, mode="fp32")
    assert not run.run(progress=False)
    assert len(run.results) == 2  # the baseline, then two groups, the second of which asked to stop
    assert not run.run(max_seconds=0, progress=False)
    assert len(run.results) == 2
    assert run.run(progress=False)
    assert len(calls) == 1 + len(run.groups)


def test_the_users_model_is_never_changed() -> None:
    net, qmodel = _model()
    before = {k: v.clone() for k, v in qmodel.state_dict().items()}
    setup = qmodel.nncf.quantizer_setup
    for mode in ("fp32", "bits"):
        AblationRun(qmodel, _metric(net), mode=mode, bits=4).run(progress=False)
    assert qmodel.nncf.quantizer_setup == setup
    assert all(torch.equal(v, before[k]) for k, v in qmodel.state_dict().items())


def test_an_unknown_mode_is_refused() -> None:
    net, qmodel = _model()
    with pytest.raises(ValueError, match="use 'fp32' or 'bits'"):
        AblationRun(qmodel, _metric(net), mode="off")  # type: ignore[arg-type]
