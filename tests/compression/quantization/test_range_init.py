"""Range-init collectors against numpy references, sampling caps, errors, and torch.distributed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nncf_explore.compression.quantization.quantizers import make_quantizer
from nncf_explore.compression.quantization.range_init import (
    RANGE_INIT_TYPES,
    StatisticCollector,
    make_collector,
    quantile,
)
from nncf_explore.compression.quantization.spec import QuantizerSpec

# name -> (scale_shape, channel_axis, is_weights, batch shape, number of batches)
LAYOUTS = {
    "activations_per_tensor": ((1,), None, False, (4, 3, 6, 6), 5),
    "activations_axis1": ((1, 3, 1, 1), 1, False, (4, 3, 6, 6), 5),
    "weights_per_tensor": ((1,), None, True, (8, 3, 3, 3), 1),
    "weights_axis0": ((8, 1, 1, 1), 0, True, (8, 3, 3, 3), 1),
}
PERCENTILES = (2.0, 97.0)


def batches(layout: str, seed: int = 0) -> list[np.ndarray]:
    _, _, _, shape, count = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * 2 + rng.uniform(-1, 1)).astype(np.float32) for _ in range(count)]


def np_units(data: list[np.ndarray], axis: int | None, per_sample: bool) -> list[np.ndarray]:
    """``[values, channels]`` float64 arrays, one per unit."""
    out = []
    for b in data:
        a = (b[..., None] if axis is None else np.moveaxis(b, axis, -1)).astype(np.float64)
        for part in a if per_sample else [a]:
            out.append(part.reshape(-1, a.shape[-1]))
    return out


def np_reference(
    init_type: str, data: list[np.ndarray], layout: str, symmetric: bool
) -> tuple[np.ndarray, ...]:
    _, axis, is_weights, _, _ = LAYOUTS[layout]
    per_tensor_act = not is_weights and axis is None
    units = np_units(data, axis, per_sample=init_type == "mixed_min_max" and per_tensor_act)
    everything = np.concatenate(units)
    mins = np.stack([u.min(0) for u in units])
    maxes = np.stack([(np.abs(u) if symmetric else u).max(0) for u in units])
    if init_type == "min_max" or (init_type == "mixed_min_max" and not per_tensor_act):
        return mins.min(0), maxes.max(0)
    if init_type == "mean_min_max":
        return mins.mean(0), maxes.mean(0)
    if init_type == "mixed_min_max":
        return (mins.min(0) if symmetric else mins.mean(0)), maxes.mean(0)
    if init_type == "threesigma":
        median = np.median(everything, 0)
        mad = np.median(np.abs(everything - median), 0)
        return median - 3 * mad, median + 3 * mad
    if init_type == "percentile":
        return tuple(np.percentile(everything, PERCENTILES, axis=0))
    per_unit = np.stack([np.percentile(u, PERCENTILES, axis=0) for u in units])
    return tuple(per_unit.mean(0))


def collect(
    init_type: str, layout: str, symmetric: bool, data: list[np.ndarray], **kw: Any
) -> StatisticCollector:
    shape, axis, is_weights, _, _ = LAYOUTS[layout]
    params = {"min_percentile": PERCENTILES[0], "max_percentile": PERCENTILES[1]}
    c = make_collector(
        init_type,
        params,
        scale_shape=shape,
        channel_axis=axis,
        symmetric=symmetric,
        is_weights=is_weights,
        **kw,
    )
    for b in data:
        c.register(torch.from_numpy(b))
    return c


@pytest.mark.parametrize("symmetric", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("init_type", RANGE_INIT_TYPES)
def test_collector_matches_numpy_reference(init_type: str, layout: str, symmetric: bool) -> None:
    data = batches(layout)
    low, high = collect(init_type, layout, symmetric, data).min_max()
    want_low, want_high = np_reference(init_type, data, layout, symmetric)
    shape = LAYOUTS[layout][0]
    assert low.shape == shape and high.shape == shape and low.dtype == torch.float32
    np.testing.assert_allclose(low.flatten().numpy(), want_low, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(high.flatten().numpy(), want_high, rtol=1e-5, atol=1e-6)


def test_per_sample_can_be_forced_for_mean_statistics() -> None:
    data = batches("activations_axis1")
    c = collect("mean_min_max", "activations_axis1", False, data, per_sample=True)
    units = np_units(data, 1, per_sample=True)
    low, high = c.min_max()
    np.testing.assert_allclose(low.flatten(), np.mean([u.min(0) for u in units], 0), rtol=1e-5)
    np.testing.assert_allclose(high.flatten(), np.mean([u.max(0) for u in units], 0), rtol=1e-5)


def test_num_samples_seen_counts_the_batch_dimension() -> None:
    c = collect("min_max", "activations_per_tensor", True, batches("activations_per_tensor"))
    assert c.num_samples_seen == 20


def test_default_percentiles_come_from_the_config_table() -> None:
    c = make_collector("percentile")
    values = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    c.register(values)
    low, high = c.min_max()
    want = np.percentile(values.double().numpy(), [0.1, 99.9])
    np.testing.assert_allclose([low.item(), high.item()], want, rtol=1e-5)


@pytest.mark.parametrize("init_type", ["percentile", "threesigma"])
def test_stored_values_are_capped_and_sampled_uniformly(init_type: str) -> None:
    c = make_collector(init_type, channel_axis=1, scale_shape=(1, 2), max_stored_values=8192)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        c.register(torch.rand(5000, 2, generator=gen) * torch.tensor([1.0, 10.0]))
    assert c._values.shape == (2, 4096)  # type: ignore[attr-defined]
    low, high = c.min_max()
    if init_type == "percentile":  # 2nd / 98th percentile of U(0, 1) and U(0, 10)
        want_low, want_high = [0.02, 0.2], [0.98, 9.8]
    else:  # median 0.5, MAD 0.25 of U(0, 1)
        want_low, want_high = [-0.25, -2.5], [1.25, 12.5]
    unit = np.array([1.0, 10.0])
    np.testing.assert_allclose(low.flatten().numpy() / unit, np.array(want_low) / unit, atol=0.03)
    np.testing.assert_allclose(high.flatten().numpy() / unit, np.array(want_high) / unit, atol=0.03)


def test_quantile_matches_numpy_including_the_ends() -> None:
    values = torch.randn(3, 101, generator=torch.Generator().manual_seed(1))
    fractions = [0.0, 0.001, 0.25, 0.5, 0.999, 1.0]
    want = np.quantile(values.double().numpy(), fractions, axis=1)
    np.testing.assert_allclose(quantile(values, fractions, dim=1).numpy(), want, rtol=1e-12)


def test_collected_range_initializes_a_quantizer() -> None:
    data = batches("activations_per_tensor")
    c = collect("mixed_min_max", "activations_per_tensor", True, data)
    q = make_quantizer(QuantizerSpec(), (1,), None)
    q.apply_minmax_init(*c.min_max())
    want_low, want_high = np_reference("mixed_min_max", data, "activations_per_tensor", True)
    want = max(abs(float(want_low[0])), abs(float(want_high[0])))
    assert q.signed and q.scale.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init_type": "min_maxx"}, "did you mean 'min_max'"),
        ({"init_type": "percentile", "params": {"min_percentil": 1.0}}, "unknown range-init params"),
        ({"init_type": "percentile", "params": {"min_percentile": 60.0, "max_percentile": 40.0}}, "<="),
        (
            {"init_type": "mean_min_max", "channel_axis": 0, "scale_shape": (3,), "per_sample": True},
            "batch axis",
        ),
    ],
)
def test_factory_errors_name_the_fix(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_collector(**kwargs)


def test_channel_mismatch_and_empty_collector_raise() -> None:
    c = make_collector("min_max", scale_shape=(1, 4, 1, 1), channel_axis=1)
    with pytest.raises(ValueError, match="call register"):
        c.min_max()
    with pytest.raises(ValueError, match="has 3 channels on axis 1"):
        c.register(torch.zeros(2, 3, 5, 5))


def test_reduce_across_ranks_is_a_noop_without_distributed() -> None:
    c = collect("percentile", "activations_axis1", True, batches("activations_axis1"))
    before = c.min_max()
    c.reduce_across_ranks()
    for a, b in zip(before, c.min_max(), strict=True):
        assert torch.equal(a, b)


WORKER = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from nncf_explore.compression.quantization.range_init import RANGE_INIT_TYPES, make_collector
    from nncf_explore.compression.quantization.quantizers import make_quantizer
    from nncf_explore.compression.quantization.spec import QuantizerSpec
    rank, init_file, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    gen = torch.Generator().manual_seed(rank)
    data = [torch.randn(3 + rank, 3, 4, 4, generator=gen) * (1 + rank) for _ in range(2 + rank)]
    results = {}
    for init_type in RANGE_INIT_TYPES:
        for cap in (1 << 18, 60):
            c = make_collector(init_type, scale_shape=(1, 3, 1, 1), channel_axis=1, max_stored_values=cap)
            for b in data:
                c.register(b)
            c.reduce_across_ranks()
            results[init_type, cap] = (*c.min_max(), c.num_samples_seen)
    q = make_quantizer(QuantizerSpec(bits=4), (1,), None)
    q.apply_minmax_init(torch.tensor([-rank - 1.0]), torch.tensor([rank + 1.0]))
    q.set_bits(8 - rank)
    q.broadcast_from(0)
    torch.save({"data": data, "results": results, "quantizer": q.state_dict()}, out)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_ranks_agree_and_match_a_single_process(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), str(tmp_path / "init"), str(tmp_path / f"out{r}.pt")],
            env=env,
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    outs = [torch.load(tmp_path / f"out{r}.pt", weights_only=False) for r in range(2)]
    everything = outs[0]["data"] + outs[1]["data"]
    for key, (low, high, seen) in outs[0]["results"].items():
        other_low, other_high, other_seen = outs[1]["results"][key]
        assert (
            torch.equal(low, other_low)
            and torch.equal(high, other_high)
            and seen == other_seen == 2 * 3 + 3 * 4
        )
        init_type, cap = key
        if cap > 60 or init_type not in ("percentile", "threesigma"):
            single = make_collector(init_type, scale_shape=(1, 3, 1, 1), channel_axis=1)
            for b in everything:
                single.register(b)
            torch.testing.assert_close((low, high), single.min_max(), rtol=1e-5, atol=1e-6)
    for a, b in zip(outs[0]["quantizer"].values(), outs[1]["quantizer"].values(), strict=True):
        assert torch.equal(a, b)
    assert outs[1]["quantizer"]["_num_bits"].item() == 8
