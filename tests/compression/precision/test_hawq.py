"""HAWQ bit assignment: groups, the exact search checked by brute force, and the config path."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from nncf_explore.compression.precision import hessian
from nncf_explore.compression.precision.complexity import bit_complexity
from nncf_explore.compression.precision.groups import quantizer_groups
from nncf_explore.compression.precision.hawq import hawq_assignment
from nncf_explore.compression.precision.mixed_precision import setup_with_bits
from nncf_explore.errors import ConfigError
from tests.models import resnet18


class Branchy(nn.Module):
    """One ReLU output feeds two linears (a liberal group of two), then a third linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.left = nn.Linear(8, 8)
        self.right = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        return self.head(torch.relu(self.left(h) + self.right(h)))


def _config(**precision) -> NNCFConfig:
    return NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": [1, 6]},
            "target_device": "TRIAL",
            "compression": {
                "algorithm": "quantization",
                "initializer": {
                    "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
                    "precision": {"type": "hawq", "num_data_points": 32, "iter_number": 30, **precision},
                },
            },
        }
    )


def _data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(2)]


def _hawq_model(**precision):
    torch.manual_seed(0)
    config = register_default_init_args(_config(**precision), _data(), criterion=nn.CrossEntropyLoss())
    return create_compressed_model(Branchy(), config, dump_graphs=False)


def test_groups_tie_the_weights_an_activation_feeds() -> None:
    _, qmodel = _hawq_model(compression_ratio=1.0)
    setup = qmodel.nncf.quantizer_setup
    groups = {g.weights for g in quantizer_groups(setup, strict=False)}
    assert ("Branchy/Linear[left]/linear_0|WEIGHT", "Branchy/Linear[right]/linear_0|WEIGHT") in groups
    assert ("Branchy/Linear[head]/linear_0|WEIGHT",) in groups
    flat = [w for g in groups for w in g]
    assert sorted(flat) == sorted(p.id for p in setup.weights)


def test_resnet_groups_cover_every_weight_once() -> None:
    from nncf_explore.compression.quantization.build import build_quantizer_setup
    from nncf_explore.graph import trace_model

    graph = trace_model(resnet18(num_classes=10).eval(), {"sample_size": [1, 3, 32, 32]})
    setup = build_quantizer_setup(graph, {"compression": {"algorithm": "quantization"}})
    for strict in (True, False):
        groups = quantizer_groups(setup, strict=strict)
        weights = [w for g in groups for w in g.weights]
        assert sorted(weights) == sorted(p.id for p in setup.weights)
        activations = [a for g in groups for a in g.activations]
        assert len(activations) == len(set(activations))


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("ratio", [1.0, 1.3, 1.8, 2.5])
def test_assignment_is_the_brute_force_optimum(strict: bool, ratio: float) -> None:
    _, qmodel = _hawq_model(compression_ratio=1.0)
    graph, setup = qmodel.nncf.get_graph(), qmodel.nncf.quantizer_setup
    rng = random.Random(int(ratio * 10) + strict)
    weights = [p.id for p in setup.weights]
    perturbations = {w: {2: rng.uniform(5, 9), 4: rng.uniform(1, 4), 8: rng.uniform(0, 0.5)} for w in weights}
    result = hawq_assignment(
        graph, setup, perturbations, compression_ratio=ratio, strict=strict, allowed=lambda p: (2, 4, 8)
    )
    int8 = bit_complexity(graph, setup)
    assert result.int8_complexity == int8
    best = None
    groups = quantizer_groups(setup, strict=strict)
    for combo in itertools.product((2, 4, 8), repeat=len(weights)):
        bits = dict(zip(weights, combo))
        if strict and any(len({bits[w] for w in g.weights}) > 1 for g in groups):
            continue
        full = dict(bits)
        for g in groups:
            for a in g.activations:
                ops = set(setup.get(a).directly_quantized_ops)
                full[a] = max(b for w, b in bits.items() if setup.get(w).target_node in ops)
        cost = bit_complexity(graph, setup_with_bits(setup, full))
        if int8 / cost >= ratio - 1e-12:
            loss = sum(perturbations[w][b] for w, b in bits.items())
            if best is None or loss < best[0] - 1e-12:
                best = (loss, full)
    assert best is not None
    assert result.chosen.loss == pytest.approx(best[0])
    assert result.compression_ratio >= ratio - 1e-12
    assert bit_complexity(graph, setup_with_bits(setup, dict(result.bits))) == result.chosen.cost


