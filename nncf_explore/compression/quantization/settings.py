"""The quantization section of a config, resolved: every value explicit, defaults from the field table."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nncf_explore.compression.quantization.hardware import TRIAL_BITS, device_bits, hardware_of
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
        """Bit widths the device accepts somewhere; :func:`.point_constraints.point_bits` narrows them."""
        kinds = (device_bits(self.hardware, "weight"), device_bits(self.hardware, "activation"))
        return tuple(sorted(set(kinds[0]) | set(kinds[1])))


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
    if hardware == "NPU":
        if preset is not None:
            # NNCF raises too: npu.json fixes the modes itself, so a preset would be silently overridden.
            raise ConfigError(
                f"compression.preset: {preset!r} cannot be used with target_device 'NPU' (as in NNCF): "
                "the NPU hardware config decides the modes; remove 'preset', and set "
                "weights.mode / activations.mode if you need a specific mode"
            )
        return "symmetric", "symmetric"
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
    if kind == "autoq":
        # AutoQ is a reinforcement-learning search; running another algorithm under its name
        # would hand back a different model than the user asked for.
        raise ConfigError(
            "compression.initializer.precision.type: 'autoq' (NNCF's reinforcement-learning search) is not "
            "implemented; use 'hawq' with a compression_ratio, or the exact budget search "
            "(nncf_explore.compression.precision, and the Explorer's mixed-precision panel), which "
            "writes bitwidth_per_scope for a 'manual' config"
        )
    if kind == "hawq":
        return ()  # bit widths are chosen after range init (compression/precision/initializer.py)
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


_EIGHT_BIT_ONLY = (
    "which allows only 8-bit per-tensor activations (per-channel only before depthwise convolutions) "
    "and 8-bit weights"
)
_HARDWARE_RULES = {
    "CPU": f"NNCF's CPU hardware config, {_EIGHT_BIT_ONLY}",
    "GPU": f"NNCF's GPU hardware config, {_EIGHT_BIT_ONLY}",
    "NPU": "NNCF's NPU hardware config, which allows 8, 4 or 2-bit weights on convolutions, linear "
    "layers and matmuls (4 and 2 bits symmetric only; 8 bits elsewhere), and 4-bit activations "
    "(symmetric per-tensor) only where every op fed is a non-depthwise convolution, linear layer, matmul, "
    "add, subtract, multiply, maximum or minimum (8 bits elsewhere)",
}


def hardware_hint(device: str) -> str:
    """How to get past a hardware restriction.

    Examples:
        >>> hardware_hint("CPU_SPR").startswith("target_device 'CPU_SPR' uses NNCF's CPU hardware config")
        True
    """
    hardware = hardware_of(device)
    if hardware is None:
        return f"target_device {device!r} has no hardware config: widths {range_text(TRIAL_BITS)} are allowed"
    alternative = ' (or "NPU": 4- and 2-bit weights, 4-bit activations before convolutions)'
    if hardware == "NPU":
        alternative = ""
    return (
        f"target_device {device!r} uses {_HARDWARE_RULES[hardware]}; set "
        f'"target_device": "TRIAL" to use other bit widths{alternative}'
    )


def range_text(bits: tuple[int, ...]) -> str:
    """``'2..8'`` for the full range, else the widths listed (``'2, 4, 8'``)."""
    return f"{bits[0]}..{bits[-1]}" if bits == TRIAL_BITS else ", ".join(map(str, bits))


def check_bits(bits: int, settings: QuantizationSettings, where: str, kind: str | None = None) -> None:
    """Raise a :class:`ConfigError` naming ``where`` if ``bits`` is allowed nowhere on the device.

    ``kind`` (``"weight"``/``"activation"``) narrows the check to that kind of
    quantizer; each placed quantizer is checked again by :func:`.point_constraints.check_point`.
    """
    allowed = device_bits(settings.hardware, kind) if kind else settings.allowed_bits
    if bits in allowed:
        return
    if settings.hardware is None:
        raise ConfigError(f"{where}: {bits} bits is out of range; use {range_text(TRIAL_BITS)}")
    raise ConfigError(f"{where}: {bits} bits is not allowed: {hardware_hint(settings.target_device)}")


def check_hardware_constraints(settings: QuantizationSettings) -> None:
    """NNCF raises when group constraints conflict with the hardware config; so do we, with the fix."""
    check_bits(settings.weights.bits, settings, "compression.weights.bits", "weight")
    check_bits(settings.activations.bits, settings, "compression.activations.bits", "activation")
    if settings.hardware is not None and settings.activations.per_channel:
        raise ConfigError(
            "compression.activations.per_channel: true conflicts with the hardware config: "
            + hardware_hint(settings.target_device)
        )
    by_kind = (("weight", settings.weight_overrides), ("activation", settings.activation_overrides))
    for kind, overrides in by_kind:
        for scope, override in overrides.items():
            if "bits" in override:
                check_bits(
                    int(override["bits"]), settings, f"compression.scope_overrides[{scope!r}].bits", kind
                )
    for bits, scope in settings.bitwidth_per_scope:
        check_bits(
            bits, settings, f"compression.initializer.precision.bitwidth_per_scope [{bits}, {scope!r}]"
        )
