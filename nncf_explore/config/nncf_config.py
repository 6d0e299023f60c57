"""``NNCFConfig``: the JSON config as a validated dict, plus runtime objects kept beside it.

Examples:
    >>> config = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 3, 32, 32]},
    ...                                "compression": {"algorithm": "quantization"}})
    >>> [section.name for section in config.algorithm_configs()]
    ['quantization']
    >>> config.algorithm_configs()[0].get("initializer.range.num_init_samples")
    256
    >>> config.resolve("target_device")
    'ANY'
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar, overload

from nncf_explore.config.fields import ALGORITHMS, CONFIG
from nncf_explore.config.jsonio import PathLike, dumps, read_json_file, to_json_data, write_text_atomic
from nncf_explore.config.schema import build_json_schema
from nncf_explore.config.sections import AlgorithmSection, ConfigView
from nncf_explore.config.validate import check_config, find_issues, format_issues, show
from nncf_explore.errors import ConfigError, did_you_mean


class ExtraStruct(Protocol):
    """A runtime object registered beside the config (a data loader wrapper, a callback, ...).

    NNCF's ``NNCFExtraConfigStruct`` classes satisfy it: a class-level ``get_id()`` names the slot.
    """

    @classmethod
    def get_id(cls) -> str:
        """The id the struct is registered under, e.g. ``"quantization_range_init_args"``."""
        ...


StructT = TypeVar("StructT", bound=ExtraStruct)


class NNCFConfig(dict[str, Any]):
    """An NNCF config: a plain JSON-like dict, validated against the field table when loaded.

    The dict holds JSON data only. Runtime objects (data loaders, criteria, callbacks) registered with
    :meth:`register_extra_structs` live in a separate attribute: they are never written to JSON, and
    ``copy.deepcopy(config)`` shares them instead of copying them (a data loader must not be cloned).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build from dict contents like ``dict(...)``, without validation (use :meth:`from_dict`)."""
        super().__init__(*args, **kwargs)
        self._extra_structs: dict[str, ExtraStruct] = {}

    @classmethod
    def from_dict(cls, nncf_dict: Mapping[str, Any]) -> NNCFConfig:
        """A validated deep copy of ``nncf_dict`` (tuples become lists, as in JSON).

        Raises:
            ConfigError: The dict breaks the schema; every problem is listed with its JSON path.
        """
        return cls._from_data(nncf_dict, source="")

    @classmethod
    def from_json(cls, path: PathLike) -> NNCFConfig:
        """Load and validate a strict JSON file (no comments: NNCF >= 2.17 rejects them too).

        Raises:
            ConfigError: Invalid or non-UTF-8 JSON (with line, column and caret), or an invalid config.
            FileNotFoundError: ``path`` does not exist.
        """
        return cls._from_data(read_json_file(path), source=str(path))

    @classmethod
    def _from_data(cls, data: object, source: str) -> NNCFConfig:
        if not isinstance(data, Mapping):
            where = source or "NNCFConfig.from_dict"
            raise ConfigError(f"{where}: expected a JSON object at the top level, got {show(data)}")
        plain = to_json_data(data)
        # stacklevel 3 points the warnings at the caller of from_dict / from_json.
        check_config(plain, source=source, stacklevel=3)
        return cls(plain)

    def to_json(self, path: PathLike) -> None:
        """Write the JSON data atomically (a temporary file in the same directory, then a rename).

        Missing parent directories are created; a new file gets ``0o666`` minus the umask.

        Raises:
            ConfigError: The data holds a value JSON cannot (NaN, an object), named by its path.
            FileWriteError: The file cannot be written; the message names ``path`` and the fix.
        """
        write_text_atomic(path, dumps(to_json_data(self)))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON data as a plain dict."""
        return copy.deepcopy(dict(self))

    def validate(self) -> None:
        """Check the current contents again, e.g. after editing the dict in place.

        Raises:
            ConfigError: Listing every problem with its JSON path.
        """
        # The same checks as from_dict: NaN under an unknown key, or a dict that contains itself.
        check_config(to_json_data(self), stacklevel=2)

    @staticmethod
    def schema() -> dict[str, Any]:
        """The JSON Schema (draft-07) of a config, generated from the field table."""
        return build_json_schema()

    def view(self) -> ConfigView:
        """The whole config as a :class:`ConfigView` (values with table defaults)."""
        return ConfigView(self, CONFIG)

    def resolve(self, path: str) -> Any:
        """A top-level value or its table default, e.g. ``config.resolve("target_device")``."""
        return self.view().get(path)

    def algorithm_configs(self) -> list[AlgorithmSection]:
        """The ``compression`` entries in config order (one object or a list), as views with defaults.

        Raises:
            ConfigError: ``compression`` is malformed (possible after editing the dict in place).
        """
        compression = self.get("compression")
        if compression is None:
            return []
        issues = find_issues(compression, CONFIG.fields["compression"], "compression")
        if issues:
            raise ConfigError(format_issues(issues))
        if isinstance(compression, Mapping):
            return [self._section(compression, None)]
        return [self._section(entry, i) for i, entry in enumerate(compression)]

    def _section(self, entry: Mapping[str, Any], index: int | None) -> AlgorithmSection:
        name = entry["algorithm"]
        path = "compression" if index is None else f"compression[{index}]"
        return AlgorithmSection(entry, ALGORITHMS[name], path, name=name, index=index, top_level=self)

    def register_extra_structs(self, structs: Iterable[ExtraStruct]) -> None:
        """Keep runtime objects beside the config, each under its ``get_id()``.

        Raises:
            ConfigError: An id is already registered (as in NNCF). ``register_default_init_args``
                replaces its own structs, so calling it again is safe.
        """
        for struct in structs:
            struct_id = struct.get_id()
            if struct_id in self._extra_structs:
                raise ConfigError(
                    f"extra struct {struct_id!r} is already registered in this NNCFConfig; call "
                    f"config.remove_extra_struct({struct_id!r}) first, or call register_default_init_args "
                    "again, which replaces the structs it registers"
                )
            self._extra_structs[struct_id] = struct

    @overload
    def get_extra_struct(self, struct: type[StructT]) -> StructT: ...
    @overload
    def get_extra_struct(self, struct: str) -> ExtraStruct: ...
    def get_extra_struct(self, struct: type[ExtraStruct] | str) -> ExtraStruct:
        """The registered struct for a struct class (typed) or an id.

        Raises:
            ConfigError: Nothing is registered under that id; the message says how to register it.
        """
        struct_id = struct if isinstance(struct, str) else struct.get_id()
        if struct_id not in self._extra_structs:
            known = list(self._extra_structs)
            raise ConfigError(
                f"no extra struct {struct_id!r} is registered in this NNCFConfig (registered: {known})"
                f"{did_you_mean(struct_id, known)}; register init arguments with "
                "register_default_init_args(config, train_loader, ...)"
            )
        found = self._extra_structs[struct_id]
        if not isinstance(struct, str) and not isinstance(found, struct):
            raise ConfigError(
                f"extra struct {struct_id!r} is a {type(found).__name__}, not a {struct.__name__}"
            )
        return found

    def has_extra_struct(self, struct: type[ExtraStruct] | str) -> bool:
        """Whether a struct is registered for this struct class or id."""
        return (struct if isinstance(struct, str) else struct.get_id()) in self._extra_structs

    def get_all_extra_structs(self) -> list[ExtraStruct]:
        """All registered structs, in registration order."""
        return list(self._extra_structs.values())

    def remove_extra_struct(self, struct: type[ExtraStruct] | str) -> None:
        """Forget the struct for this class or id; nothing happens if none is registered."""
        self._extra_structs.pop(struct if isinstance(struct, str) else struct.get_id(), None)

    def copy(self) -> NNCFConfig:
        """A shallow copy that keeps its own registry of the same extra structs."""
        return self.__copy__()

    def __copy__(self) -> NNCFConfig:
        clone = NNCFConfig(self)
        clone._extra_structs = dict(self._extra_structs)
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> NNCFConfig:
        # The JSON data is copied; runtime objects are shared, because a data loader (with worker
        # processes and open files) must not be cloned.
        clone = NNCFConfig(copy.deepcopy(dict(self), memo))
        clone._extra_structs = dict(self._extra_structs)
        return clone

    def __repr__(self) -> str:
        structs = f", extra_structs={list(self._extra_structs)}" if self._extra_structs else ""
        return f"NNCFConfig({dict.__repr__(self)}{structs})"