def test_an_unreachable_ratio_names_the_highest_one() -> None:
    with pytest.raises(ConfigError, match=r"no assignment .* reaches 9; the highest possible is 4\.000"):
        _hawq_model(compression_ratio=9.0)


def test_create_compressed_model_applies_mixed_bits_that_meet_the_ratio(tmp_path) -> None:
    _, qmodel = _hawq_model(compression_ratio=1.5, bits=[4, 8])
    setup = qmodel.nncf.quantizer_setup
    assert {p.spec.bits for p in setup.weights} == {4, 8}
    int8 = bit_complexity(
        qmodel.nncf.get_graph(), setup_with_bits(setup, dict.fromkeys([p.id for p in setup], 8))
    )
    assert int8 / bit_complexity(qmodel.nncf.get_graph(), setup) >= 1.5
    for p in setup:  # the modules follow the setup
        assert qmodel.nncf.get_quantizer(p.id).num_bits == p.spec.bits
    x = _data()[0][0]
    with torch.no_grad():
        assert torch.isfinite(qmodel(x)).all()


def test_compression_state_restores_the_bits_without_traces(monkeypatch) -> None:
    ctrl, qmodel = _hawq_model(compression_ratio=1.5, bits=[4, 8])
    state = ctrl.get_compression_state()

    def refuse(*args, **kwargs):
        raise AssertionError("traces were recomputed on restore")

    monkeypatch.setattr(hessian, "hessian_traces", refuse)
    monkeypatch.setattr("nncf_explore.compression.precision.initializer.hessian_traces", refuse)
    config = register_default_init_args(
        _config(compression_ratio=1.5, bits=[4, 8]), _data(), criterion=nn.CrossEntropyLoss()
    )
    _, restored = create_compressed_model(Branchy(), config, compression_state=state, dump_graphs=False)
    assert restored.nncf.quantizer_setup == qmodel.nncf.quantizer_setup


