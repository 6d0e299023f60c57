"""``initializer.precision`` of type ``hawq``, run by ``create_compressed_model``.

It runs after range initialisation, on the compressed model with every
quantizer at its configured bit width: traces, perturbations, the exact search,
and then the chosen setup is applied with ranges re-derived from the range-init
statistics.  The chosen bit widths are part of the setup, so
``get_compression_state()`` carries them and a restore recomputes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nncf_explore.compression.interface import compression_interface
from nncf_explore.compression.model import apply_setup
from nncf_explore.compression.precision.hawq import HawqResult, hawq_assignment
from nncf_explore.compression.precision.hessian import HessianTraces, hessian_traces, weight_perturbations
from nncf_explore.compression.precision.mixed_precision import setup_with_bits
from nncf_explore.compression.quantization.point_constraints import point_bits
from nncf_explore.compression.quantization.settings import QuantizationSettings, section_value
from nncf_explore.compression.quantization.setup import QuantizationPoint
from nncf_explore.config.init_args import QuantizationPrecisionInitArgs
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.errors import ConfigError, did_you_mean
from nncf_explore.files import write_text_atomic

PATH = "compression.initializer.precision"


@dataclass(frozen=True)
class HawqSettings:
    """``initializer.precision`` of type ``hawq``, every value explicit."""

    bits: tuple[int, ...]
    compression_ratio: float
    num_data_points: int
    iter_number: int
    tolerance: float
    strict: bool
    traces_per_layer_path: str | None
    dump: bool

    @classmethod
    def from_section(cls, section: Mapping[str, Any], settings: QuantizationSettings) -> HawqSettings:
        """Read the section through the field table; bits outside the device's range are refused."""

        def value(key: str) -> Any:
            return section_value(section, f"initializer.precision.{key}")

        bits = tuple(sorted({int(b) for b in value("bits")}))
        refused = [b for b in bits if b not in settings.allowed_bits]
        if refused:
            raise ConfigError(
                f"{PATH}.bits: {refused} not allowed on target_device {settings.target_device!r}, which "
                f"allows {list(settings.allowed_bits)}; use 'TRIAL' (any width) or drop those widths"
            )
        path = value("traces_per_layer_path")
        return cls(
            bits=bits,
            compression_ratio=float(value("compression_ratio")),
            num_data_points=int(value("num_data_points")),
            iter_number=int(value("iter_number")),
            tolerance=float(value("tolerance")),
            strict=value("bitwidth_assignment_mode") == "strict",
            traces_per_layer_path=None if path is None else str(path),
            dump=bool(value("dump_init_precision_data")),
        )


def _load_traces(path: str, weight_ids: list[str]) -> HessianTraces:
    where = f"{PATH}.traces_per_layer_path"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{where}: cannot read {path!r} ({exc}); give a hawq_traces.json that an earlier run wrote with "
            '"dump_init_precision_data": true'
        ) from exc
    traces = data.get("traces") if isinstance(data, dict) else None
    if not isinstance(traces, dict) or not all(isinstance(v, int | float) for v in traces.values()):
        raise ConfigError(f'{where}: {path!r} holds no "traces" object of quantizer id -> number')
    missing = [w for w in weight_ids if w not in traces]
    if missing:
        raise ConfigError(
            f"{where}: {path!r} has no trace for weight quantizer {missing[0]!r}"
            f"{did_you_mean(missing[0], traces)} ({len(missing)} missing); it was saved for another model "
            "or setup: delete the path from the config to recompute the traces"
        )
    return HessianTraces({w: float(traces[w]) for w in weight_ids}, 0, True)


def _precision_args(config: NNCFConfig) -> QuantizationPrecisionInitArgs:
    if not config.has_extra_struct(QuantizationPrecisionInitArgs):
        raise ConfigError(
            f"{PATH}.type: 'hawq' needs a loss and data to compute Hessian traces; register them with "
            "register_default_init_args(config, train_loader, criterion=torch.nn.CrossEntropyLoss())"
        )
    return config.get_extra_struct(QuantizationPrecisionInitArgs)


def run_hawq(
    compressed: nn.Module,
    config: NNCFConfig,
    section: Mapping[str, Any],
    settings: QuantizationSettings,
    *,
    progress: bool = True,
) -> HawqResult:
    """Choose and apply HAWQ bit widths on ``compressed`` (range init must have run).

    Raises:
        ConfigError: No criterion registered, bits the device refuses, an unreadable
            ``traces_per_layer_path``, or a ``compression_ratio`` no assignment reaches.
    """
    hawq = HawqSettings.from_section(section, settings)
    interface = compression_interface(compressed)
    setup = interface.setup
    weight_ids = [p.id for p in setup.weights]
    if hawq.traces_per_layer_path is not None:
        traces = _load_traces(hawq.traces_per_layer_path, weight_ids)
    else:
        args = _precision_args(config)
        traces = hessian_traces(
            compressed,
            args.data_loader,
            args.criterion,
            criterion_fn=args.criterion_fn,
            num_data_points=hawq.num_data_points,
            iter_number=hawq.iter_number,
            tolerance=hawq.tolerance,
            progress=progress,
        )
    perturbations = weight_perturbations(compressed, traces, hawq.bits)

    def allowed(point: QuantizationPoint) -> tuple[int, ...]:
        # The candidates the config asks for, less those the hardware refuses at this point
        # (on NPU: 4/2-bit weights only on convolutions and matmuls, 4-bit inputs only before them).
        at_point = point_bits(point, interface.graph, settings)
        return tuple(b for b in hawq.bits if b in at_point)

    try:
        result = hawq_assignment(
            interface.graph,
            setup,
            perturbations,
            compression_ratio=hawq.compression_ratio,
            strict=hawq.strict,
            allowed=allowed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    apply_setup(compressed, setup_with_bits(setup, result.bits))
    if hawq.dump:
        _dump(str(config.get("log_dir", ".")), traces, result)
    return result


def _dump(log_dir: str, traces: HessianTraces, result: HawqResult) -> None:
    """Write what the search used and chose; ``hawq_traces.json`` feeds ``traces_per_layer_path``."""
    front = [{"bit_complexity": p.cost, "perturbation": p.loss} for p in result.front]
    files = {
        "hawq_traces.json": {"traces": dict(traces.traces), "iterations": traces.iterations},
        "hawq_bits.json": {
            "bits": dict(result.bits),
            "compression_ratio": result.compression_ratio,
            "front": front,
        },
    }
    for name, data in files.items():
        write_text_atomic(os.path.join(log_dir, name), json.dumps(data, indent=2) + "\n")
