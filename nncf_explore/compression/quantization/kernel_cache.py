"""Build the fused kernel's library, and keep it in a cache that hands back only what this user built.

The library's name in the cache is predictable, so the cache is treated as untrusted input.
A cached library is used only when all of these hold:

- the cache directory (``kernels/``) is a directory owned by this user and writable by no one
  else (a new one is created ``0700``, whatever the umask);
- the library and its digest file ``<name>.sha256`` are regular files, not symbolic links, owned
  by this user and writable by no one else;
- the SHA-256 of the library's bytes is the one in the digest file.

Otherwise the library is built again in a private temporary directory, and the load that needed
it gives one :class:`KernelWarning` that says what was wrong and how to fix it.  A library is
installed with its digest, each written to a temporary name in the cache directory and renamed
into place, so no process reads a half-written file.  Loading goes through :func:`load_image`,
which maps exactly the bytes that were checked (see there why).

Examples:
    >>> with tempfile.TemporaryDirectory() as root, KernelCache(Path(root) / "kernels") as cache:
    ...     print(cache.doubt, oct((Path(root) / "kernels").stat().st_mode & 0o777))
    None 0o700
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import secrets
import stat
import struct
import subprocess
import sys
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SOURCE = Path(__file__).with_name("fake_quantize_kernel.c")
ENV_CACHE = "NNCF_EXPLORE_CACHE_DIR"
"""Where built kernels are kept (``kernels/`` below it); default ``~/.cache/nncf_explore``."""
TEMP_PREFIX = "nncf_explore_kernel_"
COMPILE_TIMEOUT_S = 120
MAX_LIBRARY_BYTES = 16 << 20  # the library is about 20 kB: anything near this is not ours
# Part of the name's hash, so that libraries of older versions (kept without a digest) are not even looked at.
CACHE_FORMAT = "sha256-digest-v1"

_PRIVATE_FIX = f"set {ENV_CACHE} to a private directory of yours"
_REBUILT = f"nothing if this happened once; if it repeats, find what writes to the cache, or {_PRIVATE_FIX}"


class KernelWarning(UserWarning):
    """The kernel cache was not trusted or not usable; the message says why and how to fix it."""


class _Doubt(Exception):  # noqa: N818 - internal, never escapes this module
    """Why the cache, or a file in it, is not used: ``args`` are (problem, fix)."""


@dataclass(frozen=True)
class Library:
    """A library's bytes, checked, and where they are cached (None: built for this process only)."""

    image: bytes
    cached: Path | None


def default_cache_dir() -> Path:
    """``$NNCF_EXPLORE_CACHE_DIR/kernels``, else ``nncf_explore/kernels`` in the user's cache directory."""
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return Path(configured) / "kernels"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nncf_explore" / "kernels"


def library_name(compiler: str, flags: tuple[str, ...]) -> str:
    """The cached library's file name: a hash of the source, the build command and the cache format."""
    # A home directory may be shared by machines of other architectures: they get libraries of their own.
    build = " ".join((compiler, *flags, sys.platform, platform.machine(), CACHE_FORMAT))
    return f"fake_quantize-{hashlib.sha256(SOURCE.read_bytes() + build.encode()).hexdigest()[:16]}.so"


class KernelCache:
    """The cache directory, opened once per load, and the first reason it was doubted.

    The directory is held open and every file is reached relative to that descriptor, so a
    directory renamed or swapped after its checks cannot redirect a read or a write.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.doubt: tuple[str, str] | None = None
        self._fd: int | None = None
        try:
            self._fd = _open_private_directory(directory)
        except _Doubt as doubt:
            self._doubt(doubt)

    def __enter__(self) -> KernelCache:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the directory."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def library(self, compiler: str, flags: tuple[str, ...]) -> Library:
        """The checked cached library, or a new build (installed when the directory is trusted)."""
        name = library_name(compiler, flags)
        if self._fd is not None:
            try:
                image = _read_verified(self._fd, self.directory / name)
                if image is not None:
                    return Library(image, self.directory / name)
            except _Doubt as doubt:
                self._doubt(doubt)
        image = build_library(compiler, flags)
        if self._fd is None:
            return Library(image, None)
        try:
            _install(self._fd, name, image)
        except OSError as exc:
            problem = f"cannot write to the kernel cache directory {self.directory} ({exc.strerror})"
            self._doubt(_Doubt(problem, _PRIVATE_FIX))
            return Library(image, None)
        return Library(image, self.directory / name)

    def warning(self, outcome: str) -> str | None:
        """The load's one warning, ``outcome`` saying what was done instead; None if nothing was in doubt."""
        if self.doubt is None:
            return None
        problem, fix = self.doubt
        return f"nncf_explore's fused fake-quantize kernel: {problem}; {outcome}. To fix: {fix}."

    def _doubt(self, doubt: _Doubt) -> None:
        if self.doubt is None:  # the first reason is the one to fix; later ones follow from it
            problem, fix = doubt.args
            self.doubt = (str(problem), str(fix))


