"""Scope entries checked against the graph: each must match something, of the kind its field selects.

Three mistakes validate as JSON but change nothing, or remove everything, so they are reported here:

- an entry that matches nothing (NNCF's ``validate_scopes``; off with ``validate_scopes: false``);
- an entry that matches only quantizers of the other kind, such as ``<node>|OUTPUT`` in
  ``weights.ignored_scopes`` or ``<node>|WEIGHT`` as a ``scope_overrides.activations`` key: it can
  never act, whatever the model, so it is an error even with ``validate_scopes: false``;
- an empty ``target_scopes`` list, which selects no node: an error when the section then places no
  quantizer at all, a warning naming "0 weight/activation quantizers" when one kind remains (a user
  may mean it, but ``ignored_scopes: ["{re}.*"]`` says it plainly).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nncf_explore.compression.quantization.placement import place_activation_quantizers
from nncf_explore.compression.quantization.settings import QuantizationSettings
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.config.spec import join_path
from nncf_explore.errors import ConfigError, ConfigWarning, did_you_mean
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.scope import matches_pattern, normalize_node_name

Applies = Literal["module", "both", "weight", "activation"]


@dataclass(frozen=True)
class ScopeEntry:
    """One scope string of the config, with where it is and what it selects."""

    path: str  # JSON path of the entry itself, e.g. "compression[0].weights.ignored_scopes[1]"
    field: str  # JSON path of its field, e.g. "compression[0].weights.ignored_scopes"
    key: Literal["ignored_scopes", "target_scopes", "scope_overrides"]
    entry: str
    applies: Applies
    validate: bool


def section_path(config: Mapping[str, Any], section: Mapping[str, Any]) -> str:
    """The JSON path of ``section`` in ``config``: ``compression`` or ``compression[i]``.

    Examples:
        >>> q = {"algorithm": "quantization"}
        >>> section_path({"compression": [{"algorithm": "magnitude_sparsity"}, q]}, q)
        'compression[1]'
    """
    compression = config.get("compression")
    if isinstance(compression, list):
        for i, candidate in enumerate(compression):
            if candidate is section:
                return f"compression[{i}]"
        for i, candidate in enumerate(compression):
            if candidate == section:
                return f"compression[{i}]"
    return "compression"


def _listed(field: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield field, value
    elif value is not None:
        yield from ((join_path(field, i), entry) for i, entry in enumerate(value))


def scope_entries(config: Mapping[str, Any], section: Mapping[str, Any]) -> Iterator[ScopeEntry]:
    """Every scope entry of the config that steers quantization, in config order."""
    prefix = section_path(config, section)
    section_validates = section.get("validate_scopes", True) is not False
    groups: tuple[tuple[str, Applies], ...] = (("weights", "weight"), ("activations", "activation"))
    for key in ("ignored_scopes", "target_scopes"):
        for path, entry in _listed(key, config.get(key)):
            yield ScopeEntry(path, key, key, entry, "module", section_validates)
        field = f"{prefix}.{key}"
        for path, entry in _listed(field, section.get(key)):
            yield ScopeEntry(path, field, key, entry, "both", section_validates)
        for group, applies in groups:
            values = section.get(group, {})
            validates = values.get("validate_scopes", section_validates) is not False
            field = f"{prefix}.{group}.{key}"
            for path, entry in _listed(field, values.get(key)):
                yield ScopeEntry(path, field, key, entry, applies, validates)
    for group, applies in groups:
        field = f"{prefix}.scope_overrides.{group}"
        for entry in section.get("scope_overrides", {}).get(group, {}):
            yield ScopeEntry(
                join_path(field, entry), field, "scope_overrides", entry, applies, section_validates
            )


@dataclass(frozen=True)
class _Names:
    """What entries can match: node names, module scopes, and quantizer ids of each kind."""

    nodes: list[str]
    scopes: list[str]
    weight_ids: list[str]
    activation_ids: list[str]

    def effective(self, entry: ScopeEntry) -> list[str]:
        """The names the placement code really matches this entry's field against."""
        if entry.applies == "module":
            return self.nodes + self.scopes + self.weight_ids + self.activation_ids
        if entry.applies == "both":
            # Activation target_scopes match node names only; weight ones also match "<node>|WEIGHT".
            ids = self.weight_ids if entry.key == "target_scopes" else self.weight_ids + self.activation_ids
            return self.nodes + ids
        if entry.applies == "weight":
            return self.nodes + self.weight_ids
        return self.nodes + (self.activation_ids if entry.key != "target_scopes" else [])


