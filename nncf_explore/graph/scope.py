"""NNCF-style scopes and node names, and matching of user-written scope patterns.

NNCF names a node ``{scope}/{op}_{call_order}``, where the scope lists the
calling modules as ``Class[attribute]`` from the root down.  NNCF's own names
carry its wrapper classes (``NNCFConv2d``) where ours carry the user's
(``Conv2d``); :func:`normalize_node_name` maps both spellings to one form so a
config written for NNCF matches our graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# NNCF wraps these module classes and prefixes their names with "NNCF".
_NNCF_WRAPPED = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "GroupNorm",
    "LayerNorm",
    "Embedding",
    "EmbeddingBag",
    "LSTMCell",
    "GRUCell",
    "RNNCell",
]
# Word boundaries (not "/" and "[") so that regex patterns such as
# ``{re}.*NNCFConv2d\\[conv1\\]`` are normalised too.
_NNCF_PREFIX = re.compile(r"(?<![A-Za-z0-9_])NNCF(" + "|".join(_NNCF_WRAPPED) + r")(?![A-Za-z0-9_])")
REGEX_MARK = "{re}"


@lru_cache(maxsize=65536)
def normalize_node_name(name: str) -> str:
    """Map NNCF's wrapper class names to the plain torch ones.

    Examples:
        >>> normalize_node_name("ResNet/NNCFConv2d[conv1]/conv2d_0")
        'ResNet/Conv2d[conv1]/conv2d_0'
        >>> normalize_node_name("ResNet/Conv2d[conv1]/conv2d_0")
        'ResNet/Conv2d[conv1]/conv2d_0'
    """
    return _NNCF_PREFIX.sub(r"\1", name)


def names_match(a: str, b: str) -> bool:
    """Whether two node names denote the same node, ignoring NNCF's wrapper prefixes.

    Examples:
        >>> names_match("Net/NNCFLinear[fc]/linear_0", "Net/Linear[fc]/linear_0")
        True
    """
    return a == b or normalize_node_name(a) == normalize_node_name(b)


def scope_element(class_name: str, field: str | None) -> str:
    """One element of a scope: ``Class[field]``, or just ``Class`` for the root."""
    return class_name if field is None else f"{class_name}[{field}]"


def node_name(scope: str, op: str, call_order: int) -> str:
    """NNCF's operation address string.

    Examples:
        >>> node_name("ResNet/ReLU[relu]", "relu_", 1)
        'ResNet/ReLU[relu]/relu__1'
    """
    return f"{scope}/{op}_{call_order}"


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(normalize_node_name(pattern.replace(REGEX_MARK, "")))


def matches_pattern(pattern: str, name: str) -> bool:
    """NNCF's scope rule: ``{re}`` patterns are searched, others compared exactly.

    Both spellings of module classes (``NNCFConv2d`` and ``Conv2d``) match.

    Examples:
        >>> matches_pattern("{re}layer1", "ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0")
        True
        >>> matches_pattern("ResNet/NNCFConv2d[conv1]/conv2d_0", "ResNet/Conv2d[conv1]/conv2d_0")
        True
    """
    if REGEX_MARK in pattern:
        return _compile(pattern).search(normalize_node_name(name)) is not None
    return names_match(pattern, name)


def matches_any(patterns: Iterable[str] | str | None, name: str) -> bool:
    """Whether ``name`` matches any of ``patterns`` (a string or a list of strings)."""
    if patterns is None:
        return False
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(matches_pattern(p, name) for p in patterns)
