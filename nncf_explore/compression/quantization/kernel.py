"""A fused CPU kernel for fake quantization without autograd, built on first use.

The eager path runs NNCF's formula as four to six elementwise torch passes per
quantizer.  ``fake_quantize_kernel.c`` (beside this file) does the same float32
operations in one pass, bit for bit: ``tests/compression/quantization/test_kernel.py``
checks it against :func:`~nncf_explore.compression.quantization.fake_quantize.reference_fake_quantize`
for every bit width, mode and granularity, on rounding ties, NaN, infinities and
signed zeros.  On Linux, where torch runs on OpenMP, the kernel joins torch's own
OpenMP threads rather than starting threads that would compete with them.

It is compiled with the system C compiler (``$CC``, else Python's, else ``cc``;
about 0.2 s) the first time a quantizer runs without autograd, and kept in
``$NNCF_EXPLORE_CACHE_DIR`` (default ``~/.cache/nncf_explore``) for later
processes.  A cached library runs only if this user's files vouch for it: its
digest, owner and mode (:mod:`~nncf_explore.compression.quantization.kernel_cache`).
Otherwise it is built again, and one :class:`KernelWarning` says why.  Without a
compiler, or with ``NNCF_EXPLORE_KERNEL=0``, the eager path runs instead: the same
results, more slowly.  :func:`kernel_status` tells which is in use, and why.
Training forwards (autograd) always use the eager path.

Examples:
    >>> kernel_status().state in {"not built", "available", "unavailable", "disabled"}
    True
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from nncf_explore.compression.quantization.kernel_cache import (
    ENV_CACHE,
    KernelCache,
    KernelWarning,
    default_cache_dir,
    load_image,
)

__all__ = [
    "ENV_CACHE",
    "ENV_SWITCH",
    "FLAGS",
    "KernelStatus",
    "KernelWarning",
    "fused_fake_quantize",
    "fused_from_tensors",
    "kernel_status",
    "load_kernel",
]

FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
"""No fused multiply-add and no fast-math: the compiler may vectorise but never re-round."""
ENV_SWITCH = "NNCF_EXPLORE_KERNEL"
"""Set to ``0`` to use the eager torch path only."""

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_PLAIN_TENSORS = (Tensor, torch.nn.Parameter)


@dataclass(frozen=True)
class KernelStatus:
    """Whether the fused kernel runs, and why not if it does not.

    Attributes:
        state: ``"not built"`` (nothing has needed it yet), ``"available"``,
            ``"unavailable"`` (the build or load failed) or ``"disabled"``
            (``NNCF_EXPLORE_KERNEL=0``).
        detail: The library's path and threading, or what went wrong and how to fix it.
    """

    state: Literal["not built", "available", "unavailable", "disabled"]
    detail: str


@dataclass
class _Loaded:
    function: Any  # the ctypes function
    threaded: bool  # runs on torch's OpenMP threads
    path: Path | None  # where it is cached; None when built for this process only


@dataclass
class _State:
    status: KernelStatus
    loaded: _Loaded | None = None


_state = _State(KernelStatus("not built", ""))  # this process's kernel, loaded on first use


def kernel_status() -> KernelStatus:
    """The kernel's state in this process (the first quantizer that needs it builds it)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return KernelStatus("disabled", f"{ENV_SWITCH}=0 is set: quantizers use the eager torch path")
    return _state.status


