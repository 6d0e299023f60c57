"""Call-site operator naming (``nncf_explore/graph/opcodes.py``) under every CPython we declare.

The checks are plain functions on plain Python objects, with neither torch nor pytest, so this file
also runs as a script under a bare interpreter (``python3.13 tests/graph/test_opcodes.py``): it then
loads ``opcodes.py`` by its path, because ``nncf_explore/__init__.py`` imports torch, and a CPU
torch wheel exists here for 3.11 only.  ``test_under_every_other_interpreter`` runs the script
under each CPython 3.10-3.13 that it finds besides the one running the suite.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve()
OPCODES = HERE.parents[2] / "nncf_explore" / "graph" / "opcodes.py"
DECLARED = range(10, 14)  # requires-python >= 3.10; the newest release checked here is 3.13


def _load_by_path() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nncf_explore_opcodes", OPCODES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    operator_at = _load_by_path().operator_at
else:
    from nncf_explore.graph.opcodes import operator_at


class Spy:
    """Records, for each operator method Python calls on it, what the calling instruction decodes to."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def _record(self, *_: object) -> Spy:
        caller = sys._getframe(1)
        self.seen.append(operator_at(caller.f_code, caller.f_lasti))
        return self

    def __bool__(self) -> bool:
        return True

    def method(self) -> Spy:
        return self._record()


BINARY = [
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
]
COMPARE = ["lt", "le", "eq", "ne", "gt", "ge"]
for _name in BINARY:
    for _dunder in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        setattr(Spy, _dunder, Spy._record)
for _dunder in [f"__{name}__" for name in COMPARE] + ["__neg__", "__pos__", "__invert__"]:
    setattr(Spy, _dunder, Spy._record)


def test_binary_operators() -> None:
    s = Spy()
    s + 1
    s - 1
    s * 1
    s / 1
    s // 1
    s % 1
    s**1
    s @ 1
    s & 1
    s | 1
    s ^ 1
    s << 1
    s >> 1
    assert s.seen == [f"__{name}__" for name in BINARY]


def test_reflected_operands_name_the_operator() -> None:
    # The instruction is the same whichever side the tensor is on: ``1 + x`` runs ``+``.
    s = Spy()
    1 + s
    1 - s
    1 * s
    1 / s
    1 // s
    1 % s
    1**s
    1 @ s
    1 & s
    1 | s
    1 ^ s
    1 << s
    1 >> s
    assert s.seen == [f"__{name}__" for name in BINARY]


def test_inplace_operators() -> None:
    s = Spy()
    s += 1
    s -= 1
    s *= 1
    s /= 1
    s //= 1
    s %= 1
    s **= 1
    s @= 1
    s &= 1
    s |= 1
    s ^= 1
    s <<= 1
    s >>= 1
    assert s.seen == [f"__i{name}__" for name in BINARY]


def test_comparisons() -> None:
    s = Spy()
    s < 1
    s <= 1
    s == 1
    s != 1
    s > 1
    s >= 1
    assert s.seen == [f"__{name}__" for name in COMPARE]


def test_comparisons_used_as_conditions() -> None:
    # 3.13 marks these ``bool(<)``; 3.10-3.12 jump on a plain COMPARE_OP.
    s = Spy()
    if s < 1:
        pass
    if not s <= 1:
        pass
    while s == 1:
        break
    assert s != 1 and s > 1
    assert [x for x in [s] if x >= 1]
    assert s.seen == [f"__{name}__" for name in COMPARE]


def test_chained_comparison() -> None:
    s = Spy()
    assert s < s <= s
    assert s.seen == ["__lt__", "__le__"]


def test_unary_operators() -> None:
    s = Spy()
    -s
    +s
    ~s
    assert s.seen == ["__neg__", "__pos__", "__invert__"]


def test_calls_are_not_operators() -> None:
    s = Spy()
    s.method()
    s.__add__(1)  # an explicit method call is a call, as ``x.add(y)`` is
    assert s.seen == [None, None]


def test_operators_far_into_a_large_function() -> None:
    # Offsets past 256 and arguments that need EXTENDED_ARG must still line up with f_lasti.
    body = "".join(f"    v{i} = s + {i}\n" for i in range(300))
    namespace: dict[str, object] = {}
    exec(f"def big(s):\n{body}    return s * 2, s < 3, -s\n", namespace)
    s = Spy()
    namespace["big"](s)  # type: ignore[operator]
    assert s.seen == ["__add__"] * 300 + ["__mul__", "__lt__", "__neg__"]


def test_unknown_offsets_decode_to_nothing() -> None:
    code = test_unknown_offsets_decode_to_nothing.__code__
    assert operator_at(code, -1) is None
    assert operator_at(code, len(code.co_code) + 10) is None


CHECKS: tuple[Callable[[], None], ...] = (
    test_binary_operators,
    test_reflected_operands_name_the_operator,
    test_inplace_operators,
    test_comparisons,
    test_comparisons_used_as_conditions,
    test_chained_comparison,
    test_unary_operators,
    test_calls_are_not_operators,
    test_operators_far_into_a_large_function,
    test_unknown_offsets_decode_to_nothing,
)


def _run_checks() -> int:
    for check in CHECKS:
        check()
    assert "torch" not in sys.modules, "opcodes.py must not import torch"
    print(f"{len(CHECKS)} operator-naming checks passed on Python {sys.version.split()[0]}")
    return 0


def _candidates() -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=False)
        roots.append(found.stdout.strip())
    paths = [
        str(python)
        for root in filter(None, roots)
        for minor in DECLARED
        for python in sorted(Path(root).glob(f"versions/3.{minor}.*/bin/python3"))
    ]
    paths += filter(None, (shutil.which(f"python3.{minor}") for minor in DECLARED))
    return list(dict.fromkeys(paths))


def _version_of(python: str) -> str | None:
    """``3.13.0`` for a working interpreter (a pyenv shim for an inactive version is not one)."""
    try:
        probe = subprocess.run(
            [python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


def other_interpreters() -> dict[str, str]:
    """Version -> interpreter, for each CPython 3.10-3.13 found other than the running one."""
    running = ".".join(map(str, sys.version_info[:3]))
    found: dict[str, str] = {}
    for python in _candidates():
        version = _version_of(python)
        if version and version != running and int(version.split(".")[1]) in DECLARED:
            found.setdefault(version, python)
    return found


def test_under_every_other_interpreter() -> None:
    import pytest

    interpreters = other_interpreters()
    if not interpreters:
        pytest.skip("no CPython 3.10-3.13 besides this one was found (pyenv versions or python3.X on PATH)")
    failures = []
    for version, python in sorted(interpreters.items()):
        # -I: no PYTHONPATH, user site or script folder, so nothing but opcodes.py can be imported
        # from the project; -B: no bytecode caches written into the tree.
        run = subprocess.run(
            [python, "-I", "-B", str(HERE)], capture_output=True, text=True, timeout=120, check=False
        )
        if run.returncode != 0:
            failures.append(f"Python {version} ({python}):\n{run.stdout}{run.stderr}")
    assert not failures, "operator naming fails on:\n" + "\n".join(failures)


if __name__ == "__main__":
    sys.exit(_run_checks())
