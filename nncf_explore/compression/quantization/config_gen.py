"""``setup -> config``: the NNCF-compatible config that places exactly a given setup.

The result is the base config plus the smallest set of entries that turns the
base config's setup into the wanted one: a removed weight quantizer becomes a
``weights.ignored_scopes`` node name, a removed activation quantizer an
``activations.ignored_scopes`` quantizer id, a changed bit width a
``initializer.precision.bitwidth_per_scope`` entry, and a changed mode,
granularity or signedness a ``scope_overrides`` entry.  The result is checked
by placing it again, so a config that would not give back the setup is never
returned.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.errors import ConfigError, NNCFExploreError
from nncf_explore.graph.ir import Graph

_SCOPE_KEYS = ("ignored_scopes", "target_scopes")


def quantization_section(config: dict[str, Any]) -> dict[str, Any]:
    """The ``quantization`` algorithm dict inside ``config`` (created if absent)."""
    compression = config.get("compression")
    if compression is None:
        config["compression"] = {"algorithm": "quantization"}
        return config["compression"]  # type: ignore[no-any-return]
    sections = compression if isinstance(compression, list) else [compression]
    for section in sections:
        if section.get("algorithm") == "quantization":
            return section  # type: ignore[no-any-return]
    section = {"algorithm": "quantization"}
    config["compression"] = [*sections, section]
    return section


def _drop_scopes(section: dict[str, Any]) -> None:
    for key in _SCOPE_KEYS:
        section.pop(key, None)
        for group in ("weights", "activations"):
            section.get(group, {}).pop(key, None)


def _append(section: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = section
    for key in path[:-1]:
        node = node.setdefault(key, {})
    current = node.get(path[-1])
    items = [] if current is None else [current] if isinstance(current, str) else list(current)
    if value not in items:
        items.append(value)
    node[path[-1]] = items


def _spec_overrides(point: QuantizationPoint, placed: QuantizationPoint) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for key in ("mode", "per_channel", "signed"):
        wanted, got = getattr(point.spec, key), getattr(placed.spec, key)
        if wanted != got:
            changed[key] = wanted
    return changed


def config_from_setup(base: Mapping[str, Any], graph: Graph, setup: QuantizerSetup) -> dict[str, Any]:
    """An NNCF-compatible config that places ``setup`` on ``graph``, minimal relative to ``base``.

    Raises:
        ConfigError: ``setup`` holds a quantizer that no config can place on
            this graph (for example one moved to a position placement never uses).

    Examples:
        >>> import torch
        >>> from nncf_explore.graph import trace_model
        >>> g = trace_model(torch.nn.Sequential(torch.nn.Linear(4, 4)), {"sample_size": [1, 4]})
        >>> base = {"target_device": "TRIAL", "compression": {"algorithm": "quantization"}}
        >>> setup = build_quantizer_setup(g, base)
        >>> edited = setup.replace_point("Sequential/Linear[0]/linear_0|WEIGHT", spec={"bits": 4})
        >>> config_from_setup(base, g, edited)["compression"]["initializer"]
        {'precision': {'type': 'manual', 'bitwidth_per_scope': [[4, 'Sequential/Linear[0]/linear_0|WEIGHT']]}}
    """
    config = copy.deepcopy(dict(base))
    section = quantization_section(config)
    placed = build_quantizer_setup(graph, config)
    wanted = {p.id for p in setup}
    if wanted - {p.id for p in placed}:
        _drop_scopes(section)  # the base config's scopes excluded a point the user turned on
        placed = build_quantizer_setup(graph, config)
    unreachable = sorted(wanted - {p.id for p in placed})
    if unreachable:
        raise ConfigError(f"no config places quantizer(s) {unreachable} on this graph")
    for point in placed:
        if point.id in wanted:
            continue
        if point.kind == "weight":
            _append(section, ("weights", "ignored_scopes"), point.target_node)
        else:
            _append(section, ("activations", "ignored_scopes"), point.id)
    placed = build_quantizer_setup(graph, config)
    _write_specs(section, setup, placed)
    _check_round_trip(config, graph, setup)
    return config


def _write_specs(section: dict[str, Any], setup: QuantizerSetup, placed: QuantizerSetup) -> None:
    bitwidths: list[list[Any]] = []
    for point in setup:
        got = placed.get(point.id)
        overrides = _spec_overrides(point, got)
        if overrides:
            group = "weights" if point.kind == "weight" else "activations"
            key = point.target_node if point.kind == "weight" else point.id
            section.setdefault("scope_overrides", {}).setdefault(group, {}).setdefault(key, {}).update(
                overrides
            )
        if point.spec.bits != got.spec.bits:
            bitwidths.append([point.spec.bits, point.id])
    if bitwidths:
        precision = section.setdefault("initializer", {}).setdefault("precision", {"type": "manual"})
        existing = [
            e for e in precision.get("bitwidth_per_scope", []) if e[1] not in {b[1] for b in bitwidths}
        ]
        precision["bitwidth_per_scope"] = existing + bitwidths


def _check_round_trip(config: dict[str, Any], graph: Graph, setup: QuantizerSetup) -> None:
    again = build_quantizer_setup(graph, config)
    if [p.to_dict() for p in again] != [p.to_dict() for p in setup if p.id in again] or len(again) != len(
        setup
    ):
        diff = sorted({p.id for p in again} ^ {p.id for p in setup}) or [
            p.id for p in setup if p.id in again and again.get(p.id) != p
        ]
        raise NNCFExploreError(
            f"internal error: the generated config does not reproduce the setup (differs at {diff[:5]}); "
            "please report it with the model and the edit"
        )
