"""The fused fake-quantize kernel: bit-identical to NNCF's formula, and a clean fallback without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor

from nncf_explore.compression.quantization import kernel
from nncf_explore.compression.quantization.fake_quantize import reference_fake_quantize
from nncf_explore.compression.quantization.quantizers import BaseQuantizer, make_quantizer
from nncf_explore.compression.quantization.spec import QuantizerSpec
from tests.compression.quantization.test_fake_quantize import CASES, expected_range, random_quantizer

needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("cc", "gcc", "clang")), reason="no C compiler on this machine"
)

# Large enough to take the kernel's multi-threaded path (>= 32768 elements).
LARGE_INPUTS = {
    "per_tensor": (2, 6, 64, 48),
    "weights_axis0": (6, 64, 12, 12),
    "activations_axis1": (2, 6, 64, 48),
}


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for this module's builds (the library is built once, then reused)."""
    return tmp_path_factory.mktemp("kernel-cache")


@pytest.fixture
def fresh_kernel(monkeypatch: pytest.MonkeyPatch, kernel_cache: Path) -> Iterator[Path]:
    """A kernel state of its own (not built yet in this process), with the module's cache directory."""
    monkeypatch.setattr(kernel, "_state", kernel._State(kernel.KernelStatus("not built", "")))
    monkeypatch.setenv(kernel.ENV_CACHE, str(kernel_cache))
    monkeypatch.delenv(kernel.ENV_SWITCH, raising=False)
    yield kernel_cache


