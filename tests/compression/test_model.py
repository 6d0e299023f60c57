"""compress_model / apply_setup: the user's model stays untouched; the copy trains, copies, distributes."""

from __future__ import annotations

import copy
import inspect
import time
import warnings
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from nncf_explore.compression.interface import CompressionInterface, is_compressed
from nncf_explore.compression.model import apply_setup, compress_model, nncf_interface
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.quantizers import AsymmetricQuantizer
from nncf_explore.compression.quantization.range_stats import RangeInitWarning
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.errors import GraphError
from nncf_explore.graph import trace_model
from tests import models
from tests.compression.tiny import CONV, FC, INPUT, RELU, TinyConv, tiny, tiny_setup

QUANTIZATION = {"compression": {"algorithm": "quantization"}}


def data(n: int = 3, batch: int = 4, shape: tuple[int, ...] = (3, 6, 6)) -> list[tuple[torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(batch, *shape, generator=generator), 0) for _ in range(n)]


def initialised_tiny() -> tuple[nn.Module, nn.Module]:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    q.nncf.init_range(data(), progress=False)
    return model, q


def hooks_of(module: nn.Module) -> int:
    return sum(
        len(getattr(m, name))
        for m in module.modules()
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_state_dict_hooks")
    )


def test_user_model_is_left_untouched() -> None:
    model, graph = tiny()
    model.conv.train()  # a mixed training-flag state must survive as it is
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    q = compress_model(model, graph, tiny_setup())
    q.nncf.init_range(data(), progress=False)
    optimizer = torch.optim.SGD(q.parameters(), lr=0.1)
    q.train()
    for x, _ in data():
        optimizer.zero_grad()
        q(x).square().mean().backward()
        optimizer.step()
    assert type(model) is TinyConv
    assert "forward" not in model.__dict__ and not hasattr(model, "nncf") and not is_compressed(model)
    assert list(model.state_dict()) == list(before)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == flags
    assert hooks_of(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_compressed_model_keeps_the_class_signature_and_state_dict_layout() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    assert type(q) is type(model) and isinstance(q.conv, nn.Conv2d)
    assert isinstance(q._nncf, CompressionInterface)
    assert inspect.signature(q.forward) == inspect.signature(model.forward)
    extra = [k for k in q.state_dict() if k not in model.state_dict()]
    assert list(q.state_dict())[: len(model.state_dict())] == list(model.state_dict())
    assert sorted(extra) == sorted(
        f"_nncf.{where}.{qid}.{name}"
        for where, qid in [
            ("external_quantizers", f"{INPUT}|OUTPUT"),
            ("external_quantizers", f"{RELU}|OUTPUT"),
            ("external_quantizers", f"{FC}|INPUT0"),
            ("weight_quantizers", f"{CONV}|WEIGHT"),
        ]
        for name in ("scale", "signed_tensor", "_num_bits", "enabled")
    )
    assert q.nncf.nncf_key_prefixes() == {f"_nncf.weight_quantizers.{CONV}|WEIGHT": "conv.pre_ops.0.op"}


def test_compressing_twice_gives_equal_models_and_a_compressed_model_is_refused() -> None:
    model, graph = tiny()
    first, second = compress_model(model, graph, tiny_setup()), compress_model(model, graph, tiny_setup())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="already compressed"):
        compress_model(first, graph, tiny_setup())
    assert nncf_interface(first) is first.nncf
    with pytest.raises(ValueError, match="not a compressed model; use the model returned by"):
        nncf_interface(model)


def test_training_updates_weights_and_scales() -> None:
    _, q = initialised_tiny()
    scale_before = {k: v.clone() for k, v in q.state_dict().items() if k.endswith(".scale")}
    weight_before = q.conv.weight.detach().clone()
    optimizer = torch.optim.Adam(q.parameters(), lr=0.01)
    q.train()
    for x, _ in data(5):
        optimizer.zero_grad()
        q(x).square().mean().backward()
        optimizer.step()
    assert q.nncf.get_quantizer(f"{RELU}|OUTPUT").scale.grad is not None
    assert not torch.equal(q.conv.weight, weight_before)
    changed = [
        k for k, v in q.state_dict().items() if k.endswith(".scale") and not torch.equal(v, scale_before[k])
    ]
    assert len(changed) == len(scale_before)


