"""The quantization section of a config, resolved: every value explicit, defaults from the field table."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nncf_explore.compression.quantization.hardware import allowed_bits, hardware_of
from nncf_explore.config.sections import resolve
from nncf_explore.errors import ConfigError, ConfigWarning

ALGORITHM = "quantization"


def _scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def section_value(section: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in the quantization section, or the field table's default."""
    return resolve(section, path, algorithm=ALGORITHM)


@dataclass(frozen=True)
class GroupSettings:
    """Resolved ``weights`` or ``activations`` settings."""

    bits: int
    mode: str
    per_channel: bool | None  # None: the hardware config decides
    signed: bool | None
    logarithm_scale: bool
    ignored_scopes: tuple[str, ...]
    target_scopes: tuple[str, ...] | None
    validate_scopes: bool


@dataclass(frozen=True)
class QuantizationSettings:
    """Everything placement needs from a config, resolved once."""

    target_device: str
    hardware: str | None
    weights: GroupSettings
    activations: GroupSettings
    quantize_inputs: bool
    quantize_outputs: bool
    overflow_fix: str
    global_ignored_scopes: tuple[str, ...]
    global_target_scopes: tuple[str, ...] | None
    weight_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    activation_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bitwidth_per_scope: tuple[tuple[int, str], ...] = ()
    unified_scale_ops: tuple[tuple[str, ...], ...] = ()

    @property
    def allowed_bits(self) -> tuple[int, ...]:
        """Bit widths the target device accepts."""
        return allowed_bits(self.hardware)


def _group(section: Mapping[str, Any], name: str, preset_mode: str) -> GroupSettings:
    group: Mapping[str, Any] = section.get(name, {})
    algo_ignored = _scopes(section.get("ignored_scopes"))
    target = group.get("target_scopes", section.get("target_scopes"))
    return GroupSettings(
        bits=int(resolve(group, "bits", algorithm=ALGORITHM, under=name)),
        mode=str(group.get("mode", preset_mode)),
        per_channel=group.get("per_channel"),
        signed=group.get("signed"),
        logarithm_scale=bool(resolve(group, "logarithm_scale", algorithm=ALGORITHM, under=name)),
        ignored_scopes=_scopes(group.get("ignored_scopes")) + algo_ignored,
        target_scopes=None if target is None else _scopes(target),
        validate_scopes=bool(group.get("validate_scopes", section_value(section, "validate_scopes"))),
    )


def _preset_modes(section: Mapping[str, Any], hardware: str | None) -> tuple[str, str]:
    preset = section.get("preset")
    if preset is None and hardware is not None:
        preset = section_value(section, "preset")
    if preset == "mixed":
        return "symmetric", "asymmetric"
    return "symmetric", "symmetric"


def _precision(section: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    precision = section.get("initializer", {}).get("precision")
    if not precision:
        return ()
    kind = precision.get("type", "manual")
    if kind != "manual":
        raise ConfigError(
            f"compression.initializer.precision.type: {kind!r} (automatic mixed precision) is not "
            "implemented by nncf_explore; use 'manual' with bitwidth_per_scope, or pick bit widths per "
            "node in the Explorer, which writes that list for you"
        )
    return tuple((int(bits), str(scope)) for bits, scope in precision.get("bitwidth_per_scope", []))


def resolve_settings(config: Mapping[str, Any], section: Mapping[str, Any]) -> QuantizationSettings:
    """Resolve the ``quantization`` algorithm ``section`` of ``config``.

    Raises:
        ConfigError: The target device is unsupported, or a value conflicts
            with its hardware config (the message says how to fix it).
    """
    device = str(resolve(config, "target_device"))
    hardware = hardware_of(device)
    weights_mode, activations_mode = _preset_modes(section, hardware)
    overrides: Mapping[str, Any] = section.get("scope_overrides", {})
    unified: Sequence[Sequence[str]] = section.get("activations", {}).get("unified_scale_ops", [])
    settings = QuantizationSettings(
        target_device=device,
        hardware=hardware,
        weights=_group(section, "weights", weights_mode),
        activations=_group(section, "activations", activations_mode),
        quantize_inputs=bool(section_value(section, "quantize_inputs")),
        quantize_outputs=bool(section_value(section, "quantize_outputs")),
        overflow_fix=str(section_value(section, "overflow_fix")),
        global_ignored_scopes=_scopes(config.get("ignored_scopes")),
        global_target_scopes=None
        if config.get("target_scopes") is None
        else _scopes(config["target_scopes"]),
        weight_overrides=dict(overrides.get("weights", {})),
        activation_overrides=dict(overrides.get("activations", {})),
        bitwidth_per_scope=_precision(section),
        unified_scale_ops=tuple(tuple(group) for group in unified),
    )
    check_hardware_constraints(settings)
    _warn_unapplied(config, section)
    return settings


def _warn_unapplied(config: Mapping[str, Any], section: Mapping[str, Any]) -> None:
    # Valid NNCF keys that nncf_explore does not act on: say so instead of ignoring them silently.
    unapplied = [
        key
        for key, present in (
            (
                "compression_lr_multiplier",
                "compression_lr_multiplier" in section or "compression_lr_multiplier" in config,
            ),
            (
                "scope_overrides.<group>.<scope>.initializer",
                any(
                    "initializer" in values
                    for group in section.get("scope_overrides", {}).values()
                    for values in group.values()
                ),
            ),
        )
        if present
    ]
    if unapplied:
        warnings.warn(
            f"nncf_explore does not implement {', '.join(unapplied)} yet; these settings are ignored "
            "(use per-layer initializer.range entries with target_scopes for per-scope range init)",
            ConfigWarning,
            stacklevel=4,
        )


def hardware_hint(device: str) -> str:
    """How to get past a hardware restriction."""
    return (
        f"target_device {device!r} uses NNCF's CPU hardware config, which allows only 8-bit per-tensor "
        "activations (per-channel only before depthwise convolutions) and 8-bit weights; set "
        '"target_device": "TRIAL" to use other bit widths'
    )


def check_bits(bits: int, settings: QuantizationSettings, where: str) -> None:
    """Raise a :class:`ConfigError` naming ``where`` if ``bits`` is not allowed on the device."""
    if bits not in settings.allowed_bits:
        if settings.hardware is None:
            raise ConfigError(f"{where}: {bits} bits is out of range; use 2..8")
        raise ConfigError(f"{where}: {bits} bits is not allowed: {hardware_hint(settings.target_device)}")


def check_hardware_constraints(settings: QuantizationSettings) -> None:
    """NNCF raises when group constraints conflict with the hardware config; so do we, with the fix."""
    check_bits(settings.weights.bits, settings, "compression.weights.bits")
    check_bits(settings.activations.bits, settings, "compression.activations.bits")
    if settings.hardware is not None and settings.activations.per_channel:
        raise ConfigError(
            "compression.activations.per_channel: true conflicts with the hardware config: "
            + hardware_hint(settings.target_device)
        )
    for scope, override in {**settings.weight_overrides, **settings.activation_overrides}.items():
        if "bits" in override:
            check_bits(int(override["bits"]), settings, f"compression.scope_overrides[{scope!r}].bits")
    for bits, scope in settings.bitwidth_per_scope:
        check_bits(
            bits, settings, f"compression.initializer.precision.bitwidth_per_scope [{bits}, {scope!r}]"
        )