def load_kernel() -> bool:
    """Build (or find in the cache) and load the kernel now; True if it can run.

    Examples:
        >>> load_kernel() == (kernel_status().state == "available")
        True
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    warning = None
    with _lock:
        if _state.status.state == "not built":
            _state.status, warning = _first_load()
    if warning is not None:  # outside the lock: a filter may turn it into an error
        warnings.warn(warning, KernelWarning, stacklevel=2)
    return _state.loaded is not None


def _first_load() -> tuple[KernelStatus, str | None]:
    """This process's kernel status, and the cache's one warning if anything in it was in doubt."""
    cache: KernelCache | None = None
    try:
        if os.name != "posix":  # the cache's checks need POSIX owners, modes and descriptors
            raise RuntimeError("the fused kernel is built on POSIX systems (Linux, macOS) only")
        compiler = _compiler()
        cache = KernelCache(default_cache_dir())
        loaded = _state.loaded = _load(compiler, cache)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        status = KernelStatus(
            "unavailable",
            f"{exc}. Quantizers use the eager torch path (the same results, more slowly). "
            f"Install a C compiler (Debian: apt-get install gcc) or set CC, and restart Python; "
            f"{ENV_SWITCH}=0 keeps the eager path without trying.",
        )
        _log.info("nncf_explore: fused fake-quantize kernel unavailable: %s", status.detail)
        eager = "the eager torch path runs instead (the same results, more slowly)"
        return status, None if cache is None else cache.warning(eager)
    finally:
        if cache is not None:
            cache.close()
    threads = "on torch's OpenMP threads" if loaded.threaded else "on the calling thread"
    if loaded.path is None:
        problem = cache.doubt[0] if cache.doubt else "the cache was not usable"
        where = f"built for this process only, not cached ({problem})"
        outcome = "the kernel was built for this process only, not cached (results are unaffected)"
    else:
        where = str(loaded.path)
        outcome = "the kernel was rebuilt and the cached copy replaced (results are unaffected)"
    return KernelStatus("available", f"{where}, running {threads}"), cache.warning(outcome)


def fused_fake_quantize(
    x: Tensor,
    arrays: tuple[Tensor, Tensor, Tensor, Tensor],
    subtract: tuple[bool, bool],
    channel_axis: int | None,
    *,
    out: Tensor | None = None,
) -> Tensor | None:
    """Fake-quantize ``x`` in one pass, or return None where the kernel does not apply.

    It applies to contiguous float32 CPU tensors, per tensor or per channel along
    ``channel_axis``.  The caller makes sure no gradient is needed.

    Args:
        x: The input.
        arrays: ``(low, high, s, zero_point)``: contiguous float32, one value per channel.
        subtract: Whether to subtract ``low`` and ``zero_point`` (False where they are all 0).
        channel_axis: The axis of ``x`` the arrays run along; None per tensor.
        out: Where to write (``x`` itself to quantize in place); a new tensor by default.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    loaded = _state.loaded
    if loaded is None:
        if _state.status.state != "not built" or not load_kernel():
            return None
        loaded = _state.loaded
        assert loaded is not None
    if x.dtype != torch.float32 or x.device.type != "cpu" or not x.is_contiguous() or _capturing(x):
        return None
    channels = arrays[0].numel()
    if channel_axis is None:
        if channels != 1:
            return None
        outer, inner = 1, x.numel()
    else:
        if not 0 <= channel_axis < x.dim() or x.shape[channel_axis] != channels:
            return None
        outer = math.prod(x.shape[:channel_axis])
        inner = math.prod(x.shape[channel_axis + 1 :])
    result = torch.empty_like(x) if out is None else out
    low, high, s, zero_point = (a.data_ptr() for a in arrays)
    threads = torch.get_num_threads() if loaded.threaded else 1
    loaded.function(
        x.data_ptr(), result.data_ptr(), outer, channels, inner, low, high, s, zero_point,
        int(subtract[0]), int(subtract[1]), threads,
    )  # fmt: skip
    return result


def fused_from_tensors(x: Tensor, low: Tensor, high: Tensor, s: Tensor, zero_point: Tensor) -> Tensor | None:
    """:func:`fused_fake_quantize` with the grid as tensors that broadcast against ``x``.

    Per tensor when the grid has one element, per channel when it has exactly one
    axis longer than 1 and as many dimensions as ``x``; None where the kernel does
    not apply (the caller then runs the torch steps).
    """
    if _capturing(x):
        return None
    if low.numel() == 1:
        axis = None
    else:
        longer = [d for d, n in enumerate(low.shape) if n != 1]
        if low.dim() != x.dim() or len(longer) != 1:
            return None
        axis = longer[0]
    grid = tuple(t.detach().reshape(-1).contiguous() for t in (low, high, s, zero_point))
    if any(t.dtype != torch.float32 or t.numel() != grid[0].numel() for t in grid):
        return None
    subtract = (bool(grid[0].ne(0).any()), bool(grid[3].ne(0).any()))
    return fused_fake_quantize(x, (grid[0], grid[1], grid[2], grid[3]), subtract, axis)


def _capturing(x: Tensor) -> bool:
    """Whether a graph is being captured (``torch.export``, ``torch.compile``, ``torch.jit.trace``).

    A capture sees torch ops only: a foreign call would be missing from the captured
    graph, and capture-time tensors (fake or functional tensor subclasses) have no data.
    """
    return (
        type(x) not in _PLAIN_TENSORS
        or torch._C._get_tracing_state() is not None
        or torch.compiler.is_compiling()
    )


def _compiler() -> str:
    candidates = [os.environ.get("CC", ""), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc"]
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return candidate
    raise RuntimeError("no C compiler found (looked for $CC, Python's CC and cc)")


def _openmp_libraries() -> set[str]:
    """Paths of the OpenMP runtimes mapped into this process (Linux only; empty elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in maps.splitlines() if "libgomp" in line and "/" in line}


def _load(compiler: str, cache: KernelCache) -> _Loaded:
    # Join torch's OpenMP runtime only when torch runs on libgomp, already loaded: the
    # library then binds to it instead of loading a second runtime.
    before = _openmp_libraries()
    shares_openmp = (
        sys.platform.startswith("linux") and bool(before) and "OpenMP" in torch.__config__.parallel_info()
    )
    if shares_openmp:
        try:
            library = cache.library(compiler, (*FLAGS, "-fopenmp"))
            return _Loaded(_bind(library.image), _openmp_libraries() == before, library.cached)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            _log.info("nncf_explore: building the kernel with OpenMP failed, trying without: %s", exc)
    library = cache.library(compiler, FLAGS)
    return _Loaded(_bind(library.image), False, library.cached)


def _bind(image: bytes) -> Any:
    function = load_image(image).nxe_fake_quantize_f32
    pointer, size, flag = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    function.argtypes = [
        pointer,
        pointer,
        size,
        size,
        size,
        pointer,
        pointer,
        pointer,
        pointer,
        flag,
        flag,
        flag,
    ]
    function.restype = ctypes.c_int
    return function