def test_resnet_trains_with_in_place_ops_after_quantizers() -> None:
    model = models.resnet18(num_classes=10)
    graph = trace_model(model, {"sample_size": [1, 3, 32, 32]})
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION))
    q.train()
    q(torch.randn(2, 3, 32, 32)).sum().backward()
    grads = [p.grad for name, p in q.named_parameters() if name.endswith(".scale")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_deepcopy_gives_an_independent_model() -> None:
    _, q = initialised_tiny()
    x = torch.randn(2, 3, 6, 6)
    twin = copy.deepcopy(q)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), q(x), rtol=0, atol=0)
        expected = q(x)
        twin.nncf.get_quantizer(f"{RELU}|OUTPUT").scale.mul_(0.1)
        assert not torch.equal(twin(x), expected)
        torch.testing.assert_close(q(x), expected, rtol=0, atol=0)
    assert twin.nncf.quantizer_setup == q.nncf.quantizer_setup and twin._nncf is not q._nncf


def test_whole_model_pickling_round_trip(tmp_path) -> None:
    _, q = initialised_tiny()
    torch.save(q, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), q(x), rtol=0, atol=0)
    assert loaded.forward.model is loaded and loaded.nncf.quantizer_setup == q.nncf.quantizer_setup


def test_state_dict_round_trip_to_train_eval() -> None:
    _, q = initialised_tiny()
    model, graph = tiny()
    fresh = compress_model(model, graph, tiny_setup())
    fresh.load_state_dict(q.state_dict())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), q(x), rtol=0, atol=0)
    fresh.train()
    assert all(m.training for m in fresh.modules())
    fresh.eval().to(torch.float64)
    assert fresh.nncf.get_quantizer(f"{RELU}|OUTPUT").scale.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(fresh(x.double()).float(), q(x), rtol=1e-4, atol=1e-4)


def test_distributed_data_parallel_single_process(tmp_path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        _, q = initialised_tiny()
        ddp = nn.parallel.DistributedDataParallel(q.train())
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
        for x, _ in data(2):
            optimizer.zero_grad()
            ddp(x).square().mean().backward()
            optimizer.step()
        assert q.nncf.get_quantizer(f"{INPUT}|OUTPUT").scale.grad is not None
    finally:
        dist.destroy_process_group()


def test_sequential_root_runs_through_the_interface_module() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    graph = trace_model(model, {"sample_size": [1, 4]})
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION))
    x = torch.rand(2, 4)
    with torch.no_grad():
        assert q(x).shape == (2, 3)
        q.nncf.get_quantizer("/nncf_model_input_0|OUTPUT").disable()
        q.nncf.get_quantizer("Sequential/Linear[0]/linear_0|WEIGHT").disable()
        torch.testing.assert_close(q(x), model(x), rtol=0, atol=0)


def test_unified_group_shares_one_module_under_a_joined_key() -> None:
    model, graph = tiny()
    spec = QuantizerSpec()
    a = QuantizationPoint("activation", RELU, None, spec, unified_group=0)
    b = QuantizationPoint("activation", FC, 0, spec, unified_group=0)
    q = compress_model(model, graph, QuantizerSetup((a, b)))
    assert list(q.nncf.external_quantizers) == [f"{FC}|INPUT0;{RELU}|OUTPUT"]
    assert q.nncf.get_quantizer(a.id) is q.nncf.get_quantizer(b.id)


def test_lookups_by_scope_and_node() -> None:
    model = models.resnet18()
    graph = trace_model(model, {"sample_size": [1, 3, 32, 32]})
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION))
    assert q.nncf.get_module_by_scope("ResNet/Sequential[layer1]/BasicBlock[0]") is q.layer1[0]
    assert q.nncf.get_module_by_scope("ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]") is (
        q.layer1[0].conv1
    )
    assert q.nncf.get_module_by_scope("ResNet/Sequential[layer1]/Linear[0]") is None
    assert q.nncf.get_containing_module("ResNet/Linear[fc]/linear_0") is q.fc
    assert q.nncf.get_graph() is q.nncf.get_original_graph() is graph
    labels = q.nncf.quantizer_annotations()
    assert labels[graph.node("ResNet/Conv2d[conv1]/conv2d_0").id].startswith("WEIGHT B:8 M:S")


# -- apply_setup ------------------------------------------------------------------------------------


def test_apply_setup_keeps_unchanged_quantizers_and_their_trained_values() -> None:
    _, q = initialised_tiny()
    relu = q.nncf.get_quantizer(f"{RELU}|OUTPUT")
    with torch.no_grad():
        relu.scale.fill_(0.123)  # as if trained
    kept = {qid: q.nncf.get_quantizer(qid) for qid in (f"{RELU}|OUTPUT", f"{INPUT}|OUTPUT", f"{CONV}|WEIGHT")}
    setup = q.nncf.quantizer_setup
    edited = setup.with_points(p.respec(mode="asymmetric") if p.id == f"{FC}|INPUT0" else p for p in setup)
    rebuilt = apply_setup(q, edited)
    assert rebuilt == [f"{FC}|INPUT0"]
    assert all(q.nncf.get_quantizer(qid) is module for qid, module in kept.items())
    assert relu.scale.item() == pytest.approx(0.123)
    assert isinstance(q.nncf.get_quantizer(f"{FC}|INPUT0"), AsymmetricQuantizer)
    assert q.nncf.quantizer_setup is edited


