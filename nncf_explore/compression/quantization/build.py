"""``config + graph -> QuantizerSetup``: placement, then per-node overrides, then validation.

Precedence, lowest first: the group settings (``weights``/``activations``,
with the preset's mode), then ``scope_overrides``, then
``initializer.precision.bitwidth_per_scope``.  Patterns are node names,
quantizer ids (``<node>|WEIGHT``, ``<node>|OUTPUT``, ``<node>|INPUT<port>``) or
``{re}`` regexes; NNCF's ``NNCFConv2d``-style names match our ``Conv2d`` ones.
Scope entries are checked against the graph in :mod:`.scope_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nncf_explore.compression.quantization.placement import place_activation_quantizers
from nncf_explore.compression.quantization.point_constraints import check_point
from nncf_explore.compression.quantization.scope_checks import check_empty_target_scopes, validate_scopes
from nncf_explore.compression.quantization.settings import QuantizationSettings, resolve_settings
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.weights import place_weight_quantizers
from nncf_explore.errors import ConfigError, did_you_mean
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.scope import matches_any, matches_pattern, normalize_node_name


def _point_names(point: QuantizationPoint) -> tuple[str, ...]:
    return (point.id, point.target_node, *point.directly_quantized_ops)


def _override(point: QuantizationPoint, overrides: Mapping[str, Mapping[str, Any]]) -> QuantizationPoint:
    for pattern, values in overrides.items():
        if not any(matches_pattern(pattern, name) for name in _point_names(point)):
            continue
        changes = {k: values[k] for k in ("bits", "mode", "signed", "per_channel") if k in values}
        point = point.respec(**changes)
    return point


def _apply_bitwidths(
    points: list[QuantizationPoint], settings: QuantizationSettings
) -> list[QuantizationPoint]:
    for bits, scope in settings.bitwidth_per_scope:
        wanted = normalize_node_name(scope)
        index = next((i for i, p in enumerate(points) if wanted in normalize_node_name(p.id)), None)
        if index is None:
            raise ConfigError(
                f"compression.initializer.precision.bitwidth_per_scope: [{bits}, {scope!r}] matches no "
                f"quantizer{did_you_mean(scope, [p.id for p in points])}. Entries are quantizer ids such "
                "as '<node>|WEIGHT' or '<node>|OUTPUT'; the Explorer lists them"
            )
        group = points[index].unified_group
        for i, p in enumerate(points):  # one quantizer: a width given to one member is the group's
            if i == index or (group is not None and p.unified_group == group):
                points[i] = p.respec(bits=bits)
    return points


def _unify_groups(points: list[QuantizationPoint]) -> list[QuantizationPoint]:
    # Renumber groups densely; a "group" of one is no group; members share the first member's spec.
    members: dict[int, list[int]] = {}
    for i, p in enumerate(points):
        if p.unified_group is not None:
            members.setdefault(p.unified_group, []).append(i)
    new_ids = {g: n for n, g in enumerate(g for g, idx in members.items() if len(idx) > 1)}
    out = list(points)
    for group, indices in members.items():
        first = points[indices[0]]
        for i in indices:
            if group in new_ids:
                out[i] = points[i].replace(unified_group=new_ids[group], spec=first.spec)
            else:
                out[i] = points[i].replace(unified_group=None)
    return out


def build_quantizer_setup(
    graph: Graph, config: Mapping[str, Any], section: Mapping[str, Any] | None = None
) -> QuantizerSetup:
    """The quantizer setup the ``quantization`` section of ``config`` places on ``graph``.

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> g = trace_model(torch.nn.Sequential(torch.nn.Linear(4, 4)), {"sample_size": [1, 4]})
        >>> setup = build_quantizer_setup(g, {"compression": {"algorithm": "quantization"}})
        >>> [p.id for p in setup]
        ['Sequential/Linear[0]/linear_0|WEIGHT', '/nncf_model_input_0|OUTPUT']
    """
    if section is None:
        section = config.get("compression", {})
        if isinstance(section, list):
            section = next((s for s in section if s.get("algorithm") == "quantization"), {})
    settings = resolve_settings(config, section)
    weights = place_weight_quantizers(graph, settings)
    activations = place_activation_quantizers(graph, settings)
    validate_scopes(graph, weights + activations, config, section, settings)
    # Our extension: an entry naming a quantizer id ("<node>|OUTPUT") removes just that quantizer.
    by_id = [entry for entry in settings.activations.ignored_scopes if "|" in entry]
    activations = [p for p in activations if not matches_any(by_id, p.id)]
    weights = [_override(p, settings.weight_overrides) for p in weights]
    activations = [_override(p, settings.activation_overrides) for p in activations]
    points = _unify_groups(_apply_bitwidths(weights + activations, settings))
    for p in points:
        check_point(p, graph, settings)  # per point: on NPU the widths depend on the op
    check_empty_target_scopes(points, config, section, settings)
    return QuantizerSetup(tuple(points), settings.target_device)
