"""Every file writer (JSON config, dot dump, ONNX export, Explorer session) behaves the same way.

One helper, ``nncf_explore.files.atomic_write_path``, writes them all: missing directories are made,
new files get ``0o666`` minus the umask, errors name the target (not the temporary file), and a
failed write leaves neither a temporary file nor a changed target. Before, ONNX and dot files were
0600 whatever the umask, JSON was always 0644, ``to_json`` and ``export_config`` raised
``FileNotFoundError`` for a missing directory, and ``path=""`` gave "Device or resource busy".
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from nncf_explore import EditSession, NNCFConfig, create_compressed_model
from nncf_explore.errors import FileWriteError
from nncf_explore.files import atomic_write_path, write_text_atomic
from tests.compression.tiny import tiny

CONFIG = {
    "input_info": {"sample_size": [1, 3, 6, 6]},
    "target_device": "TRIAL",
    "compression": {"algorithm": "quantization"},
}


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test, and restore it (tests run on one thread)."""
    old = os.umask(0o022)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    try:
        yield set_umask
    finally:
        os.umask(old)


def write_json(path: Path | str) -> None:
    NNCFConfig.from_dict(CONFIG).to_json(path)


def write_dot(path: Path | str) -> None:
    tiny()[1].dump_dot(str(path))


def write_onnx(path: Path | str) -> None:
    pytest.importorskip("onnx")
    model, _ = tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(model, CONFIG, dump_graphs=False)
        ctrl.export_model(path)


def write_session(path: Path | str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = EditSession(tiny()[0], CONFIG)
    assert session.export_config(path) == str(path)


WRITERS = {"json": write_json, "dot": write_dot, "onnx": write_onnx, "session": write_session}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_umask_and_missing_directories_are_created(
    tmp_path: Path, umask: Callable[[int], None], kind: str, mask: int, expected: int
) -> None:
    umask(mask)
    path = tmp_path / "new" / "dirs" / f"out.{kind}"
    WRITERS[kind](path)
    assert path.stat().st_size > 0
    assert mode_of(path) == expected
    assert os.listdir(path.parent) == [path.name]  # no temporary file left


@pytest.mark.parametrize("kind", ["json", "dot"])
def test_an_existing_file_keeps_its_mode(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"out.{kind}"
    path.write_text("old")
    path.chmod(0o640)
    WRITERS[kind](path)
    assert mode_of(path) == 0o640 and path.read_text() != "old"


@pytest.mark.parametrize("kind", WRITERS)
def test_an_empty_path_is_a_clear_error(kind: str) -> None:
    with pytest.raises(FileWriteError, match="cannot write a file at an empty path: pass a file name"):
        WRITERS[kind]("")  # not Path(""), which is "."


@pytest.mark.parametrize("kind", ["json", "dot", "session"])
def test_a_directory_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    with pytest.raises(FileWriteError, match="it is a directory; pass a file path inside it") as info:
        WRITERS[kind](tmp_path)
    assert info.value.errno == errno.EISDIR and isinstance(info.value, OSError)


@pytest.mark.parametrize("kind", ["json", "dot"])
def test_errors_name_the_target_not_the_temporary_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ("x" * 300 + f".{kind}")  # longer than any file system allows
    with pytest.raises(FileWriteError) as info:
        WRITERS[kind](path)
    message = str(info.value)
    assert message.startswith(f"cannot write {str(path)!r}: File name too long")
    assert "choose a shorter one" in message
    assert ".tmp" not in message and info.value.filename == str(path)
    assert os.listdir(tmp_path) == []


def test_a_parent_that_is_a_file_names_the_target(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "c.json"
    with pytest.raises(FileWriteError, match=f"cannot write {str(path)!r}: .*a part of the path is a file"):
        write_json(path)


def test_a_failed_write_removes_the_temporary_file_and_keeps_the_target(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "\ud800")  # a lone surrogate cannot be written as UTF-8
    with pytest.raises(RuntimeError), atomic_write_path(path) as temporary:
        Path(temporary).write_text("half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["c.json"]


def test_a_disk_error_while_writing_names_the_target(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    expected = f"cannot write {str(path)!r}: No space left.*free some space"
    with pytest.raises(FileWriteError, match=expected), atomic_write_path(path) as temporary:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)
    assert os.listdir(tmp_path) == []


def test_errors_about_other_files_are_left_alone(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights.pt"), atomic_write_path(tmp_path / "out.onnx"):
        torch.load(tmp_path / "weights.pt")
    assert os.listdir(tmp_path) == []
