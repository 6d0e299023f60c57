"""``config + graph -> QuantizerSetup``: placement, then per-node overrides, then validation.

Precedence, lowest first: the group settings (``weights``/``activations``,
with the preset's mode), then ``scope_overrides``, then
``initializer.precision.bitwidth_per_scope``.  Patterns are node names,
quantizer ids (``<node>|WEIGHT``, ``<node>|OUTPUT``, ``<node>|INPUT<port>``) or
``{re}`` regexes; NNCF's ``NNCFConv2d``-style names match our ``Conv2d`` ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nncf_explore.compression.quantization.placement import place_activation_quantizers
from nncf_explore.compression.quantization.settings import QuantizationSettings, check_bits, resolve_settings
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
        points[index] = points[index].respec(bits=bits)
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


def _listed(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _scope_entries(
    config: Mapping[str, Any], section: Mapping[str, Any]
) -> Iterable[tuple[str, str, bool, bool]]:
    """``(where, entry, is_top_level, validate)`` for every scope entry of the config."""
    section_validates = section.get("validate_scopes", True) is not False
    for key in ("ignored_scopes", "target_scopes"):
        for entry in _listed(config.get(key)):
            yield key, entry, True, section_validates
        for entry in _listed(section.get(key)):
            yield f"compression.{key}", entry, False, section_validates
        for group in ("weights", "activations"):
            validates = section.get(group, {}).get("validate_scopes", section_validates) is not False
            for entry in _listed(section.get(group, {}).get(key)):
                yield f"compression.{group}.{key}", entry, False, validates
    for group in ("weights", "activations"):
        for entry in section.get("scope_overrides", {}).get(group, {}):
            yield f"compression.scope_overrides.{group}", entry, False, section_validates


def validate_scopes(
    graph: Graph, points: list[QuantizationPoint], config: Mapping[str, Any], section: Mapping[str, Any]
) -> None:
    """NNCF's ``validate_scopes``: every scope entry must match something.

    Top-level entries may name a node or a module scope (``Net/Conv2d[conv1]``),
    as NNCF matched them against modules; algorithm-level entries name nodes or
    quantizer ids, which is what placement matches them against.

    Raises:
        ConfigError: Naming the entry, where it is, and the closest names.
    """
    names = [n.name for n in graph.nodes] + [p.id for p in points]
    scopes = sorted({n.scope for n in graph.nodes})
    for where, entry, top_level, validate in _scope_entries(config, section):
        if not validate:
            continue
        candidates = names + scopes if top_level else names
        if any(matches_pattern(entry, name) for name in candidates):
            continue
        hint = did_you_mean(normalize_node_name(entry), candidates) or "."
        module_note = (
            ""
            if top_level or not any(matches_pattern(entry, s) for s in scopes)
            else f" {entry!r} is a module scope: here entries name nodes, so use '{{re}}{entry}/' for the "
            "module's ops, or move it to the top-level ignored_scopes (weights only, as in NNCF)."
        )
        raise ConfigError(
            f"{where}: no match has been found among the model operations for {entry!r}{hint}{module_note} "
            "Names follow NNCF's scheme '{scope}/{op}_{call_order}' (see original_graph.dot or the "
            "Explorer); prefix an entry with '{re}' for a regex, or set validate_scopes: false"
        )


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
    validate_scopes(graph, weights + activations, config, section)
    # Our extension: an entry naming a quantizer id ("<node>|OUTPUT") removes just that quantizer.
    by_id = [entry for entry in settings.activations.ignored_scopes if "|" in entry]
    activations = [p for p in activations if not matches_any(by_id, p.id)]
    weights = [_override(p, settings.weight_overrides) for p in weights]
    activations = [_override(p, settings.activation_overrides) for p in activations]
    points = _unify_groups(_apply_bitwidths(weights + activations, settings))
    for p in points:
        check_bits(p.spec.bits, settings, f"quantizer {p.id!r}")
    return QuantizerSetup(tuple(points), settings.target_device)
