"""Layer attributes of traced ops: channels, kernel, stride, groups, features, weight shape.

They come from the call's own arguments, so a functional ``F.conv2d`` on a raw
parameter is described as fully as an ``nn.Conv2d``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nncf_explore.graph.leaves import Args, Kwargs

# Port of the weight among the flattened call arguments, per op.
WEIGHT_PORTS: Mapping[str, int] = {
    **dict.fromkeys(
        [
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
            "linear",
            "embedding",
            "embedding_bag",
        ],
        1,
    ),
    "batch_norm": 3,
    "layer_norm": 2,
    "group_norm": 2,
    "instance_norm": 3,
}
# Ops whose weight may be any operand (``x @ self.w``) or a list (RNN weights).
_PARAM_ANYWHERE_OPS = frozenset(
    [
        "matmul",
        "__matmul__",
        "__rmatmul__",
        "bmm",
        "mm",
        "addmm",
        "baddbmm",
        "einsum",
        "lstm",
        "gru",
        "rnn_tanh",
        "rnn_relu",
    ]
)
_CONV_ARG_ORDER = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T_ARG_ORDER = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")


def _arg(args: Args, kwargs: Kwargs, order: tuple[str, ...], name: str, default: Any) -> Any:
    index = order.index(name)
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _as_tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, str):
        return (value,)  # type: ignore[return-value]  # padding="same"
    return tuple(int(v) for v in value)


def _conv(op: str, args: Args, kwargs: Kwargs) -> dict[str, Any]:
    transposed = op.startswith("conv_transpose")
    order = _CONV_T_ARG_ORDER if transposed else _CONV_ARG_ORDER
    weight: torch.Tensor = _arg(args, kwargs, order, "weight", None)
    spatial = weight.dim() - 2
    groups = int(_arg(args, kwargs, order, "groups", 1))
    if transposed:
        in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
    else:
        in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
    return {
        "in_channels": int(in_channels),
        "out_channels": int(out_channels),
        "kernel_size": tuple(int(k) for k in weight.shape[2:]),
        "stride": _as_tuple(_arg(args, kwargs, order, "stride", 1), spatial),
        "padding": _as_tuple(_arg(args, kwargs, order, "padding", 0), spatial),
        "dilation": _as_tuple(_arg(args, kwargs, order, "dilation", 1), spatial),
        "groups": groups,
        "transpose": transposed,
        "has_bias": _arg(args, kwargs, order, "bias", None) is not None,
    }


def _linear(args: Args, kwargs: Kwargs) -> dict[str, Any]:
    weight: torch.Tensor = args[1] if len(args) > 1 else kwargs["weight"]
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    return {
        "in_features": int(weight.shape[-1]),
        "out_features": int(weight.shape[0]),
        "has_bias": bias is not None,
    }


def _embedding(args: Args, kwargs: Kwargs) -> dict[str, Any]:
    weight: torch.Tensor = args[1] if len(args) > 1 else kwargs["weight"]
    return {"num_embeddings": int(weight.shape[0]), "embedding_dim": int(weight.shape[1]), "has_bias": False}


def layer_attributes(
    op: str, args: Args, kwargs: Kwargs, leaves: list[Any], params: Mapping[int, str]
) -> dict[str, Any]:
    """Attributes of one call; ``params`` maps input ports to parameter names.

    ``has_weight`` is set when a parameter sits at the op's weight port (for
    ``matmul``-like ops, at any port), and ``weight_port``/``weight_shape`` with it.
    """
    attrs: dict[str, Any] = {}
    try:
        if op.startswith("conv"):
            attrs.update(_conv(op, args, kwargs))
        elif op == "linear":
            attrs.update(_linear(args, kwargs))
        elif op.startswith("embedding"):
            attrs.update(_embedding(args, kwargs))
        elif op in ("cat", "concat", "stack"):
            attrs["axis"] = int(args[1] if len(args) > 1 else kwargs.get("dim", 0))
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        attrs = {}  # an unusual call form: keep the node, drop the attributes
    port = WEIGHT_PORTS.get(op)
    if port is None and params and op in _PARAM_ANYWHERE_OPS:
        port = min(params)
    if port is not None and port in params:
        weight = leaves[port]
        attrs.update(has_weight=True, weight_port=port, weight_shape=tuple(int(s) for s in weight.shape))
    else:
        attrs.setdefault("has_weight", False)
    return attrs
