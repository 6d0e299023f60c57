"""Operator tables: how a torch call is named and which category it falls in.

One table maps NNCF operator names to a coarse :class:`OpCategory`; a few
rules turn the function torch hands to ``__torch_function__`` into the name
NNCF's patching tracer would have recorded (``x += y`` is ``__iadd__``,
``F.relu(x, inplace=True)`` is ``relu_``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from nncf_explore.graph.opcodes import operator_at


class OpCategory(str, enum.Enum):
    """Coarse operator kinds; placement rules and widget colours key on these."""

    INPUT = "input"
    OUTPUT = "output"
    CONVOLUTION = "convolution"
    DEPTHWISE_CONVOLUTION = "depthwise_convolution"
    LINEAR = "linear"
    MATMUL = "matmul"
    ELEMENTWISE = "elementwise"
    CONCAT = "concat"
    ACTIVATION = "activation"
    POOLING = "pooling"
    NORMALIZATION = "normalization"
    RESHAPE = "reshape"  # reshape/transpose/indexing and other quantization-agnostic ops
    EMBEDDING = "embedding"
    ATTENTION = "attention"
    RECURRENT = "recurrent"
    REDUCTION = "reduction"
    OTHER = "other"


def _table(category: OpCategory, names: str) -> dict[str, OpCategory]:
    return dict.fromkeys(names.split(), category)


OP_CATEGORIES: Mapping[str, OpCategory] = {
    **_table(OpCategory.INPUT, "nncf_model_input"),
    **_table(OpCategory.OUTPUT, "nncf_model_output"),
    **_table(
        OpCategory.CONVOLUTION,
        "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d",
    ),
    **_table(OpCategory.LINEAR, "linear"),
    **_table(OpCategory.MATMUL, "matmul __matmul__ __rmatmul__ bmm mm addmm baddbmm einsum"),
    **_table(
        OpCategory.ELEMENTWISE,
        "add add_ __add__ __iadd__ __radd__ sub sub_ __sub__ __isub__ __rsub__ rsub "
        "mul mul_ __mul__ __imul__ __rmul__ div div_ __truediv__ __itruediv__ __rtruediv__ "
        "__floordiv__ __mod__ pow __pow__ __rpow__ __neg__ neg maximum minimum",
    ),
    **_table(OpCategory.CONCAT, "cat concat concatenate stack"),
    **_table(
        OpCategory.ACTIVATION,
        "relu relu_ relu6 hardtanh hardtanh_ gelu silu sigmoid tanh softmax log_softmax elu elu_ "
        "leaky_relu leaky_relu_ prelu hardswish hardsigmoid selu celu mish softplus exp threshold",
    ),
    **_table(
        OpCategory.POOLING,
        "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d "
        "max_pool1d max_pool2d max_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d",
    ),
    **_table(
        OpCategory.NORMALIZATION,
        "batch_norm layer_norm group_norm instance_norm rms_norm normalize local_response_norm",
    ),
    **_table(
        OpCategory.RESHAPE,
        "reshape view view_as flatten unflatten squeeze unsqueeze permute transpose transpose_ t "
        "__getitem__ index_select gather select narrow split chunk unbind expand expand_as repeat "
        "repeat_interleave contiguous clone detach to type_as float dropout dropout1d dropout2d "
        "feature_dropout pad masked_fill masked_fill_ roll flip pixel_shuffle pixel_unshuffle "
        "interpolate upsample tile where",
    ),
    **_table(OpCategory.EMBEDDING, "embedding embedding_bag"),
    **_table(OpCategory.ATTENTION, "scaled_dot_product_attention"),
    **_table(OpCategory.RECURRENT, "lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell"),
    **_table(OpCategory.REDUCTION, "mean sum amax amin max min var std norm prod"),
}

# Calls that read metadata or steer Python control flow rather than compute
# tensors; NNCF does not record them either.
IGNORED_OPS = frozenset(
    [
        "__get__",
        "__set__",
        "dim",
        "size",
        "numel",
        "item",
        "__bool__",
        "__len__",
        "__format__",
        "__repr__",
        "__index__",
        "__int__",
        "__float__",
        "__hash__",
        "__iter__",
        "__contains__",
        "tolist",
        "data_ptr",
        "stride",
        "is_contiguous",
        "element_size",
        "get_device",
        "is_floating_point",
        "is_complex",
        "_assert",
        "__array__",
        "__reduce_ex__",
        "__deepcopy__",
        "storage_offset",
        "untyped_storage",
        "nelement",
        "ndimension",
        "has_names",
        "requires_grad_",
        "retain_grad",
        "_set_grad_enabled",
        "_parse_to",
        "_has_compatible_shallow_copy_type",
        "numpy",
        "cpu",
        "cuda",
        "__setstate__",
        "__dlpack__",
        "__dlpack_device__",
        "equal",
        "allclose",
        "isclose",
    ]
)

# Two kinds of ignored calls matter to a recording of a forward (compression/recording.py).
VALUE_READS = frozenset(
    [
        "item",
        "__bool__",
        "tolist",
        "numpy",
        "__int__",
        "__float__",
        "__index__",
        "__array__",
        "__format__",
        "__repr__",
        "data_ptr",
        "untyped_storage",
        "equal",
        "allclose",
        "__dlpack__",
    ]
)
"""Ignored calls that hand tensor values (or addresses) to Python."""
METADATA_READS = frozenset(
    [
        "dim",
        "size",
        "numel",
        "stride",
        "is_contiguous",
        "element_size",
        "get_device",
        "is_floating_point",
        "is_complex",
        "nelement",
        "ndimension",
        "has_names",
        "storage_offset",
        "__len__",
        "__get__",
    ]
)
"""Ignored calls that read tensor metadata (``__get__``: properties such as ``shape``, and ``x.T``)."""

# ``x + y`` and ``x.add(y)`` both reach ``__torch_function__`` as ``Tensor.add``; NNCF recorded
# the first as ``__add__``.  For these functions the Python operator at the call site, if any,
# names the op (``floor_divide_`` is what torch hands for ``//=``, which NNCF records as
# ``__ifloordiv__``).
_OPERATOR_METHODS = frozenset(
    [
        "add",
        "add_",
        "sub",
        "sub_",
        "mul",
        "mul_",
        "div",
        "div_",
        "matmul",
        "floor_divide",
        "floor_divide_",
        "remainder",
        "pow",
        "pow_",
        "lt",
        "le",
        "eq",
        "ne",
        "gt",
        "ge",
        "neg",
    ]
)
CALL_SITE_OPS = _OPERATOR_METHODS | {"relu"}
"""Functions whose op name depends on the call: the Python operator at the call site, or ``inplace=``."""
# Tensor has no ``__imatmul__``, so Python runs ``x @= y`` as ``x = x @ y``: NNCF records
# ``__matmul__``.
_NNCF_OPERATOR_NAMES: Mapping[str, str] = {"__imatmul__": "__matmul__"}


def _operator_name(frame: FrameType | None) -> str | None:
    """The NNCF name of the Python operator executing in ``frame``, if any."""
    if frame is None:
        return None
    name = operator_at(frame.f_code, frame.f_lasti)
    return _NNCF_OPERATOR_NAMES.get(name, name) if name is not None else None


def op_name(func: Callable[..., Any], kwargs: Mapping[str, Any], caller: FrameType | None) -> str:
    """The NNCF operator name of a call seen by ``__torch_function__``.

    Args:
        func: The function torch dispatched (``torch.conv2d``, ``Tensor.add_``).
        kwargs: Its keyword arguments.
        caller: The frame that issued the call, used to recognise Python
            operators such as ``+=``; may be None.
    """
    name = getattr(func, "__name__", None) or type(func).__name__
    if name in _OPERATOR_METHODS:
        return _operator_name(caller) or name
    if name == "relu" and kwargs.get("inplace"):
        return "relu_"
    return name


def category_of(op: str, attrs: Mapping[str, Any]) -> OpCategory:
    """The category of ``op``; convolutions whose groups equal their input channels are depthwise."""
    category = OP_CATEGORIES.get(op, OpCategory.OTHER)
    if category is OpCategory.CONVOLUTION and not op.startswith("conv_transpose"):
        groups = int(attrs.get("groups", 1))
        if groups > 1 and groups == attrs.get("in_channels"):
            return OpCategory.DEPTHWISE_CONVOLUTION
    return category
