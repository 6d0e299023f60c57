"""Plain-op versions of composite torch functions, so their insides are traced and quantized.

``F.multi_head_attention_forward`` would otherwise reach the tracker as one
opaque op (and ``nn.MultiheadAttention`` as a fused kernel in eval mode), which
is why NNCF quantizes no attention projection.  While an :class:`OpTracker` is
active, the calls listed in :data:`DECOMPOSITIONS` run these implementations
with the tracker still active, in tracing and in compressed forwards alike, so
the graph and the run-time path are the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def _float_mask(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    # Boolean masks mark positions to drop; additive float masks are used as they are.
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros_like(mask, dtype=dtype).masked_fill(mask, float("-inf"))


def _project(
    query: Tensor, key: Tensor, value: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    # Every projection takes the packed ``in_proj_weight`` parameter itself, so
    # the graph records it as the op's weight and one weight quantizer serves all
    # three; cross-attention slices the outputs instead of the weight.
    embed = query.shape[-1]
    if query is key and key is value:
        q, k, v = F.linear(query, weight, bias).chunk(3, dim=-1)
        return q, k, v
    q = F.linear(query, weight, bias)[..., :embed]
    if key is value:
        k, v = F.linear(key, weight, bias)[..., embed:].chunk(2, dim=-1)
        return q, k, v
    k = F.linear(key, weight, bias)[..., embed : 2 * embed]
    v = F.linear(value, weight, bias)[..., 2 * embed :]
    return q, k, v


def _separate_projections(
    query: Tensor, key: Tensor, value: Tensor, weights: tuple[Tensor, Tensor, Tensor], bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    biases = bias.chunk(3) if bias is not None else (None, None, None)
    q = F.linear(query, weights[0], biases[0])
    k = F.linear(key, weights[1], biases[1])
    v = F.linear(value, weights[2], biases[2])
    return q, k, v


def _combined_mask(
    attn_mask: Tensor | None, key_padding_mask: Tensor | None, bsz: int, heads: int, dtype: torch.dtype
) -> Tensor | None:
    mask = _float_mask(attn_mask, dtype)
    if mask is not None and mask.dim() == 2:
        mask = mask.unsqueeze(0)
    padding = _float_mask(key_padding_mask, dtype)
    if padding is not None:
        src = padding.shape[-1]
        padding = padding.view(bsz, 1, 1, src).expand(-1, heads, -1, -1).reshape(bsz * heads, 1, src)
        mask = padding if mask is None else mask + padding
    return mask


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """``F.multi_head_attention_forward`` written with traceable ops (same signature and result)."""
    if (
        bias_k is not None
        or add_zero_attn
        or static_k is not None
        or static_v is not None
        or query.dim() != 3
    ):
        warnings.warn(
            "nncf_explore traces nn.MultiheadAttention as one op when it uses add_bias_kv, add_zero_attn, "
            "static keys or unbatched inputs; its projections are not quantized",
            stacklevel=3,
        )
        with torch.overrides._pop_mode_temporarily():
            return F.multi_head_attention_forward(
                query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k,
                bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training=training,
                key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
                use_separate_proj_weight=use_separate_proj_weight, q_proj_weight=q_proj_weight,
                k_proj_weight=k_proj_weight, v_proj_weight=v_proj_weight, static_k=static_k,
                static_v=static_v, average_attn_weights=average_attn_weights, is_causal=is_causal,
            )  # fmt: skip
    tgt_len, bsz, embed = query.shape
    head_dim = embed // num_heads
    if use_separate_proj_weight:
        assert q_proj_weight is not None and k_proj_weight is not None and v_proj_weight is not None
        q, k, v = _separate_projections(
            query, key, value, (q_proj_weight, k_proj_weight, v_proj_weight), in_proj_bias
        )
    else:
        assert in_proj_weight is not None
        q, k, v = _project(query, key, value, in_proj_weight, in_proj_bias)
    causal_only = is_causal and key_padding_mask is None and not need_weights
    mask = None if causal_only else _combined_mask(attn_mask, key_padding_mask, bsz, num_heads, query.dtype)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    dropout = dropout_p if training else 0.0
    if need_weights:
        scores = torch.bmm(q * (1.0 / head_dim**0.5), k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        weights = F.dropout(torch.softmax(scores, dim=-1), p=dropout)
        out = torch.bmm(weights, v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed)
        out = F.linear(out, out_proj_weight, out_proj_bias).view(tgt_len, bsz, embed)
        weights = weights.view(bsz, num_heads, tgt_len, -1)
        return out, weights.mean(dim=1) if average_attn_weights else weights
    if mask is not None:
        mask = mask.view(bsz, num_heads, -1, mask.shape[-1]) if mask.shape[0] > 1 else mask.unsqueeze(0)
    q, k, v = (t.view(bsz, num_heads, -1, head_dim) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, mask, dropout, is_causal=causal_only)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed)
    out = F.linear(out, out_proj_weight, out_proj_bias).view(tgt_len, bsz, embed)
    return out, None


DECOMPOSITIONS: dict[Callable[..., Any], Callable[..., Any]] = {
    F.multi_head_attention_forward: multi_head_attention_forward,
}