def _open_private_directory(directory: Path) -> int:
    """A descriptor of ``directory``, made ``0700`` if missing; _Doubt unless only this user can write it."""
    created = False
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(directory, 0o700)
        created = True
    except FileExistsError:
        pass  # an existing directory is checked below, like any other
    except OSError as exc:
        raise _missing_directory(directory, exc) from exc
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _missing_directory(directory, exc) from exc
    try:
        if created:
            os.fchmod(fd, 0o700)  # the umask may have taken the owner's bits too
        chmod = f"run `chmod 700 {directory}` if only you write to it, or {_PRIVATE_FIX}"
        _check_private(os.fstat(fd), f"the kernel cache directory {directory}", _PRIVATE_FIX, chmod)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _missing_directory(directory: Path, exc: OSError) -> _Doubt:
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = next((p for p in (directory, *directory.parents) if p.is_file()), directory)
        problem = f"the kernel cache path {blocker} is a file, not a directory"
        return _Doubt(problem, f"move it away, or {_PRIVATE_FIX}")
    return _Doubt(f"cannot create the kernel cache directory {directory} ({exc.strerror})", _PRIVATE_FIX)


def _check_private(info: os.stat_result, what: str, owner_fix: str, mode_fix: str) -> None:
    """_Doubt unless ``info`` belongs to this user and no one else may write it."""
    # The effective uid owns what this process creates, so it is the one to compare with.
    if info.st_uid != os.geteuid():
        raise _Doubt(f"{what} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})", owner_fix)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(info.st_mode)
        raise _Doubt(f"{what} is writable by group or others (mode {mode:04o})", mode_fix)


def _read_verified(dir_fd: int, library: Path) -> bytes | None:
    """The cached library's bytes if its digest file vouches for them; None if it is not cached.

    Raises:
        _Doubt: The library is there but not to be trusted.
    """
    image = _read_private(dir_fd, library, MAX_LIBRARY_BYTES)
    if image is None:
        return None
    digest_file = library.with_name(f"{library.name}.sha256")
    recorded = _read_private(dir_fd, digest_file, 256)
    what = f"the cached kernel {library}"
    if recorded is None:
        raise _Doubt(f"{what} has no digest file {digest_file}", _REBUILT)
    if recorded.decode("ascii", "replace").strip() != hashlib.sha256(image).hexdigest():
        raise _Doubt(f"{what} does not match its digest {digest_file} (truncated or replaced)", _REBUILT)
    return image


