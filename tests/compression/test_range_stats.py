"""Range initialisation over a loader: statistics against direct computation, budgets, settings, ranks."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nncf_explore.compression.model import compress_model
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.range_settings import (
    RangeInitSettings,
    StatKey,
    resolve_range_settings,
)
from nncf_explore.compression.quantization.range_stats import RangeInitWarning, collect_range_statistics
from nncf_explore.config.init_args import InitializingDataLoader
from nncf_explore.errors import ConfigError, DataLoaderError
from tests import models
from tests.compression.tiny import CONV, FC, INPUT, RELU, tiny, tiny_setup

MIN_MAX = RangeInitSettings("min_max", (), 256)


def batches(n: int = 3, batch: int = 4, seed: int = 1) -> list[tuple[torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, 6, 6, generator=generator), 0) for _ in range(n)]


def activations(model: torch.nn.Module, loader: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """The tensors at the tiny setup's activation positions, computed eagerly, batches concatenated."""
    x = torch.cat([b for b, _ in loader])
    with torch.no_grad():
        relu = torch.relu(model.conv(x))
    return {INPUT: x, RELU: relu, FC: torch.flatten(relu, 1)}


def key(node: str, settings: RangeInitSettings, port: int | None = None, **kw: Any) -> StatKey:
    fields = {"scale_shape": (1,), "channel_axis": None, "symmetric": True, **kw}
    return StatKey(((node, port),), settings, **fields)


def test_statistics_match_direct_computation() -> None:
    model, graph = tiny()
    loader = batches()
    stats = collect_range_statistics(model, graph, tiny_setup(), loader, {"type": "min_max"}, progress=False)
    direct = activations(model, loader)
    relu, x = direct[RELU], direct[INPUT]
    low, high = stats.get(key(RELU, MIN_MAX))
    assert (low.item(), high.item()) == (relu.min().item(), relu.abs().max().item())
    low, high = stats.get(key(INPUT, MIN_MAX, symmetric=False))
    assert (low.item(), high.item()) == (x.min().item(), x.max().item())
    low, high = stats.get(key(RELU, MIN_MAX, scale_shape=(1, 4, 1, 1), channel_axis=1))
    torch.testing.assert_close(low.flatten(), relu.amin(dim=(0, 2, 3)), rtol=0, atol=0)
    torch.testing.assert_close(high.flatten(), relu.abs().amax(dim=(0, 2, 3)), rtol=0, atol=0)
    assert key(FC, MIN_MAX, port=0) in stats  # a pre-hook position


def test_default_mixed_min_max_reduces_per_sample() -> None:
    model, graph = tiny()
    loader = batches()
    stats = collect_range_statistics(model, graph, tiny_setup(), loader, progress=False)
    x = activations(model, loader)[INPUT].flatten(1)
    mixed = RangeInitSettings("mixed_min_max", (), 256)
    low, high = stats.get(key(INPUT, mixed))
    assert low.item() == pytest.approx(x.amin(dim=1).min().item())
    assert high.item() == pytest.approx(x.abs().amax(dim=1).mean().item(), rel=1e-6)
    low, _ = stats.get(key(INPUT, mixed, symmetric=False))
    assert low.item() == pytest.approx(x.amin(dim=1).mean().item(), rel=1e-6)


def test_percentile_statistic() -> None:
    model, graph = tiny()
    loader = batches()
    config = {"type": "percentile", "params": {"min_percentile": 5, "max_percentile": 95}}
    stats = collect_range_statistics(model, graph, tiny_setup(), loader, config, progress=False)
    relu = activations(model, loader)[RELU].flatten().double()
    settings = RangeInitSettings("percentile", (("max_percentile", 95.0), ("min_percentile", 5.0)), 256)
    low, high = stats.get(key(RELU, settings))
    expected = torch.quantile(relu, torch.tensor([0.05, 0.95], dtype=torch.float64))
    torch.testing.assert_close(torch.cat([low, high]).double(), expected, rtol=1e-6, atol=1e-6)
    # value-storing statistics collect no other-granularity alternative; mode does not matter to them
    assert sum(k.positions == ((RELU, None),) for k in stats.values) == 1


class CountingLoader:
    def __init__(self, items: list[Any], batch_size: int) -> None:
        self.items, self.batch_size, self.served = items, batch_size, 0

    def __iter__(self):
        for item in self.items:
            self.served += 1
            yield item


def test_sample_budgets_round_up_to_batches_per_entry() -> None:
    model, graph = tiny()
    data = batches(5)
    loader = CountingLoader(data, batch_size=4)
    config = [
        {"type": "min_max", "num_init_samples": 3, "target_scopes": ["{re}relu"]},
        {"type": "min_max", "num_init_samples": 6, "ignored_scopes": ["{re}relu"]},
    ]
    stats = collect_range_statistics(model, graph, tiny_setup(), loader, config, progress=False)
    assert loader.served == 2  # ceil(6 / 4)
    relu_first = activations(model, data[:1])[RELU]
    x_two = activations(model, data[:2])[INPUT]
    assert stats.get(key(RELU, RangeInitSettings("min_max", (), 3)))[1].item() == relu_first.max().item()
    assert stats.get(key(INPUT, RangeInitSettings("min_max", (), 6)))[1].item() == x_two.abs().max().item()


