"""Atomic file writes shared by every writer in the package: JSON configs, dot dumps, ONNX exports.

Each writer goes through :func:`atomic_write_path`, so all of them behave the same way:

- missing parent directories are created (the Explorer always did; now every writer does);
- a new file gets the permissions of a plain ``open(path, "w")`` (``0o666`` minus the umask), and an
  existing file keeps its own;
- readers see the old file or the new one, never half of one;
- errors are :class:`~nncf_explore.errors.FileWriteError` and name the target, never the temporary file,
  which is removed on failure.

Examples:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "new", "dir", "c.json")
    >>> write_text_atomic(target, "{}\\n")
    >>> open(target).read()
    '{}\\n'
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nncf_explore.errors import FileWriteError

PathLike = str | os.PathLike[str]

_FIXES = {
    errno.EACCES: "check that you may write to {parent}, or choose another path",
    errno.EPERM: "check that you may write to {parent}, or choose another path",
    errno.EROFS: "the file system is read-only: choose a path on a writable one",
    errno.ENOSPC: "the disk is full: free some space, or choose a path on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or choose a path on another disk",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another path",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter one",
}


def _fix(error_number: int | None, target: Path) -> str:
    template = _FIXES.get(error_number or 0, "choose another path")
    return template.format(parent=str(target.parent))


def _target_of(path: PathLike) -> Path:
    text = os.fspath(path)
    if not text.strip():
        raise FileWriteError(
            errno.EINVAL,
            "cannot write a file at an empty path: pass a file name such as 'nncf_config.json'",
            "",
        )
    target = Path(text).expanduser().absolute()
    if os.path.isdir(target):  # unlike Path.is_dir, never raises (a name too long is reported later)
        raise FileWriteError(
            errno.EISDIR,
            f"cannot write {str(target)!r}: it is a directory; pass a file path inside it, such as "
            f"{str(target / 'nncf_config.json')!r}",
            str(target),
        )
    return target


def _create_beside(target: Path) -> str:
    """Create an empty temporary file next to ``target`` and return its name.

    ``tempfile.mkstemp`` would create it 0o600, which suits a shared /tmp but not a file that becomes
    the target. Creating it with mode 0o666 lets the kernel apply the umask (and any default ACL)
    exactly as for a plain ``open()``, without reading the umask: ``os.umask`` can only be read by
    setting it, which is process-global and races with other threads creating files.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = str(target.parent / f".{target.name[:200]}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(name, flags, 0o666))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


@contextmanager
def atomic_write_path(path: PathLike) -> Iterator[str]:
    """A temporary file name beside ``path`` to write to; it replaces ``path`` when the block succeeds.

    Use it for writers that open the file themselves (``torch.onnx.export``); text goes through
    :func:`write_text_atomic`. If the block raises, the temporary file is removed and ``path`` is
    left as it was.

    Raises:
        FileWriteError: ``path`` is empty or a directory, or the file system refused the write; the
            message names ``path`` and the fix.

    Examples:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with atomic_write_path(target) as temporary:
        ...     with open(temporary, "wb") as stream:
        ...         _ = stream.write(b"data")
        >>> open(target, "rb").read(), os.listdir(os.path.dirname(target))
        (b'data', ['model.bin'])
    """
    target = _target_of(path)
    temporary = _prepare(target)
    try:
        yield temporary
        _commit(temporary, target)
    except OSError as error:
        _discard(temporary)
        if isinstance(error, FileWriteError) or error.filename not in (None, temporary, str(target)):
            raise  # an error about another file (an input the writer reads, say): keep it as it is
        raise _write_error(error, target) from error
    except BaseException:
        _discard(temporary)
        raise


def _prepare(target: Path) -> str:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return _create_beside(target)
    except FileExistsError as error:  # mkdir met a file where a directory should be
        not_a_directory = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), error.filename)
        raise _write_error(not_a_directory, target) from error
    except OSError as error:
        raise _write_error(error, target) from error


def _commit(temporary: str, target: Path) -> None:
    descriptor = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the data reaches the disk before the rename makes it visible
    finally:
        os.close(descriptor)
    if os.path.isfile(target):
        os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
    os.replace(temporary, target)


def _discard(temporary: str) -> None:
    Path(temporary).unlink(missing_ok=True)


def _write_error(error: OSError, target: Path) -> FileWriteError:
    reason = error.strerror or str(error)
    return FileWriteError(
        error.errno or errno.EIO,
        f"cannot write {str(target)!r}: {reason}; {_fix(error.errno, target)}",
        str(target),
    )


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; see :func:`atomic_write_path`.

    Raises:
        FileWriteError: The file cannot be written; the message names ``path`` and the fix.
    """
    with atomic_write_path(path) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