def _names(graph: Graph, points: list[QuantizationPoint]) -> _Names:
    # "<node>|WEIGHT" in weights.ignored_scopes matches the quantizer it removed: weight ids come
    # from the graph, not from the placed points.
    weight_ids = {f"{n.name}|WEIGHT" for n in graph.nodes if n.weight is not None}
    return _Names(
        [n.name for n in graph.nodes],
        sorted({n.scope for n in graph.nodes}),
        sorted(weight_ids | {p.id for p in points if p.kind == "weight"}),
        [p.id for p in points if p.kind == "activation"],
    )


def _with_unplaced(names: _Names, graph: Graph, settings: QuantizationSettings) -> _Names:
    """``names`` plus the activation ids the scopes removed (placed again without activation scopes).

    Only needed when an entry matched nothing placed, so the second placement is rarely run.
    """
    group = dataclasses.replace(settings.activations, ignored_scopes=(), target_scopes=None)
    unscoped = place_activation_quantizers(graph, dataclasses.replace(settings, activations=group))
    ids = sorted({*names.activation_ids, *(p.id for p in unscoped)})
    return dataclasses.replace(names, activation_ids=ids)


def validate_scopes(
    graph: Graph,
    points: list[QuantizationPoint],
    config: Mapping[str, Any],
    section: Mapping[str, Any],
    settings: QuantizationSettings,
) -> None:
    """NNCF's ``validate_scopes``, plus entries of the wrong quantizer kind.

    Top-level entries may name a node or a module scope (``Net/Conv2d[conv1]``), as NNCF matched them
    against modules; algorithm-level entries name nodes or quantizer ids, which is what placement
    matches them against.

    Raises:
        ConfigError: Naming the entry's JSON path, the entry, and the fix.
    """
    placed: _Names | None = None
    names: _Names | None = None
    for entry in scope_entries(config, section):
        placed = placed or _names(graph, points)
        if _matches(entry.entry, placed.effective(entry)):
            continue
        names = names or _with_unplaced(placed, graph, settings)
        if _matches(entry.entry, names.effective(entry)):
            continue
        other = _other_kind_match(entry, names)
        if other is not None:
            raise ConfigError(_wrong_kind_message(entry, other, names))
        if entry.validate:
            raise ConfigError(_no_match_message(entry, names))


def _matches(pattern: str, candidates: list[str]) -> bool:
    return any(matches_pattern(pattern, name) for name in candidates)


def _first_match(pattern: str, candidates: list[str]) -> str | None:
    return next((name for name in candidates if matches_pattern(pattern, name)), None)


def _other_kind_match(entry: ScopeEntry, names: _Names) -> tuple[str, str] | None:
    """``(kind, example id)`` if the entry matches only quantizer ids its field does not select."""
    if entry.applies == "module":
        return None
    for kind, ids in (("weight", names.weight_ids), ("activation", names.activation_ids)):
        found = _first_match(entry.entry, ids)
        if found is not None:
            return kind, found
    return None


_SELECTS = {
    ("weight", "scope_overrides"): "applies to weight quantizers only",
    ("activation", "scope_overrides"): "applies to activation quantizers only",
    ("weight", "ignored_scopes"): "selects weight quantizers only (by node name or '<node>|WEIGHT')",
    ("weight", "target_scopes"): "selects weight quantizers only (by node name or '<node>|WEIGHT')",
    ("activation", "ignored_scopes"): "selects activation quantizers only (by node name or their id)",
    ("activation", "target_scopes"): "selects activation quantizers by node name only",
    ("both", "target_scopes"): "selects activation quantizers by node name only",
}


