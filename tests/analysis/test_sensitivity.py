"""The analysis API: measures cached per setup and tensor state, by node for the overlay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.analysis import MEASURES, Sensitivity
from nncf_explore.analysis import quant_error as quant_error_module
from nncf_explore.compression.precision import hessian as hessian_module
from nncf_explore.compression.precision.mixed_precision import setup_with_bits

DATA = [
    (torch.randn(16, 6, generator=torch.Generator().manual_seed(i)), torch.randint(0, 3, (16,)))
    for i in range(2)
]


@pytest.fixture()
def qmodel():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    config = NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": [1, 6]},
            "target_device": "TRIAL",
            "compression": {"algorithm": "quantization"},
        }
    )
    _, model = create_compressed_model(net, register_default_init_args(config, DATA), dump_graphs=False)
    return model


def _accuracy(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum((model(x).argmax(1) == y).float().mean() for x, y in DATA) / len(DATA))


def _counting(monkeypatch, module, name, target_module):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(target_module, name, wrapper)
    return calls


def test_errors_are_cached_until_the_setup_or_a_tensor_changes(qmodel, monkeypatch) -> None:
    import nncf_explore.analysis.sensitivity as sensitivity_module

    calls = _counting(monkeypatch, quant_error_module, "measure_quantization_error", sensitivity_module)
    s = Sensitivity(qmodel, DATA, progress=False)
    first = s.errors()
    assert s.errors() is first and len(calls) == 1
    qid = "Sequential/Linear[0]/linear_0|WEIGHT"
    qmodel.nncf.apply_setup(setup_with_bits(qmodel.nncf.quantizer_setup, {qid: 3}))
    second = s.errors()
    assert len(calls) == 2 and second.tensors[qid].sqnr_db < first.tensors[qid].sqnr_db
    with torch.no_grad():
        qmodel.get_parameter("2.weight").mul_(0.5)  # as an optimizer step would
    s.errors()
    assert len(calls) == 3


def test_traces_survive_setup_edits_but_not_weight_changes(qmodel, monkeypatch) -> None:
    import nncf_explore.analysis.sensitivity as sensitivity_module

    calls = _counting(monkeypatch, hessian_module, "hessian_traces", sensitivity_module)
    s = Sensitivity(qmodel, DATA, criterion=nn.CrossEntropyLoss(), progress=False)
    traces = s.traces(iter_number=10)
    qid = "Sequential/Linear[0]/linear_0|WEIGHT"
    qmodel.nncf.apply_setup(setup_with_bits(qmodel.nncf.quantizer_setup, {qid: 4}))
    assert s.traces(iter_number=10) is traces and len(calls) == 1
    with torch.no_grad():
        qmodel.get_parameter("0.weight").add_(0.1)
    s.traces(iter_number=10)
    assert len(calls) == 2


def test_every_overlay_measure_is_keyed_by_node(qmodel) -> None:
    s = Sensitivity(qmodel, DATA, criterion=nn.CrossEntropyLoss(), eval_fn=_accuracy, progress=False)
    quantized_nodes = {p.target_node for p in qmodel.nncf.quantizer_setup}
    weighted = {p.target_node for p in qmodel.nncf.quantizer_setup.weights}
    for measure in MEASURES:
        values = (
            s.node_values(measure, iter_number=10) if measure == "hessian_trace" else s.node_values(measure)
        )
        expected = weighted if measure == "hessian_trace" else quantized_nodes
        if measure == "output_sqnr_db":
            assert set(values) >= weighted
        else:
            assert set(values) == expected, measure
    assert s.node_values("bits") == dict.fromkeys(quantized_nodes, 8.0)
    with pytest.raises(ValueError, match="use one of"):
        s.node_values("colour")  # type: ignore[arg-type]


def test_front_from_measured_ablation_marks_uniform_points(qmodel) -> None:
    s = Sensitivity(qmodel, DATA, eval_fn=_accuracy, progress=False)
    front = s.front([4, 8], loss="ablation")
    eight, four = front.marks["uniform 8-bit"], front.marks["uniform 4-bit"]
    assert eight.loss == 0.0  # the measured drop of every group at 8 bits: none
    # No front point is beaten by a mark: the front is exact.
    assert all(not (m.cost <= p.cost and m.loss < p.loss) for m in (eight, four) for p in front.points)
    assert four.cost == front.points[0].cost  # all at 4 bits is the cheapest assignment
    assert front.points[-1].cost <= eight.cost
    setup = front.setup(front.points[0])
    assert {p.spec.bits for p in setup.weights} == {4}


def test_missing_criterion_or_eval_fn_say_what_to_pass(qmodel) -> None:
    s = Sensitivity(qmodel, DATA, progress=False)
    with pytest.raises(ValueError, match="criterion=torch.nn.CrossEntropyLoss"):
        s.traces()
    with pytest.raises(ValueError, match="needs eval_fn"):
        s.ablation()
    with pytest.raises(ValueError, match="not a compressed model"):
        Sensitivity(nn.Linear(2, 2), DATA)
