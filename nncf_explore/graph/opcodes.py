"""Which Python operator a bytecode instruction runs, read through :mod:`dis` on CPython 3.10 and later.

torch hands ``x + y`` and ``x.add(y)`` to ``__torch_function__`` as the same ``Tensor.add``, and
NNCF recorded the first as ``__add__``; the instruction that the calling frame is executing tells
them apart.  Its encoding changes between versions: 3.10 has one opcode per operator
(``BINARY_ADD``, ``INPLACE_ADD``), 3.11 one ``BINARY_OP`` with an index, and ``COMPARE_OP`` packs
its index differently in 3.11, 3.12 and 3.13.  So the operator's symbol is taken from ``dis``,
which every version decodes for itself, and never from raw bytes.

This module imports only the standard library: its tests run under every interpreter, including
those for which there is no torch wheel.
"""

from __future__ import annotations

import dis
import functools
from collections.abc import Mapping
from types import CodeType

_BINARY = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "truediv",
    "//": "floordiv",
    "%": "mod",
    "**": "pow",
    "@": "matmul",
    "&": "and",
    "|": "or",
    "^": "xor",
    "<<": "lshift",
    ">>": "rshift",
}
_COMPARE = {"<": "lt", "<=": "le", "==": "eq", "!=": "ne", ">": "gt", ">=": "ge"}

SYMBOL_DUNDERS: Mapping[str, str] = {
    **{symbol: f"__{name}__" for symbol, name in _BINARY.items()},
    **{f"{symbol}=": f"__i{name}__" for symbol, name in _BINARY.items()},
    **{symbol: f"__{name}__" for symbol, name in _COMPARE.items()},
}
"""Operator symbol, as ``dis`` spells it in ``argrepr`` (``+``, ``+=``, ``<=``), -> dunder method."""

# 3.10 has an opcode per operator and leaves ``argrepr`` empty; its names are matched to symbols
# by the operator's name, which is the same word in BINARY_/INPLACE_ opnames on that version.
_OPNAME_WORDS = {
    "ADD": "+",
    "SUBTRACT": "-",
    "MULTIPLY": "*",
    "TRUE_DIVIDE": "/",
    "FLOOR_DIVIDE": "//",
    "MODULO": "%",
    "POWER": "**",
    "MATRIX_MULTIPLY": "@",
    "AND": "&",
    "OR": "|",
    "XOR": "^",
    "LSHIFT": "<<",
    "RSHIFT": ">>",
}
_OPNAME_SYMBOLS: Mapping[str, str] = {
    **{f"BINARY_{word}": symbol for word, symbol in _OPNAME_WORDS.items()},
    **{f"INPLACE_{word}": f"{symbol}=" for word, symbol in _OPNAME_WORDS.items()},
}
# Unary operators have an opcode of their own everywhere, except ``+x``, which 3.12 turned into
# an intrinsic call (told apart by its argrepr).
_UNARY = {
    "UNARY_NEGATIVE": "__neg__",
    "UNARY_INVERT": "__invert__",
    "UNARY_POSITIVE": "__pos__",
}
_INTRINSIC_UNARY = {"INTRINSIC_UNARY_POSITIVE": "__pos__"}


def operator_at(code: CodeType, offset: int) -> str | None:
    """The dunder method of the Python operator at byte ``offset`` of ``code``, or None.

    ``offset`` is a frame's ``f_lasti``: the instruction it is executing.  Binary, in-place,
    comparison and unary operators (``-x``, ``~x``, ``+x``) are named; any other instruction,
    such as a call, gives None.

    Examples:
        >>> import sys
        >>> class Spy:
        ...     def __add__(self, *other):
        ...         caller = sys._getframe(1)
        ...         return operator_at(caller.f_code, caller.f_lasti)
        ...     __le__ = __neg__ = __add__
        >>> spy = Spy()
        >>> spy + 1, spy <= 1, -spy
        ('__add__', '__le__', '__neg__')
    """
    return _operators_in(code).get(offset)


# Keyed by code object: one ``dis`` pass per function, however many call sites it has and however
# often it is traced.  Bounded, because the cache keeps the code objects alive.
@functools.lru_cache(maxsize=1024)
def _operators_in(code: CodeType) -> Mapping[int, str]:
    found: dict[int, str] = {}
    for instruction in dis.get_instructions(code):
        name = _instruction_operator(instruction)
        if name is not None:
            found[instruction.offset] = name
    return found


def _instruction_operator(instruction: dis.Instruction) -> str | None:
    opname = instruction.opname
    if opname in ("BINARY_OP", "COMPARE_OP"):
        return SYMBOL_DUNDERS.get(_bare_symbol(instruction.argrepr))
    if opname in _OPNAME_SYMBOLS:
        return SYMBOL_DUNDERS[_OPNAME_SYMBOLS[opname]]
    if opname == "CALL_INTRINSIC_1":
        return _INTRINSIC_UNARY.get(instruction.argrepr)
    return _UNARY.get(opname)


def _bare_symbol(argrepr: str) -> str:
    # 3.13 marks a comparison whose result is used as a truth value (``if x < y``) as ``bool(<)``.
    if argrepr.startswith("bool(") and argrepr.endswith(")"):
        return argrepr[len("bool(") : -1]
    return argrepr