def test_dumped_traces_are_reused_by_traces_per_layer_path(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    config = _config(compression_ratio=1.5, bits=[4, 8], dump_init_precision_data=True)
    config["log_dir"] = str(tmp_path)
    config = register_default_init_args(config, _data(), criterion=nn.CrossEntropyLoss())
    _, first = create_compressed_model(Branchy(), config, dump_graphs=False)
    saved = json.loads((tmp_path / "hawq_traces.json").read_text())
    chosen = json.loads((tmp_path / "hawq_bits.json").read_text())
    assert sorted(saved["traces"]) == sorted(p.id for p in first.nncf.quantizer_setup.weights)
    assert chosen["compression_ratio"] >= 1.5

    monkeypatch.setattr(
        "nncf_explore.compression.precision.initializer.hessian_traces",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")),
    )
    torch.manual_seed(0)
    reuse = _config(
        compression_ratio=1.5, bits=[4, 8], traces_per_layer_path=str(tmp_path / "hawq_traces.json")
    )
    _, second = create_compressed_model(
        Branchy(), register_default_init_args(reuse, _data()), dump_graphs=False
    )
    assert {p.id: p.spec.bits for p in second.nncf.quantizer_setup} == {
        p.id: p.spec.bits for p in first.nncf.quantizer_setup
    }


def test_traces_for_another_model_are_refused_with_the_fix(tmp_path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traces": {"Other/Linear[x]/linear_0|WEIGHT": 1.0}}))
    with pytest.raises(ConfigError, match="has no trace for weight quantizer .*delete the path"):
        _hawq_model(compression_ratio=1.5, traces_per_layer_path=str(path))


def test_hawq_without_a_criterion_says_how_to_register_one() -> None:
    config = register_default_init_args(_config(compression_ratio=1.5), _data())
    with pytest.raises(ConfigError, match=r"criterion=torch\.nn\.CrossEntropyLoss\(\)"):
        create_compressed_model(Branchy(), config, dump_graphs=False)


def test_hawq_bits_the_device_refuses_are_named() -> None:
    config = _config(compression_ratio=1.5)
    config["target_device"] = "CPU"
    config = register_default_init_args(config, _data(), criterion=nn.CrossEntropyLoss())
    with pytest.raises(ConfigError, match=r"precision\.bits: \[2, 4\] not allowed on target_device 'CPU'"):
        create_compressed_model(Branchy(), config, dump_graphs=False)


def test_autoq_is_refused_with_pointers_to_hawq_and_the_budget_search() -> None:
    config = _config()
    config["compression"]["initializer"]["precision"] = {"type": "autoq"}
    with pytest.raises(ConfigError, match="'autoq'.*use 'hawq'.*budget search"):
        create_compressed_model(Branchy(), register_default_init_args(config, _data()), dump_graphs=False)


class AddBranch(nn.Module):
    """``a(x)`` feeds both a convolution and an add with ``b(x)``; NPU gives the add's inputs one scale."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.e = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ya, yb = torch.relu(self.a(x)), torch.relu(self.b(x))  # ReLUs keep the add out of a fused conv+add
        return self.e(ya) + (ya + yb)


def test_unified_members_always_get_one_bit_width() -> None:
    from nncf_explore.analysis.sensitivity import device_bits
    from nncf_explore.compression.precision.groups import GroupSearch
    from nncf_explore.compression.precision.mixed_precision import mixed_precision_front
    from nncf_explore.compression.quantization.build import build_quantizer_setup
    from nncf_explore.graph import trace_model

    net = AddBranch().eval()
    graph = trace_model(net, {"sample_size": [1, 3, 8, 8]})
    # NPU: an add's inputs share a scale (TRIAL has no hardware config, so no unified scales), and
    # convolution inputs may take 4 or 8 bits. a's output feeds e, so the search sets its bits; b's
    # output feeds only the add, and must follow.
    setup = build_quantizer_setup(
        graph, {"target_device": "NPU", "compression": {"algorithm": "quantization"}}
    )
    unified: dict[int, list[str]] = {}
    for p in setup.activations:
        if p.unified_group is not None:
            unified.setdefault(p.unified_group, []).append(p.id)
    assert unified, "the concatenation should have unified its inputs"
    rng = random.Random(0)
    losses = {p.id: {2: rng.uniform(2, 3), 4: rng.uniform(0.5, 1), 8: 0.0} for p in setup.weights}
    for cost in ("bit_complexity", "bops"):
        front = mixed_precision_front(
            graph, setup, losses, [2, 4, 8], cost=cost, allowed=device_bits(graph, "NPU")
        )
        for point in front.points:
            bits = front.bits(point)
            for ids in unified.values():
                assert len({bits.get(i, setup.get(i).spec.bits) for i in ids}) == 1, (cost, bits)
            front.setup(point)  # a valid setup: building it checks the unified groups
    assert GroupSearch(graph, setup, losses, lambda p: (4, 8), cost="bops").groups


def test_the_front_keeps_to_the_devices_bits() -> None:
    from nncf_explore.analysis import Sensitivity

    torch.manual_seed(0)
    config = NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": [1, 6]},
            "compression": {"algorithm": "quantization"},
        }  # ANY: 8 bits only
    )
    _, qmodel = create_compressed_model(
        Branchy(),
        register_default_init_args(config, _data(), criterion=nn.CrossEntropyLoss()),
        dump_graphs=False,
    )
    front = Sensitivity(qmodel, _data(), criterion=nn.CrossEntropyLoss(), progress=False).front(
        [4, 8], iter_number=5
    )
    assert len(front.points) == 1
    assert set(front.bits(front.points[0]).values()) == {8}