def special_values(q: BaseQuantizer, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Random inputs with rounding ties, both range ends, NaN, infinities and signed zeros mixed in."""
    x = torch.randn(shape, generator=gen) * 3
    low, rng = expected_range(q)
    s = (q.levels - 1) / rng
    levels = torch.randint(0, q.levels - 1, shape, generator=gen).float()
    ties = torch.broadcast_to(low + (levels + 0.5) / s, shape)
    pick = torch.rand(shape, generator=gen)
    x = torch.where(pick < 0.3, ties, x)
    x = torch.where((pick >= 0.3) & (pick < 0.35), torch.broadcast_to(low, shape), x)
    x = torch.where((pick >= 0.35) & (pick < 0.4), torch.broadcast_to(low + rng, shape), x)
    flat = x.reshape(-1)
    flat[:6] = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1e-40])
    return x


@needs_compiler
@pytest.mark.parametrize(("spec", "gran"), CASES)
def test_kernel_output_is_bit_identical_to_the_formula_on_large_inputs(
    spec: QuantizerSpec, gran: str, fresh_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(7)
    q = random_quantizer(spec, gran, gen)
    x = special_values(q, LARGE_INPUTS[gran], gen)
    with torch.no_grad():
        fused = q(x)
        assert kernel.kernel_status().state == "available"
        monkeypatch.setenv(kernel.ENV_SWITCH, "0")
        eager = q(x)
    reference = reference_fake_quantize(x, *expected_range(q), q.levels)
    assert torch.equal(fused.isnan(), reference.isnan())
    finite = ~reference.isnan()
    assert torch.equal(fused[finite], reference[finite])
    assert torch.equal(eager[finite], reference[finite])
    # Signed zeros too: the kernel repeats torch's operations, so even the sign bit agrees.
    assert torch.equal(torch.signbit(fused[finite]), torch.signbit(eager[finite]))


@needs_compiler
@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_the_result(threads: int, fresh_kernel: None) -> None:
    q = make_quantizer(QuantizerSpec(bits=5, signed=True, per_channel=True), (1, 16, 1, 1), 1)
    with torch.no_grad():
        q.scale.copy_(torch.linspace(0.2, 3.0, 16).reshape(1, 16, 1, 1))
    x = torch.randn(3, 16, 40, 40, generator=torch.Generator().manual_seed(threads))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            out = q(x)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(out, reference_fake_quantize(x, *expected_range(q), q.levels))


@needs_compiler
def test_quantize_owned_writes_in_place_with_the_same_values(fresh_kernel: None) -> None:
    q = make_quantizer(QuantizerSpec(bits=4, signed=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-1.5]), torch.tensor([2.0]))
    x = torch.randn(70000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = q(x)
        assert not torch.equal(expected, x)
        owned = x.clone()
        result = q.quantize_owned(owned)
    assert result is owned
    assert torch.equal(result, expected)


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(lambda: torch.randn(40000, 6).t(), id="non-contiguous"),
        pytest.param(lambda: torch.randn(6, 40000, dtype=torch.float64), id="float64"),
    ],
)
def test_inputs_the_kernel_declines_take_the_eager_path(make_input: object, fresh_kernel: None) -> None:
    q = make_quantizer(QuantizerSpec(bits=3, signed=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-1.0]), torch.tensor([1.0]))
    x = make_input()  # type: ignore[operator]
    scale_safe = q.scale.detach().to(x.dtype).abs() + 1e-16  # the range is computed in the input's dtype
    low = scale_safe * q.level_low / q.level_high
    with torch.no_grad():
        out = q(x)
    assert out.dtype == x.dtype
    assert torch.equal(out, reference_fake_quantize(x, low, scale_safe - low, q.levels))


@needs_compiler
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # .item() on the grid, expected when tracing
@pytest.mark.filterwarnings(
    "ignore:.*torch.jit.trace.*:DeprecationWarning"
)  # the capture the ONNX export uses
def test_graph_captures_record_torch_ops_not_the_kernel(fresh_kernel: None) -> None:
    # A capture sees only torch ops: had the kernel run, the captured graph would lack the
    # quantization.  (torch.export, whose fake tensors have no data to hand the kernel, is
    # covered by strip() in test_export.py.)
    q = make_quantizer(QuantizerSpec(bits=4, signed=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-1.0]), torch.tensor([2.0]))
    q.disable_gradients()
    x = torch.randn(40000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        traced = torch.jit.trace(q, x)
    y = torch.randn(40000, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = q(y)
        assert kernel.kernel_status().state == "available"
        assert torch.equal(traced(y), expected)


def test_grid_broadcasting_from_fewer_dimensions_is_declined(fresh_kernel: None) -> None:
    # A per-channel grid of shape (C, 1) against a 3-d input broadcasts along the input's axis 1,
    # not axis 0 where the grid has its channels; with C rows on axis 0 as well, a kernel taking
    # the grid's axis would quantize with the wrong channel's range.
    q = make_quantizer(QuantizerSpec(bits=8, signed=True, per_channel=True), (6, 1), 0)
    q.apply_minmax_init(-torch.linspace(0.5, 3.0, 6), torch.linspace(0.5, 3.0, 6))
    x = torch.randn(6, 6, 3000, generator=torch.Generator().manual_seed(2)) * 2
    with torch.no_grad():
        out = q(x)
    assert torch.equal(out, reference_fake_quantize(x, *expected_range(q), q.levels))


def test_without_a_compiler_the_status_says_why_and_results_are_unchanged(
    fresh_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel.shutil, "which", lambda _name: None)
    q = make_quantizer(QuantizerSpec(bits=6, signed=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-2.0]), torch.tensor([1.0]))
    x = torch.randn(50000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = q(x)
    status = kernel.kernel_status()
    assert status.state == "unavailable"
    assert "no C compiler found" in status.detail
    assert "apt-get install gcc" in status.detail
    assert "eager torch path" in status.detail
    assert torch.equal(out, reference_fake_quantize(x, *expected_range(q), q.levels))
    assert not kernel.load_kernel()  # not retried: the decision is kept for the process


def test_a_compiler_error_is_reported_with_its_message(
    fresh_kernel: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(kernel.ENV_CACHE, str(tmp_path))
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'fatal: cannot compile today' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    assert not kernel.load_kernel()
    status = kernel.kernel_status()
    assert status.state == "unavailable"
    assert "cannot compile today" in status.detail
    assert not list((tmp_path / "kernels").glob("*.so"))  # no half-built library left behind


def test_the_switch_disables_the_kernel(fresh_kernel: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernel.ENV_SWITCH, "0")
    assert kernel.kernel_status().state == "disabled"
    assert not kernel.load_kernel()
    q = make_quantizer(QuantizerSpec(bits=8, signed=True), (1,), None)
    grid = q._inference_grid(torch.float32)
    args = (grid.arrays, (grid.subtract_low, grid.subtract_zero_point), None)
    assert kernel.fused_fake_quantize(torch.randn(10), *args) is None
    assert kernel.kernel_status().state == "disabled"


@needs_compiler
def test_the_library_is_built_once_and_reused_by_other_processes(
    fresh_kernel: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(kernel.ENV_CACHE, str(tmp_path))
    assert kernel.load_kernel()
    libraries = list((tmp_path / "kernels").glob("*.so"))
    assert len(libraries) == 1
    built = libraries[0].stat().st_mtime_ns
    script = (
        "from nncf_explore.compression.quantization import kernel;"
        "assert kernel.load_kernel(); print(kernel.kernel_status().detail)"
    )
    env = {**os.environ, kernel.ENV_CACHE: str(tmp_path)}
    root = str(Path(__file__).resolve().parents[3])
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert str(libraries[0]) in done.stdout
    assert libraries[0].stat().st_mtime_ns == built
    # The library and its digest, and no leftovers from the build.
    assert sorted(p.name for p in (tmp_path / "kernels").iterdir()) == [
        libraries[0].name,
        f"{libraries[0].name}.sha256",
    ]


@needs_compiler
def test_a_compressed_model_uses_the_kernel_and_matches_the_eager_path(
    fresh_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
    from tests import models

    model = models.MixedCNN().eval()
    config = NNCFConfig.from_dict(
        {"input_info": {"sample_size": [2, 3, 32, 32]}, "compression": {"algorithm": "quantization"}}
    )
    loader = [(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)), 0) for i in range(2)]
    config = register_default_init_args(config, loader)
    _, compressed = create_compressed_model(model, config, dump_graphs=False)
    compressed.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fused = compressed(x)
        assert kernel.kernel_status().state == "available"
        monkeypatch.setenv(kernel.ENV_SWITCH, "0")
        compressed.nncf.clear_weight_cache()
        eager = compressed(x)
    assert torch.equal(fused, eager)