def _read_private(dir_fd: int, path: Path, limit: int) -> bytes | None:
    """Read a regular file of this user's that no one else may write; None if there is none.

    The checks are made on the open descriptor that is then read, so the file checked is the
    file read, even if the name is changed in between.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path.name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
        raise _Doubt(f"the cached file {path} is {reason}", _REBUILT) from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Doubt(f"the cached file {path} is not a regular file", _REBUILT)
        _check_private(info, f"the cached file {path}", _REBUILT, _REBUILT)
        data = file.read(limit + 1)
    if len(data) > limit:
        raise _Doubt(f"the cached file {path} is larger than {limit} bytes", _REBUILT)
    return data


def build_library(compiler: str, flags: tuple[str, ...]) -> bytes:
    """Compile the kernel in a private temporary directory, and return the library's checked bytes.

    Raises:
        RuntimeError: The compiler failed, or its output is not a complete library.
    """
    # mkdtemp makes it 0700: no one else can put a file where the compiler writes.
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, ignore_cleanup_errors=True) as private:
        output = os.path.join(private, "fake_quantize.so")
        done = subprocess.run(
            [compiler, *flags, "-o", output, str(SOURCE), "-lm"],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} could not build {SOURCE.name}: {done.stderr.strip()[-800:]}")
        image = Path(output).read_bytes()
    check_complete(image)
    return image


def check_complete(image: bytes) -> None:
    """Raise RuntimeError unless ``image`` holds every segment and section its ELF header lists.

    A file cut short would map fine and then kill the process with SIGBUS on first touch.
    Formats other than ELF (Mach-O) are only checked not to be empty.

    Examples:
        >>> check_complete(b"\\x7fELF")
        Traceback (most recent call last):
        ...
        RuntimeError: the built kernel is not a complete library (4 bytes, ELF header cut short)
    """
    what = f"the built kernel is not a complete library ({len(image)} bytes"
    if not image:
        raise RuntimeError(f"{what}, empty)")
    if image[:4] != b"\x7fELF":
        return
    wide, order = image[4:5] == b"\x02", "<" if image[5:6] == b"\x01" else ">"
    # Where (e_phoff, e_shoff) and (e_phentsize, e_phnum, e_shentsize, e_shnum) are, and where a
    # program header keeps p_offset and p_filesz: the ELF layouts of 64-bit and 32-bit files.
    layout = ("Q", 0x20, 0x36, "8xQ16xQ") if wide else ("I", 0x1C, 0x2A, "4xI8xI")
    word, offsets_at, counts_at, segment = layout
    try:
        phoff, shoff = struct.unpack_from(order + word * 2, image, offsets_at)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "4H", image, counts_at)
        ends = [shoff + shentsize * shnum, phoff + phentsize * phnum]
        for index in range(phnum):
            offset, size = struct.unpack_from(order + segment, image, phoff + index * phentsize)
            ends.append(offset + size)
    except struct.error:
        raise RuntimeError(f"{what}, ELF header cut short)") from None
    if max(ends) > len(image):
        raise RuntimeError(f"{what}, its ELF header lists {max(ends)})")


def _install(dir_fd: int, name: str, image: bytes) -> None:
    """Put the library and its digest in the cache, each written aside and renamed into place."""
    # The digest goes first: a reader then finds no library, or a library whose digest is there.
    _write_replace(dir_fd, f"{name}.sha256", (hashlib.sha256(image).hexdigest() + "\n").encode())
    _write_replace(dir_fd, name, image)


def _write_replace(dir_fd: int, name: str, data: bytes) -> None:
    partial = f".{name}.{secrets.token_hex(6)}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(partial, flags, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(partial, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(partial, dir_fd=dir_fd)
        raise


def load_image(image: bytes) -> ctypes.CDLL:
    """Load a checked library image, from a place where nothing can change it after the check.

    Hashing a file and then loading it by name would load whatever is at that name by then.  So
    the checked bytes themselves are loaded: on Linux from an anonymous memory file (no path
    anyone else can reach, nothing left behind, and unaffected by a ``noexec`` ``/tmp``),
    elsewhere from a fresh ``0700`` temporary directory, removed once the library is mapped.
    """
    loaded = _load_from_memory(image)
    if loaded is not None:
        return loaded
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, ignore_cleanup_errors=True) as private:
        path = os.path.join(private, "fake_quantize.so")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o700), "wb") as file:
            file.write(image)
        return ctypes.CDLL(path)


def _load_from_memory(image: bytes) -> ctypes.CDLL | None:
    """Load ``image`` from a memory file; None where there are none (not Linux, no ``/proc``)."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = os.memfd_create("nncf_explore_fake_quantize", os.MFD_CLOEXEC)
    except OSError:
        return None  # a kernel older than memfd
    try:
        remaining = memoryview(image)
        while remaining:
            remaining = remaining[os.write(fd, remaining) :]
        return ctypes.CDLL(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)  # the mapping outlives the descriptor