@pytest.mark.parametrize(
    "change",
    [{"mode": "asymmetric"}, {"bits": 4}, {"per_channel": True}, {"mode": "asymmetric", "per_channel": True}],
)
def test_apply_setup_derives_ranges_as_range_init_would(change) -> None:
    """Cached statistics give a changed quantizer exactly what a fresh compress + range init gives."""
    _, q = initialised_tiny()
    setup = q.nncf.quantizer_setup
    edited = setup.with_points(p.respec(**change) if p.id == f"{RELU}|OUTPUT" else p for p in setup)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RangeInitWarning)
        apply_setup(q, edited)
    model, graph = tiny()
    fresh = compress_model(model, graph, edited)
    fresh.nncf.init_range(data(), progress=False)
    got = q.nncf.get_quantizer(f"{RELU}|OUTPUT").state_dict()
    expected = fresh.nncf.get_quantizer(f"{RELU}|OUTPUT").state_dict()
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


def test_apply_setup_without_statistics_carries_the_old_range_over() -> None:
    _, q = initialised_tiny()
    old = q.nncf.get_quantizer(f"{RELU}|OUTPUT")
    scale = old.scale.item()
    q._nncf.range_statistics.values.clear()
    setup = q.nncf.quantizer_setup
    edited = setup.with_points(p.respec(per_channel=True) if p.id == f"{RELU}|OUTPUT" else p for p in setup)
    apply_setup(q, edited)
    new = q.nncf.get_quantizer(f"{RELU}|OUTPUT")
    assert new.scale.shape == (1, 4, 1, 1)
    torch.testing.assert_close(new.scale, torch.full((1, 4, 1, 1), scale))


def test_apply_setup_adds_and_removes_points() -> None:
    _, q = initialised_tiny()
    setup = q.nncf.quantizer_setup.without([f"{FC}|INPUT0"])
    apply_setup(q, setup)
    assert f"{FC}|INPUT0" not in q.nncf.quantizers() and len(q.nncf.external_quantizers) == 2
    x = torch.randn(2, 3, 6, 6)
    apply_setup(q, tiny_setup())  # back again: re-derived from the cached statistics
    _, reference = initialised_tiny()
    with torch.no_grad():
        torch.testing.assert_close(q(x), reference(x), rtol=0, atol=0)


def test_apply_setup_with_an_unknown_node_leaves_the_model_as_it_was() -> None:
    _, q = initialised_tiny()
    setup = q.nncf.quantizer_setup
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        before = q(x)
    typo = setup.with_points(
        [*setup, QuantizationPoint("activation", "TinyConv/relu_7", None, QuantizerSpec())]
    )
    with pytest.raises(GraphError, match="did you mean 'TinyConv/relu_0'"):
        apply_setup(q, typo)
    assert q.nncf.quantizer_setup is setup
    with torch.no_grad():
        torch.testing.assert_close(q(x), before, rtol=0, atol=0)


def test_apply_setup_is_fast_on_resnet18() -> None:
    model = models.resnet18()
    graph = trace_model(model, {"sample_size": [1, 3, 32, 32]})
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION))
    q.nncf.init_range(data(2, 2, (3, 32, 32)), progress=False)
    setup = q.nncf.quantizer_setup
    target = setup.activations[5].id
    edited = setup.with_points(p.respec(mode="asymmetric") if p.id == target else p for p in setup)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        apply_setup(q, edited)
        times.append(time.perf_counter() - start)
        apply_setup(q, setup)
    assert sorted(times)[2] < 0.1


def _ddp_steps(rank: int, world: int, store: str, results: Any) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        _, q = initialised_tiny()
        ddp = nn.parallel.DistributedDataParallel(q.train())
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
        generator = torch.Generator().manual_seed(100 + rank)  # each rank sees different data
        for _ in range(3):
            optimizer.zero_grad()
            ddp(torch.randn(4, 3, 6, 6, generator=generator)).square().mean().backward()
            optimizer.step()
        results[rank] = {k: v.clone() for k, v in q.state_dict().items()}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_data_parallel_two_processes_stay_in_sync(tmp_path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_ddp_steps, args=(2, str(tmp_path / "store"), results), nprocs=2)
    _, start = initialised_tiny()
    first, second = results[0], results[1]
    assert first.keys() == second.keys() == start.state_dict().keys()
    for k in first:
        torch.testing.assert_close(first[k], second[k], rtol=0, atol=0)
    scale = f"_nncf.external_quantizers.{RELU}|OUTPUT.scale"
    assert not torch.equal(first[scale], start.state_dict()[scale])  # trained, identically on both ranks
