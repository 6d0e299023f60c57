"""Quantization traits and hardware configs, as tables.

Each op gets a *trait* that steers placement: its inputs are quantized, it is
transparent to quantization (quantizers move up through it), it is a concat
(quantizers are cloned onto its inputs), its output is quantized like a weight
(embedding), or it runs in floating point.  With a hardware config (target
device ANY, CPU or GPU: NNCF's CPU config) the trait follows the device's op
list and each op gets the device's allowed quantizer configurations; with
``TRIAL`` there is no hardware config and any bit width is allowed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from nncf_explore.errors import ConfigError
from nncf_explore.graph.ir import Node
from nncf_explore.graph.ops import OpCategory


class Trait(enum.Enum):
    """How an op takes part in activation quantizer placement."""

    INPUTS_QUANTIZABLE = "inputs_quantizable"
    AGNOSTIC = "agnostic"
    CONCAT = "concat"
    OUTPUT_AS_WEIGHTS = "output_as_weights"
    NON_QUANTIZABLE = "non_quantizable"


@dataclass(frozen=True)
class QConfig:
    """One allowed activation quantizer configuration (8-bit unless constrained)."""

    mode: str
    per_channel: bool
    bits: int = 8


def _ops(names: str) -> frozenset[str]:
    return frozenset(names.split())


ADD = _ops("add add_ __add__ __iadd__ __radd__")
SUB = _ops("sub sub_ __sub__ __isub__ __rsub__ rsub")
MUL = _ops("mul mul_ __mul__ __imul__ __rmul__")
DIV = _ops("div div_ __truediv__ __itruediv__ __rtruediv__")
ARITHMETIC = ADD | SUB | MUL | DIV
MATMUL = _ops("matmul __matmul__ __rmatmul__ bmm mm addmm baddbmm einsum")
LINEAR_OPS = _ops("conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear") | MATMUL
FUSABLE_ACTIVATIONS = _ops(
    "relu relu_ hardtanh hardtanh_ elu elu_ prelu leaky_relu leaky_relu_ sigmoid gelu silu "
    "hardsigmoid hardswish selu"
)
BATCH_NORM = _ops("batch_norm")
CONCAT_OPS = _ops("cat concat concatenate stack")

# Traits without a hardware config (NNCF's default trait table for PyTorch).
_DEFAULT_QUANTIZABLE = (
    _ops(
        "conv2d conv3d conv_transpose2d conv_transpose3d linear layer_norm mean round pixel_shuffle "
        "batch_norm avg_pool2d avg_pool3d adaptive_avg_pool2d adaptive_avg_pool3d"
    )
    | ADD
    | MUL
    | DIV
    | MATMUL
)
_DEFAULT_AGNOSTIC = _ops(
    "threshold dropout dropout1d dropout2d feature_dropout pad max min transpose transpose_ permute t "
    "__getitem__ index_select gather select where scatter masked_fill masked_fill_ reshape view view_as "
    "flatten unflatten unsqueeze squeeze split chunk unbind expand expand_as max_pool1d max_pool2d "
    "max_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d max_unpool2d "
    "repeat_interleave contiguous clone detach to narrow"
)
_EMBEDDING = _ops("embedding embedding_bag")

# NNCF's CPU hardware config (also used for ANY and GPU): ops with activation
# configs, and "wildcard" ops listed without configs.
_CPU_ACTIVATIONS_Q8 = (
    ARITHMETIC
    | MATMUL
    | _ops(
        "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear maximum minimum "
        "__lt__ __le__ __gt__ __ge__ __eq__ __ne__ lt le gt ge eq ne pow __pow__ avg_pool1d avg_pool2d "
        "avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d normalize mean sum "
        "layer_norm group_norm instance_norm interpolate lstm gru"
    )
)
_CPU_ACTIVATIONS_SYMMETRIC = _ops("scaled_dot_product_attention")
# Ops a hardware config knows by a name (NNCF metatypes with hw_config_names);
# such an op absent from the config's lists runs in floating point.
_CPU_KNOWN_UNLISTED = _ops("gelu softmax")

Q8_A = (QConfig("symmetric", False), QConfig("asymmetric", False))
Q8_A_CH = (
    QConfig("symmetric", True),
    QConfig("symmetric", False),
    QConfig("asymmetric", True),
    QConfig("asymmetric", False),
)
Q8_A_SYM = (QConfig("symmetric", False),)

HW_DEVICES = {"ANY": "CPU", "CPU": "CPU", "GPU": "CPU"}
SUPPORTED_DEVICES = ("ANY", "CPU", "GPU", "TRIAL")


def hardware_of(target_device: str) -> str | None:
    """The hardware config used for ``target_device`` (``"CPU"``), or None for ``TRIAL``."""
    if target_device == "TRIAL":
        return None
    if target_device in HW_DEVICES:
        return HW_DEVICES[target_device]
    if target_device == "CPU_SPR":
        raise ConfigError("target_device: 'CPU_SPR' is not supported for PyTorch (as in NNCF); use 'CPU'")
    raise ConfigError(
        f"target_device: {target_device!r} is not supported by nncf_explore; use one of "
        f"{list(SUPPORTED_DEVICES)} ('TRIAL' allows any bit width and per-channel activations)"
    )


def default_trait(op: str) -> Trait:
    """The trait of ``op`` without a hardware config."""
    if op in _DEFAULT_QUANTIZABLE:
        return Trait.INPUTS_QUANTIZABLE
    if op in _DEFAULT_AGNOSTIC:
        return Trait.AGNOSTIC
    if op in CONCAT_OPS:
        return Trait.CONCAT
    if op in _EMBEDDING:
        return Trait.OUTPUT_AS_WEIGHTS
    return Trait.NON_QUANTIZABLE


def trait_of(node: Node, hardware: str | None) -> Trait:
    """The placement trait of ``node`` under ``hardware`` (None: no hardware config)."""
    if node.category is OpCategory.INPUT:
        return Trait.NON_QUANTIZABLE
    if hardware is None:
        return default_trait(node.op)
    if node.op in _CPU_ACTIVATIONS_Q8 or node.op in _CPU_ACTIVATIONS_SYMMETRIC:
        return Trait.INPUTS_QUANTIZABLE
    if node.op in _CPU_KNOWN_UNLISTED:
        return Trait.NON_QUANTIZABLE
    return default_trait(node.op)


def activation_qconfigs(node: Node, hardware: str | None) -> tuple[QConfig, ...]:
    """Allowed input quantizer configs of ``node``, most preferred first."""
    if hardware is None:
        return (QConfig("symmetric", False),)
    if node.op in _CPU_ACTIVATIONS_SYMMETRIC:
        return Q8_A_SYM
    if node.category is OpCategory.DEPTHWISE_CONVOLUTION:
        return Q8_A_CH
    return Q8_A


def allowed_bits(hardware: str | None) -> tuple[int, ...]:
    """Bit widths a hardware config accepts: only 8 on CPU; 2..8 without one."""
    return (8,) if hardware is not None else tuple(range(2, 9))


WEIGHT_OP_AXES: Mapping[str, int] = {
    **dict.fromkeys(["conv1d", "conv2d", "conv3d", "linear", "embedding", "embedding_bag"], 0),
    **dict.fromkeys(["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"], 1),
}
