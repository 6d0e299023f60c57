"""Quantization traits and hardware configs, as tables.

Each op gets a *trait* that steers placement: its inputs are quantized, it is
transparent to quantization (quantizers move up through it), it is a concat
(quantizers are cloned onto its inputs), its output is quantized like a weight
(embedding), or it runs in floating point.  With a hardware config (target
device ANY, CPU or GPU: NNCF's CPU config) the trait follows the device's op
list and each op gets the device's allowed quantizer configurations; with
``TRIAL`` there is no hardware config and any bit width is allowed.

Hardware configs: ``CPU`` (target devices ANY, CPU, CPU_SPR), ``GPU`` (the same
tables; it differs from CPU only in that the overflow fix is off) and ``NPU``
(NNCF's npu.json: 4- and 2-bit weights and 4-bit activations at some ops).
Which bit widths a quantizer may take is a function of the point: its kind,
the op it quantizes (weights) or the ops it feeds (activations), its mode and
granularity, and the hardware (:func:`weight_bits`, :func:`activation_bits`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nncf_explore.compression.quantization.spec import MIN_BITS, QuantizationMode
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
    """One allowed quantizer configuration of a hardware config (8-bit unless constrained)."""

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
# q8_w_sym and q8_w_asym, each per-channel or per-tensor (weights of every config listed here).
Q8_W = Q8_A_CH
# NPU's q4_tn (4-bit symmetric per-tensor activations), q4_w and q2_w (symmetric weights, either
# granularity).  Its q4_ch and q2_ch aliases are listed by no op, so they allow nothing here.
# The q16_* configs are left out on purpose: nncf_explore's quantizers and export are checked
# for 2..8 bits only (TRIAL_BITS), so 16-bit choices would be offers we cannot keep.
Q4_TN = (QConfig("symmetric", False, 4),)
Q4_Q2_W = tuple(QConfig("symmetric", per_channel, bits) for bits in (4, 2) for per_channel in (True, False))

# NPU ops whose inputs may also be 4-bit (npu.json lists q4_tn for them): convolutions (not
# depthwise), matmuls and the element-wise ops whose input scales npu.json unifies.
_NPU_ELTWISE_UNIFIED = ADD | SUB | MUL | _ops("maximum minimum")
_NPU_ACTIVATIONS_Q4 = LINEAR_OPS | _NPU_ELTWISE_UNIFIED
# Weighted NPU ops with 4- and 2-bit weights; embeddings keep 8-bit weights as on CPU.
_NPU_LOW_BIT_WEIGHT_OPS = LINEAR_OPS

# Highest width offered anywhere: the fake-quantize kernels, range init and export are verified
# for 2..8 bits.  The single definition of the "any width" range (config fields allow 1..32 as
# NNCF's schema does; QuantizerSpec's MIN_BITS..MAX_BITS is what its level arithmetic accepts).
TRIAL_MAX_BITS = 8
TRIAL_BITS = tuple(range(MIN_BITS, TRIAL_MAX_BITS + 1))

# target_device -> hardware config.  CPU_SPR follows NNCF's HW_CONFIG_TYPE_TARGET_DEVICE_MAP
# (CPU_SPR -> cpu.json); NNCF's legacy PyTorch builder refused it, but then NNCF's own example
# configs that name it would not load.  GPU has its own name because the overflow fix is CPU-only.
HW_DEVICES = {"ANY": "CPU", "CPU": "CPU", "CPU_SPR": "CPU", "GPU": "GPU", "NPU": "NPU"}
SUPPORTED_DEVICES = ("ANY", "CPU", "CPU_SPR", "GPU", "NPU", "TRIAL")


def hardware_of(target_device: str) -> str | None:
    """The hardware config used for ``target_device``, or None for ``TRIAL``.

    Examples:
        >>> hardware_of("CPU_SPR"), hardware_of("NPU"), hardware_of("TRIAL")
        ('CPU', 'NPU', None)
    """
    if target_device == "TRIAL":
        return None
    if target_device in HW_DEVICES:
        return HW_DEVICES[target_device]
    raise ConfigError(
        f"target_device: {target_device!r} is not supported by nncf_explore; use one of "
        f"{list(SUPPORTED_DEVICES)} ('TRIAL' allows any bit width and per-channel activations)"
    )


def uses_overflow_fix(hardware: str | None) -> bool:
    """Whether ``overflow_fix`` applies: NNCF uses half-range weights on the CPU config only."""
    return hardware == "CPU"


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
    """The placement trait of ``node`` under ``hardware`` (None: no hardware config).

    The CPU, GPU and NPU configs list the same ops, so they share one trait table.
    """
    if node.category is OpCategory.INPUT:
        return Trait.NON_QUANTIZABLE
    if hardware is None:
        return default_trait(node.op)
    if node.op in _CPU_ACTIVATIONS_Q8 or node.op in _CPU_ACTIVATIONS_SYMMETRIC:
        return Trait.INPUTS_QUANTIZABLE
    if node.op in _CPU_KNOWN_UNLISTED:
        return Trait.NON_QUANTIZABLE
    return default_trait(node.op)


def _hardware_activation_qconfigs(node: Node, hardware: str) -> tuple[QConfig, ...]:
    """Every input quantizer config ``hardware`` lists for ``node``, any bit width, preferred first."""
    if node.op in _CPU_ACTIVATIONS_SYMMETRIC:
        return Q8_A_SYM
    if node.category is OpCategory.DEPTHWISE_CONVOLUTION:
        return Q8_A_CH
    if hardware == "NPU" and node.op in _NPU_ACTIVATIONS_Q4:
        return Q8_A + Q4_TN
    return Q8_A


def activation_qconfigs(node: Node, hardware: str | None) -> tuple[QConfig, ...]:
    """Allowed 8-bit input quantizer configs of ``node``, most preferred first.

    Placement merges requests by mode and granularity at 8 bits (NNCF's first
    choice); the other widths a point may take come from :func:`activation_bits`.
    """
    if hardware is None:
        return (QConfig("symmetric", False),)
    return tuple(q for q in _hardware_activation_qconfigs(node, hardware) if q.bits == 8)


def uses_unified_input_scales(node: Node, hardware: str | None) -> bool:
    """Whether ``hardware`` gives all input quantizers of ``node`` one scale (npu.json's eltwise ops)."""
    return hardware == "NPU" and node.op in _NPU_ELTWISE_UNIFIED


def _weight_qconfigs(node: Node, hardware: str) -> tuple[QConfig, ...]:
    if hardware == "NPU" and node.op in _NPU_LOW_BIT_WEIGHT_OPS:
        return Q8_W + Q4_Q2_W
    return Q8_W


def weight_bits(node: Node, hardware: str | None, mode: QuantizationMode) -> tuple[int, ...]:
    """Bit widths a ``mode`` weight quantizer on ``node`` may take, ascending.

    Examples:
        >>> conv = Node(0, "N/conv2d_0", "conv2d", OpCategory.CONVOLUTION, "N", "c", "Conv2d")
        >>> weight_bits(conv, "NPU", "symmetric"), weight_bits(conv, "NPU", "asymmetric")
        ((2, 4, 8), (8,))
        >>> weight_bits(conv, "CPU", "symmetric"), weight_bits(conv, None, "asymmetric")
        ((8,), (2, 3, 4, 5, 6, 7, 8))
    """
    if hardware is None:
        return TRIAL_BITS
    return _distinct_bits(q for q in _weight_qconfigs(node, hardware) if q.mode == mode)


def activation_bits(
    fed_ops: Iterable[Node], hardware: str | None, mode: QuantizationMode, per_channel: bool
) -> tuple[int, ...]:
    """Bit widths an activation quantizer feeding ``fed_ops`` may take: those every fed op allows.

    Examples:
        >>> conv = Node(0, "N/conv2d_0", "conv2d", OpCategory.CONVOLUTION, "N", "c", "Conv2d")
        >>> dw = Node(1, "N/conv2d_1", "conv2d", OpCategory.DEPTHWISE_CONVOLUTION, "N", "d", "Conv2d")
        >>> activation_bits([conv], "NPU", "symmetric", False)
        (4, 8)
        >>> activation_bits([conv, dw], "NPU", "symmetric", False)
        (8,)
        >>> activation_bits([conv], "NPU", "asymmetric", False)
        (8,)
    """
    if hardware is None:
        return TRIAL_BITS
    per_op = [
        _distinct_bits(
            q
            for q in _hardware_activation_qconfigs(node, hardware)
            if q.mode == mode and q.per_channel == per_channel
        )
        for node in fed_ops
    ]
    return tuple(b for b in per_op[0] if all(b in bits for bits in per_op[1:])) if per_op else (8,)


def _distinct_bits(qconfigs: Iterable[QConfig]) -> tuple[int, ...]:
    return tuple(sorted({q.bits for q in qconfigs}))


def device_bits(hardware: str | None, kind: str) -> tuple[int, ...]:
    """Every width ``hardware`` allows a ``kind`` (weight or activation) quantizer somewhere.

    Used to check group settings before placement; each point is checked again on its own.

    Examples:
        >>> device_bits("NPU", "weight"), device_bits("NPU", "activation"), device_bits("GPU", "weight")
        ((2, 4, 8), (4, 8), (8,))
    """
    if hardware is None:
        return TRIAL_BITS
    npu = hardware == "NPU"
    qconfigs = Q8_W + (Q4_Q2_W if npu else ()) if kind == "weight" else Q8_A_CH + (Q4_TN if npu else ())
    return _distinct_bits(qconfigs)


WEIGHT_OP_AXES: Mapping[str, int] = {
    **dict.fromkeys(["conv1d", "conv2d", "conv3d", "linear", "embedding", "embedding_bag"], 0),
    **dict.fromkeys(["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"], 1),
}
