"""The kernel cache runs only what this user built: planted, truncated or misplaced libraries are refused.

Every attack runs a quantized inference forward in a subprocess of its own: a planted library
must not get into the test process, and a truncated one used to kill its process with SIGBUS.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nncf_explore.compression.quantization import kernel, kernel_cache

ROOT = Path(__file__).resolve().parents[3]
COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(COMPILER is None, reason="no C compiler on this machine")
in_a_subprocess = pytest.mark.slow  # each run starts Python with torch: two to three seconds

# A forward through one quantizer with the kernel, then with the eager path; the last line of
# stdout is a JSON report.  argv[1], when given, is the umask (octal) to run under.
FORWARD = textwrap.dedent(
    """
    import json, os, sys, warnings
    if len(sys.argv) > 1:
        os.umask(int(sys.argv[1], 8))
    import torch
    from nncf_explore.compression.quantization import kernel, kernel_cache
    from nncf_explore.compression.quantization.quantizers import make_quantizer
    from nncf_explore.compression.quantization.spec import QuantizerSpec

    q = make_quantizer(QuantizerSpec(bits=4, signed=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-1.5]), torch.tensor([2.0]))
    x = torch.randn(70000, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        fused = q(x)
    status = kernel.kernel_status()
    os.environ[kernel.ENV_SWITCH] = "0"
    with torch.no_grad():
        eager = q(x)
    print(json.dumps({
        "equal": torch.equal(fused, eager),
        "state": status.state,
        "detail": status.detail,
        "warnings": [str(w.message) for w in caught if w.category.__name__ == "KernelWarning"],
        "other_warnings": [str(w.message) for w in caught if w.category.__name__ != "KernelWarning"],
    }))
    """
)

# A library with the kernel's symbol: its constructor leaves a marker, and its "kernel" writes 42.
PLANTED = textwrap.dedent(
    """
    #include <stdint.h>
    #include <stdio.h>
    __attribute__((constructor)) static void planted(void) {
        FILE *marker = fopen(MARKER, "w");
        if (marker) { fputs("the planted library ran", marker); fclose(marker); }
    }
    int nxe_fake_quantize_f32(const float *x, float *out, int64_t outer, int64_t channels, int64_t inner,
                              const float *low, const float *high, const float *s, const float *zp,
                              int sub_low, int sub_zp, int threads) {
        for (int64_t i = 0; i < outer * channels * inner; ++i) out[i] = 42.0f;
        return 0;
    }
    """
)


@dataclass
class Forward:
    returncode: int
    stderr: str
    report: dict[str, Any]


def run_forward(cache: Path, temp: Path, umask: int | None = None) -> Forward:
    """One quantized forward in a fresh Python, with the cache at ``cache`` and temp files under ``temp``."""
    temp.mkdir(exist_ok=True)
    env = {**os.environ, kernel.ENV_CACHE: str(cache), "TMPDIR": str(temp)}
    env.pop(kernel.ENV_SWITCH, None)
    args = [] if umask is None else [f"{umask:o}"]
    done = subprocess.run(
        [sys.executable, "-c", FORWARD, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if done.returncode == 0 and lines else {}
    return Forward(done.returncode, done.stderr, report)


def assert_correct(run: Forward) -> None:
    """The process survived, the kernel ran, and its outputs are the eager path's."""
    assert run.returncode == 0, f"exit code {run.returncode}: {run.stderr[-2000:]}"
    assert run.report["state"] == "available", run.report["detail"]
    assert run.report["equal"], "the kernel's outputs differ from the eager path's"


def libraries(cache: Path) -> list[Path]:
    return sorted((cache / "kernels").glob("*.so"))


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache as a normal first forward leaves it (copied by each test, which then attacks it)."""
    root = tmp_path_factory.mktemp("built")
    run = run_forward(root / "cache", root / "tmp")
    assert_correct(run)
    assert run.report["warnings"] == []
    assert libraries(root / "cache")
    return root / "cache"


@pytest.fixture
def cache(built_cache: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(built_cache, copy)
    return copy


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A library whose constructor writes a marker file; returns (library, marker)."""
    assert COMPILER is not None
    marker = tmp_path / "planted-library-ran"
    source = tmp_path / "planted.c"
    source.write_text(PLANTED)
    library = tmp_path / "planted.so"
    subprocess.run(
        [COMPILER, "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return library, marker


def plant(library: Path, cache: Path, *, forge_digest: bool = False) -> list[Path]:
    """Put ``library`` at every name the kernel looks for, optionally with a digest file to match."""
    targets = libraries(cache)
    for target in targets:
        target.write_bytes(library.read_bytes())
        if forge_digest:
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            Path(f"{target}.sha256").write_text(digest + "\n")
    return targets


@in_a_subprocess
def test_a_planted_library_at_the_predictable_name_is_never_loaded(
    cache: Path, tmp_path: Path, planted: tuple[Path, Path]
) -> None:
    library, marker = planted
    targets = plant(library, cache)
    run = run_forward(cache, tmp_path / "tmp")
    assert not marker.exists(), "the planted library's constructor ran"
    assert_correct(run)
    assert len(run.report["warnings"]) == 1
    assert "does not match its digest" in run.report["warnings"][0]
    # Rebuilt and put back: the next process trusts the cache again, without a word.
    assert all(target.read_bytes() != library.read_bytes() for target in targets)
    again = run_forward(cache, tmp_path / "tmp")
    assert_correct(again)
    assert again.report["warnings"] == []
    assert not marker.exists()


@in_a_subprocess
def test_a_truncated_cached_library_is_rebuilt_instead_of_crashing(cache: Path, tmp_path: Path) -> None:
    for target in libraries(cache):
        image = target.read_bytes()
        target.write_bytes(image[: len(image) // 2])
    run = run_forward(cache, tmp_path / "tmp")
    assert_correct(run)  # it used to die of SIGBUS (exit code -7) without a message
    assert len(run.report["warnings"]) == 1
    assert "does not match its digest" in run.report["warnings"][0]
    assert "rebuilt" in run.report["warnings"][0]


@in_a_subprocess
def test_a_group_writable_cache_directory_is_not_trusted(cache: Path, tmp_path: Path) -> None:
    directory = cache / "kernels"
    for target in libraries(cache):
        image = target.read_bytes()
        target.write_bytes(image[: len(image) // 2])
    truncated = {target: target.read_bytes() for target in libraries(cache)}
    directory.chmod(0o775)
    run = run_forward(cache, tmp_path / "tmp", umask=0o002)
    assert_correct(run)
    assert len(run.report["warnings"]) == 1
    message = run.report["warnings"][0]
    assert f"{directory} is writable by group or others (mode 0775)" in message
    assert f"chmod 700 {directory}" in message
    assert kernel.ENV_CACHE in message
    assert "not cached" in run.report["detail"]
    # Nothing is read from or written to a directory that others could have written.
    assert {target: target.read_bytes() for target in libraries(cache)} == truncated
    assert list((tmp_path / "tmp").iterdir()) == []


@in_a_subprocess
def test_a_new_cache_is_private_whatever_the_umask(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run = run_forward(cache, tmp_path / "tmp", umask=0o002)
    assert_correct(run)
    assert run.report["warnings"] == []
    assert (cache / "kernels").stat().st_mode & 0o777 == 0o700
    for entry in (cache / "kernels").iterdir():
        assert entry.stat().st_mode & 0o022 == 0, entry
    assert {p.suffix for p in (cache / "kernels").iterdir()} == {".so", ".sha256"}
    again = run_forward(cache, tmp_path / "tmp", umask=0o002)
    assert_correct(again)
    assert again.report["warnings"] == []
    assert str(libraries(cache)[0]) in again.report["detail"]


@in_a_subprocess
def test_a_cache_path_that_is_a_file_leaves_no_temporary_directories(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    temp = tmp_path / "tmp"
    for _ in range(2):
        run = run_forward(blocker, temp)
        assert_correct(run)
        assert len(run.report["warnings"]) == 1
        message = run.report["warnings"][0]
        assert f"{blocker} is a file, not a directory" in message
        assert kernel.ENV_CACHE in message
        assert list(temp.iterdir()) == []  # every process used to leave a nncf_explore_kernel_* behind
    assert blocker.read_text() == ""


@in_a_subprocess
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
@pytest.mark.parametrize("owned_by_other", ["library", "directory"])
def test_a_library_or_directory_of_another_user_is_not_trusted(
    owned_by_other: str, cache: Path, tmp_path: Path, planted: tuple[Path, Path]
) -> None:
    # Another user can write a digest that matches their library: only ownership tells them apart.
    library, marker = planted
    targets = plant(library, cache, forge_digest=True)
    nobody = 65534
    chowned = [*targets, *(Path(f"{t}.sha256") for t in targets)] if owned_by_other == "library" else []
    for path in [*chowned, *([cache / "kernels"] if owned_by_other == "directory" else [])]:
        os.chown(path, nobody, nobody)
    run = run_forward(cache, tmp_path / "tmp")
    assert not marker.exists(), "the planted library's constructor ran"
    assert_correct(run)
    assert len(run.report["warnings"]) == 1
    message = run.report["warnings"][0]
    assert f"belongs to uid {nobody}, not to this user (uid 0)" in message
    assert "chmod" not in message  # a mode would not make another user's files ours


@pytest.fixture(scope="module")
def image() -> bytes:
    """The kernel's library as this machine builds it (without OpenMP)."""
    assert COMPILER is not None
    return kernel_cache.build_library(COMPILER, kernel.FLAGS)


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_library_cut_short_is_refused_before_anything_maps_it(image: bytes, cut: float) -> None:
    kernel_cache.check_complete(image)
    with pytest.raises(RuntimeError, match="the built kernel is not a complete library"):
        kernel_cache.check_complete(image[: int(len(image) * cut)])


def test_a_symbolic_link_at_the_library_name_is_not_followed(
    image: bytes, tmp_path: Path, planted: tuple[Path, Path]
) -> None:
    assert COMPILER is not None
    library, _ = planted
    directory = tmp_path / "kernels"
    directory.mkdir(mode=0o700)
    name = kernel_cache.library_name(COMPILER, kernel.FLAGS)
    (directory / name).symlink_to(library)
    (directory / f"{name}.sha256").write_text(hashlib.sha256(library.read_bytes()).hexdigest())
    planted_bytes = library.read_bytes()
    with kernel_cache.KernelCache(directory) as cache:
        found = cache.library(COMPILER, kernel.FLAGS)
    assert cache.doubt is not None
    assert f"the cached file {directory / name} is a symbolic link" in cache.doubt[0]
    assert found.image == image
    assert found.cached == directory / name
    assert not (directory / name).is_symlink()  # replaced by the new build
    assert (directory / name).read_bytes() == image
    assert library.read_bytes() == planted_bytes  # the link's target is left alone


def test_without_memory_files_the_library_loads_from_a_private_directory_then_removed(
    image: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    loaded = kernel_cache.load_image(image)
    assert loaded.nxe_fake_quantize_f32 is not None
    assert list(tmp_path.iterdir()) == []