def test_per_layer_settings_resolution() -> None:
    _, graph = tiny()
    setup = tiny_setup()
    config = [
        {"type": "percentile", "target_scopes": ["{re}relu"], "target_quantizer_group": "activations"},
        {
            "type": "min_max",
            "target_scopes": ["TinyConv/NNCFConv2d[conv]"],
            "target_quantizer_group": "weights",
        },
    ]
    settings = resolve_range_settings(setup, config, graph)
    assert settings[f"{RELU}|OUTPUT"].init_type == "percentile"
    assert settings[f"{CONV}|WEIGHT"].init_type == "min_max"  # matched through the node's module scope
    assert settings[f"{INPUT}|OUTPUT"] == RangeInitSettings("mixed_min_max", (), 256)  # unmatched: defaults
    clash = [
        *config,
        {"type": "threesigma", "target_scopes": ["{re}.*"], "target_quantizer_group": "activations"},
    ]
    with pytest.raises(ConfigError, match=r"initializer.range\[0\] and initializer.range\[2\] both match"):
        resolve_range_settings(setup, clash, graph)
    with pytest.raises(ConfigError, match="did you mean 'min_max'"):
        resolve_range_settings(setup, {"type": "minmax"}, graph)


def test_init_range_sets_weight_ranges_from_the_weight() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    q.nncf.init_range(batches(), {"type": "min_max"}, progress=False)
    weight = q.nncf.get_quantizer(f"{CONV}|WEIGHT")
    expected = model.conv.weight.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=0.1)
    torch.testing.assert_close(weight.scale.detach(), expected, rtol=0, atol=0)
    assert weight.signed


def test_statistics_are_taken_without_quantizers_in_eval_mode() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    with torch.no_grad():
        q.nncf.get_quantizer(f"{INPUT}|OUTPUT").scale.fill_(1e-3)  # would flatten every input
    q.train()
    stats = q.nncf.init_range(batches(), {"type": "min_max"}, progress=False)
    assert q.training and all(m.training for m in q.modules())
    assert all(p.grad is None for p in q.parameters())
    relu = activations(model, batches())[RELU]
    assert stats.get(key(RELU, MIN_MAX))[1].item() == relu.max().item()
    assert q.nncf.get_quantizer(f"{RELU}|OUTPUT").scale.item() == relu.max().item()


def test_init_range_without_a_loader_warns_which_quantizers_keep_initial_ranges() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    with pytest.warns(RangeInitWarning, match="4 quantizer.*no init data loader.*scale 1.0") as record:
        q.nncf.init_range(None)
    assert f"'{RELU}|OUTPUT'" in str(record[0].message)


def test_init_range_warns_about_positions_the_data_never_reached() -> None:
    model = models.Branchy().eval()
    with torch.no_grad():
        model.fc.weight.fill_(0.1)
        model.fc.bias.fill_(1.0)
    from nncf_explore.graph import trace_model

    graph = trace_model(model, {"sample_size": [1, 4]})
    setup = build_quantizer_setup(graph, {"compression": {"algorithm": "quantization"}})
    q = compress_model(model, graph, setup)
    negative = [(torch.full((2, 4), -100.0), 0)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        q.nncf.init_range(negative, progress=False)
    messages = [str(w.message) for w in record if issubclass(w.category, RangeInitWarning)]
    assert len(messages) == 1 and "'Branchy/relu_0|OUTPUT'" in messages[0] and "never reached" in messages[0]


def test_loader_contract() -> None:
    model, graph = tiny()

    class DictBatches(InitializingDataLoader):
        def get_inputs(self, batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (), {"x": batch["image"]}

    data = [{"image": x} for x, _ in batches()]
    stats = collect_range_statistics(
        model, graph, tiny_setup(), DictBatches(data), {"type": "min_max"}, progress=False
    )
    assert stats.get(key(RELU, MIN_MAX))[1].item() == activations(model, batches())[RELU].max().item()
    with pytest.raises(DataLoaderError, match="Subclass InitializingDataLoader"):
        collect_range_statistics(model, graph, tiny_setup(), data, progress=False)


def _ranked_statistics(rank: int, world: int, store: str, results: Any) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        model, graph = tiny()
        stats = collect_range_statistics(
            model, graph, tiny_setup(), batches(2, seed=rank), {"type": "min_max"}, progress=False
        )
        results[rank] = stats.get(key(RELU, MIN_MAX, scale_shape=(1, 4, 1, 1), channel_axis=1))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_statistics_are_reduced_across_ranks(tmp_path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_ranked_statistics, args=(2, str(tmp_path / "store"), results), nprocs=2)
    model, _ = tiny()
    relu = activations(model, batches(2, seed=0) + batches(2, seed=1))[RELU]
    for rank in (0, 1):
        low, high = results[rank]
        torch.testing.assert_close(low.flatten(), relu.amin(dim=(0, 2, 3)), rtol=0, atol=0)
        torch.testing.assert_close(high.flatten(), relu.abs().amax(dim=(0, 2, 3)), rtol=0, atol=0)


def test_attention_range_init_with_another_batch_size_than_traced() -> None:
    """Sequence-first tensors inside attention have no channel axis at dim 1: other-granularity
    statistics there are dropped instead of failing when the init batch differs from the traced one."""
    import warnings

    from nncf_explore import (
        InitializingDataLoader,
        NNCFConfig,
        create_compressed_model,
        register_default_init_args,
    )
    from tests.models import CrossAttention

    class Pairs(InitializingDataLoader):
        def get_inputs(self, batch):  # type: ignore[no-untyped-def]
            return batch[0], {}

        def get_target(self, batch):  # type: ignore[no-untyped-def]
            return batch[1]

    loader = Pairs([((torch.randn(4, 3, 16), torch.randn(4, 5, 16)), torch.zeros(4))])
    info = [{"sample_size": [2, 3, 16]}, {"sample_size": [2, 5, 16]}]
    config = NNCFConfig.from_dict({"input_info": info, "compression": {"algorithm": "quantization"}})
    config = register_default_init_args(config, loader)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(CrossAttention().eval(), config, dump_graphs=False)
    quantizers = ctrl.all_quantizations
    assert len(quantizers) == 11 and all(q.is_initialized for q in quantizers.values())