def _wrong_kind_message(entry: ScopeEntry, other: tuple[str, str], names: _Names) -> str:
    kind, example = other
    exact = entry.entry == example
    article = "an" if kind == "activation" else "a"
    what = (
        f"{entry.entry!r} is {article} {kind} quantizer id"
        if exact
        else f"{entry.entry!r} matches only {kind} quantizer ids (such as {example!r})"
    )
    selects = _SELECTS[(entry.applies, entry.key)]
    fix = _fix(entry, kind, example.split("|")[0], names if exact else None)
    return f"{entry.path}: {what}, but {entry.field} {selects}, so this entry does nothing. {fix}"


def _fix(entry: ScopeEntry, kind: str, node: str, names: _Names | None) -> str:
    if entry.applies in (kind, "both"):  # the right kind, but this field matches node names only
        return f"Write the node name {node!r} instead."
    prefix = entry.field.rsplit(".", 2)[0]  # "compression[0]" of "compression[0].weights.ignored_scopes"
    group = "weights" if kind == "weight" else "activations"
    if entry.key == "scope_overrides":
        return f"Move it to {prefix}.scope_overrides.{group}."
    move = f"Move it to {prefix}.{group}.{entry.key}"
    weight_id = f"{node}|WEIGHT"
    if entry.applies == "weight" and names is not None and weight_id in names.weight_ids:
        return f"{move}, or write {weight_id!r} for the weight quantizer of {node!r}."
    return move + "."


def _no_match_message(entry: ScopeEntry, names: _Names) -> str:
    candidates = names.effective(entry)
    hint = did_you_mean(normalize_node_name(entry.entry), candidates) or "."
    module_note = (
        ""
        if entry.applies == "module" or not _matches(entry.entry, names.scopes)
        else f" {entry.entry!r} is a module scope: here entries name nodes, so use "
        f"'{{re}}{entry.entry}/' for the module's ops, or move it to the top-level ignored_scopes "
        "(weights only, as in NNCF)."
    )
    return (
        f"{entry.path}: no match has been found among the model operations for {entry.entry!r}{hint}"
        f"{module_note} Names follow NNCF's scheme '{{scope}}/{{op}}_{{call_order}}' (see "
        "original_graph.dot or the Explorer); prefix an entry with '{re}' for a regex, or set "
        "validate_scopes: false"
    )


def check_empty_target_scopes(
    points: list[QuantizationPoint],
    config: Mapping[str, Any],
    section: Mapping[str, Any],
    settings: QuantizationSettings,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Refuse or warn about ``target_scopes: []``, which selects no node.

    Raises:
        ConfigError: The empty list leaves the section with 0 quantizers.
    """
    prefix = section_path(config, section)
    emptied: dict[str, set[str]] = {}
    if settings.global_target_scopes == ():
        emptied.setdefault("target_scopes", set()).add("weight")
    for group, kind in (("weights", "weight"), ("activations", "activation")):
        if getattr(settings, group).target_scopes == ():
            where = group + "." if "target_scopes" in section.get(group, {}) else ""
            emptied.setdefault(f"{prefix}.{where}target_scopes", set()).add(kind)
    if not emptied:
        return
    if not points:
        raise ConfigError(
            f"{', '.join(emptied)}: an empty target_scopes list selects no node, so this quantization "
            "section places 0 quantizers. Remove the key to quantize the whole model, or list the nodes "
            'to quantize, e.g. ["{re}.*conv.*"]'
        )
    for path, kinds in emptied.items():
        for kind in sorted(kinds):
            message = (
                f"{path} is an empty list, which selects no node: 0 {kind} quantizers are placed. Remove "
                f"the key to quantize all {kind}s; to keep them in floating point on purpose, write "
                f'"{kind}s": {{"ignored_scopes": ["{{re}}.*"]}} instead, which says so'
            )
            (warn or _warn)(message)


def _warn(message: str) -> None:
    warnings.warn(message, ConfigWarning, stacklevel=4)
