"""Read config values with defaults from the field table: :func:`resolve` and :class:`ConfigView`.

Every reader of a config goes through here, so a default is written once, in the table.

Examples:
    >>> section = {"algorithm": "quantization", "initializer": {"range": {"type": "percentile"}}}
    >>> resolve(section, "initializer.range.num_init_samples", algorithm="quantization")
    256
    >>> from nncf_explore.config.fields import ALGORITHMS
    >>> view = AlgorithmSection(section, ALGORITHMS["quantization"], "compression", "quantization")
    >>> view.get("initializer.range.type"), view.is_set("preset"), view.get("preset")
    ('percentile', False, 'performance')
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nncf_explore.config.fields import child_spec, containers, root_spec, spec_at
from nncf_explore.config.spec import Field, Json, Obj, Spec, join_path
from nncf_explore.config.validate import value_type
from nncf_explore.errors import did_you_mean

_MISSING: Any = object()


def resolve(mapping: Mapping[str, Json], path: str, *, algorithm: str | None = None, under: str = "") -> Json:
    """The value at the dotted ``path`` in ``mapping`` if set, else the table default, else None.

    Args:
        mapping: The object that holds the value: the config, an algorithm section, or a nested object.
        path: Dotted field names below ``mapping``, e.g. ``"initializer.range.num_init_samples"``.
        algorithm: The algorithm whose section the table lookup starts at; None for the top level.
        under: Where ``mapping`` sits below that start, e.g. ``"initializer.range"`` for one entry of a
            per-layer range list, or ``"input_info"`` for one model input.

    Returns:
        A copy of the value, so callers cannot change the config or the table by accident.

    Examples:
        >>> resolve({"sample_size": [1, 8]}, "filler", under="input_info")
        'ones'
    """
    start = spec_at(under, algorithm=algorithm) if under else root_spec(algorithm)
    return _resolve(start, mapping, path, under or algorithm or "")


def _resolve(spec: Spec, data: Json, path: str, where: str) -> Json:
    parent: Json = _MISSING
    parent_spec = spec
    value = data
    for key in path.split("."):
        parent_spec, spec = spec, _child(spec, key, value, where)
        if value is not _MISSING and not isinstance(value, Mapping):
            raise TypeError(
                f"{where!r} holds {value_type(value)} data in this config, not an object; read list items "
                "with ConfigView.views(...) or resolve(item, ..., under=...)"
            )
        parent = value
        value = _MISSING if value is _MISSING else value.get(key, _MISSING)
        where = join_path(where, key)
    if value is _MISSING:
        value = _default(spec, parent_spec, parent)
    return copy.deepcopy(value)


def _child(spec: Spec, key: str, data: Json, where: str) -> Spec:
    child = child_spec(spec, key, data)
    if child is None:
        known = [name for c in containers(spec) if isinstance(c, Obj) for name in c.fields]
        hint = did_you_mean(key, known)
        raise KeyError(f"no field {key!r} under {where or 'the top level'!r} in the field table{hint}")
    return child


def _default(spec: Spec, parent_spec: Spec, parent: Json) -> Json:
    if not isinstance(spec, Field) or spec.default_by is None:
        return spec.default
    sibling, table = spec.default_by
    if isinstance(parent, Mapping) and sibling in parent:
        chosen = parent[sibling]
        return table.get(chosen) if isinstance(chosen, str) else None
    sibling_spec = child_spec(parent_spec, sibling)
    return table.get(sibling_spec.default) if sibling_spec is not None else None


@dataclass(frozen=True)
class ConfigView:
    """A read-only view of one object of a config that answers with table defaults.

    Attributes:
        data: The object's JSON data (not copied; do not modify it).
        spec: Its spec in the field table.
        path: Its JSON path in the config, for messages, e.g. ``"compression[0].initializer"``.
    """

    data: Mapping[str, Json]
    spec: Spec
    path: str = ""

    def get(self, path: str) -> Json:
        """The value at the dotted field ``path``, or its table default, or None."""
        return _resolve(self.spec, self.data, path, self.path)

    def is_set(self, path: str) -> bool:
        """Whether the config gives ``path`` explicitly."""
        value: Json = self.data
        for key in path.split("."):
            if not isinstance(value, Mapping) or key not in value:
                return False
            value = value[key]
        return True

    def get_list(self, path: str) -> list[Json]:
        """A value that may be one item or a list (e.g. scopes), always as a list; [] if unset."""
        value = self.get(path)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def view(self, *keys: str) -> ConfigView:
        """The nested object at ``keys`` (one key per level, map keys allowed); empty if unset."""
        spec, data, path = self.spec, self.data, self.path
        for key in keys:
            spec = _child(spec, key, data, path)
            item = data.get(key, {})
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"{join_path(path, key)!r} holds {value_type(item)} data, not an object; use views()"
                )
            data, path = item, join_path(path, key)
        return ConfigView(data, spec, path)

    def views(self, path: str) -> list[ConfigView]:
        """An object-or-list-of-objects value (e.g. ``input_info``) as a list of views; [] if unset."""
        keys = path.split(".")
        parent = self.view(*keys[:-1])
        spec = _child(parent.spec, keys[-1], parent.data, parent.path)
        value = parent.data.get(keys[-1])
        base = join_path(parent.path, keys[-1])
        if isinstance(value, Mapping):
            return [ConfigView(value, spec, base)]
        if isinstance(value, list):
            return [ConfigView(item, spec, join_path(base, i)) for i, item in enumerate(value)]
        return []


@dataclass(frozen=True)
class AlgorithmSection(ConfigView):
    """One entry of ``compression``: an algorithm's settings, read with defaults.

    Keys marked ``inherits_top_level`` in the table (``compression_lr_multiplier``) fall back to the
    top level of the config when the section does not set them.

    Attributes:
        name: The algorithm, e.g. ``"quantization"``.
        index: Position in the ``compression`` list, or None if ``compression`` is a single object.
        top_level: The whole config, for inherited keys.
    """

    name: str = ""
    index: int | None = None
    top_level: Mapping[str, Json] = field(default_factory=dict)

    def get(self, path: str) -> Json:
        """The value at ``path``: set here, else inherited from the top level, else the default."""
        spec = self.spec.fields.get(path) if isinstance(self.spec, Obj) else None
        if (
            isinstance(spec, Field)
            and spec.inherits_top_level
            and path not in self.data
            and path in self.top_level
        ):
            return copy.deepcopy(self.top_level[path])
        return super().get(path)
