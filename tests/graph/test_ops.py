"""Operator names of traced Python operators, end to end through torch (the torch-free decoder is
checked under every interpreter in test_opcodes.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nncf_explore.graph import OpCategory, trace_model


class _Operators(nn.Module):
    """One call per Python operator on float tensors, then the integer-only ones."""

    def forward(self, a: torch.Tensor) -> list[torch.Tensor]:
        b = a.abs() + 1.0  # positive, so ``**`` and ``/`` stay finite
        m = a.reshape(2, 2)
        i, j = (b * 10).long(), (b * 10).long()
        out = [a + b, a - b, a * b, a / b, a // b, a % b, m @ m]
        out += [i & j, i | j, i ^ j, i << 1, i >> 1]
        out += [a < b, a <= b, a == b, a != b, a > b, a >= b]
        out += [-a, ~i]
        x = a.clone()
        x += b
        x -= b
        x *= b
        x /= b
        x //= b
        y = m.clone()
        y @= m
        k = i.clone()
        k &= j
        k |= j
        k ^= j
        k <<= 1
        k >>= 1
        out += [a.add(b), a.sub(b), a.mul(b), a.div(b), a.lt(b), a.eq(b), a.neg(), torch.add(a, b)]
        return [*out, x, y, k]


@pytest.fixture(scope="module")
def operator_ops() -> list[str]:
    graph = trace_model(_Operators(), {"sample_size": [4]})
    return [n.op for n in graph.nodes if n.category not in (OpCategory.INPUT, OpCategory.OUTPUT)]


def test_python_operators_get_nncf_dunder_names(operator_ops: list[str]) -> None:
    expected = [
        *["__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__matmul__"],
        *["__and__", "__or__", "__xor__", "__lshift__", "__rshift__"],
        *["__lt__", "__le__", "__eq__", "__ne__", "__gt__", "__ge__"],
        *["__neg__", "__invert__"],
        *["clone", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__"],
        # Tensor has no __imatmul__: Python runs ``y @= m`` as ``y = y @ m``, and NNCF records __matmul__.
        *["clone", "__matmul__"],
        *["clone", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__"],
        *["add", "sub", "mul", "div", "lt", "eq", "neg", "add"],
    ]
    assert operator_ops[-len(expected) :] == expected  # after the set-up of b, m, i and j


def test_inplace_matmul_is_a_matmul_for_placement() -> None:
    # Named __imatmul__ before, it fell in OpCategory.OTHER and got no quantizers.
    graph = trace_model(_Operators(), {"sample_size": [4]})
    matmuls = [n for n in graph.nodes if n.op == "__matmul__"]
    assert len(matmuls) == 2 and all(n.category is OpCategory.MATMUL for n in matmuls)
