"""Compression statistics: data first, NNCF-like tables for printing.

Beyond NNCF's ratios, :class:`QuantizationStatistics` lists every weighted op
that got no weight quantizer and why, so nobody believes a model is quantized
when part of it is not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup

if TYPE_CHECKING:  # the pruning package renders its tables with this module's helpers
    from nncf_explore.compression.pruning.statistics import PruningStatistics


def render_table(header: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> str:
    """A plain-text grid table (NNCF prints these with tabulate's grid style).

    Examples:
        >>> print(render_table(["a", "b"], [[1, "xy"]]))
        +---+----+
        | a | b  |
        +===+====+
        | 1 | xy |
        +---+----+
    """
    cells = [[str(c) for c in row] for row in ([header] if header else []) + [list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line]
    for index, row in enumerate(cells):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        out.append(line.replace("-", "=") if header and index == 0 else line)
    return "\n".join(out)


def proportion(n: int, total: int) -> str:
    """NNCF's ``"P.PP % (n / total)"`` cell."""
    return f"{100 * n / max(total, 1):.2f} % ({n} / {total})"


@dataclass(frozen=True)
class UnquantizedWeight:
    """A weighted op without a weight quantizer."""

    node: str
    weight: str
    reason: str


@dataclass(frozen=True)
class QuantizationStatistics:
    """Counts of placed quantizers, with the enabled ones, and what is left in floating point."""

    weight_points: tuple[QuantizationPoint, ...]
    activation_points: tuple[QuantizationPoint, ...]
    signed: dict[str, bool]
    enabled: dict[str, bool]
    potential_weights: int
    unquantized_weights: tuple[UnquantizedWeight, ...] = ()
    fp32_weight_bytes: int = 0
    quantized_weight_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_setup(
        cls,
        setup: QuantizerSetup,
        *,
        signed: dict[str, bool],
        enabled: dict[str, bool],
        potential_weights: int,
        unquantized_weights: Sequence[UnquantizedWeight] = (),
        weight_bytes: tuple[int, int] = (0, 0),
        notes: Sequence[str] = (),
    ) -> QuantizationStatistics:
        """Statistics of ``setup`` given each quantizer's actual signedness and enabled state."""
        return cls(
            tuple(setup.weights),
            tuple(setup.activations),
            dict(signed),
            dict(enabled),
            potential_weights,
            tuple(unquantized_weights),
            weight_bytes[0],
            weight_bytes[1],
            tuple(notes),
        )

    @property
    def ratio_of_enabled_quantizations(self) -> float:
        """Percentage of placed quantizers that are enabled."""
        total = len(self.weight_points) + len(self.activation_points)
        return 100.0 * sum(self.enabled.values()) / max(total, 1)

    def bitwidth_distribution(self) -> dict[int, tuple[int, int]]:
        """bits -> (weight quantizers, activation quantizers)."""
        w = Counter(p.spec.bits for p in self.weight_points)
        a = Counter(p.spec.bits for p in self.activation_points)
        return {bits: (w[bits], a[bits]) for bits in sorted(set(w) | set(a), reverse=True)}

    def _share_rows(
        self, label: str, points: Sequence[QuantizationPoint], potential: int | None
    ) -> list[list[str]]:
        n = len(points)
        sym = sum(p.spec.mode == "symmetric" for p in points)
        sgn = sum(self.signed.get(p.id, bool(p.spec.signed)) for p in points)
        pc = sum(p.spec.per_channel for p in points)
        rows = [
            [f"Symmetric {label}s / All placed {label}s", proportion(sym, n)],
            [f"Asymmetric {label}s / All placed {label}s", proportion(n - sym, n)],
            [f"Signed {label}s / All placed {label}s", proportion(sgn, n)],
            [f"Unsigned {label}s / All placed {label}s", proportion(n - sgn, n)],
            [f"Per-tensor {label}s / All placed {label}s", proportion(n - pc, n)],
            [f"Per-channel {label}s / All placed {label}s", proportion(pc, n)],
        ]
        if potential is not None:
            rows.append([f"Placed {label}s / Potential {label}s", proportion(n, potential)])
        return rows

    def to_str(self) -> str:
        """NNCF-style tables, plus the floating-point weights and the memory estimate."""
        parts = [
            "Statistics of the quantization algorithm:",
            render_table(
                ["Statistic's name", "Value"],
                [["Ratio of enabled quantizations", f"{self.ratio_of_enabled_quantizations:.3f}"]],
            ),
            "",
            "Statistics of the quantization share:",
            render_table(
                ["Statistic's name", "Value"],
                self._share_rows("WQ", self.weight_points, self.potential_weights)
                + self._share_rows("AQ", self.activation_points, None),
            ),
            "",
            "Statistics of the bitwidth distribution:",
        ]
        nw, na = len(self.weight_points), len(self.activation_points)
        rows = [
            [bits, proportion(w, nw), proportion(a, na), proportion(w + a, nw + na)]
            for bits, (w, a) in self.bitwidth_distribution().items()
        ]
        header = [
            "Num bits (N)",
            "N-bits WQs / Placed WQs",
            "N-bits AQs / Placed AQs",
            "N-bits Qs / Placed Qs",
        ]
        parts.append(render_table(header, rows) if rows else "(no quantizers)")
        if self.fp32_weight_bytes:
            ratio = self.fp32_weight_bytes / max(self.quantized_weight_bytes, 1)
            parts += [
                "",
                f"Weight memory: {self.quantized_weight_bytes / 2**20:.2f} MiB quantized vs "
                f"{self.fp32_weight_bytes / 2**20:.2f} MiB FP32 ({ratio:.2f}x smaller)",
            ]
        if self.unquantized_weights:
            parts += ["", "Weights left in floating point:"]
            parts.append(
                render_table(
                    ["Node", "Weight", "Reason"],
                    [[u.node, u.weight, u.reason] for u in self.unquantized_weights],
                )
            )
        parts += [f"Note: {note}" for note in self.notes]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.to_str()


@dataclass(frozen=True)
class SparsityStatistics:
    """Sparsity level of each sparsified weight and overall.

    Attributes:
        levels: Fraction of zeroed elements, by parameter name.
        target_level: The level the algorithm currently aims at.
        model_level: Fraction of zeroed elements over all sparsified weights.
        algorithm: The algorithm's name in the table title (NNCF's wording).
        extra: More ``(statistic, value)`` rows, e.g. RB sparsity's mean mask probability.
    """

    levels: dict[str, float]
    target_level: float
    model_level: float
    algorithm: str = "magnitude sparsity"
    extra: tuple[tuple[str, str], ...] = ()

    def to_str(self) -> str:
        """NNCF-like tables."""
        rows = [[name, f"{100 * level:.2f} %"] for name, level in self.levels.items()]
        return "\n".join(
            [
                f"Statistics of the {self.algorithm} algorithm:",
                render_table(
                    ["Statistic's name", "Value"],
                    [
                        ["Sparsity level of the whole model", f"{self.model_level:.3f}"],
                        ["Target sparsity level", f"{self.target_level:.3f}"],
                        *[list(row) for row in self.extra],
                    ],
                ),
                render_table(["Layer's name", "Sparsity level"], rows),
            ]
        )

    def __str__(self) -> str:
        return self.to_str()


@dataclass(frozen=True)
class NNCFStatistics:
    """Statistics of every algorithm, by name (``stats.quantization``, ``stats.magnitude_sparsity``)."""

    quantization: QuantizationStatistics | None = None
    magnitude_sparsity: SparsityStatistics | None = None
    rb_sparsity: SparsityStatistics | None = None
    const_sparsity: SparsityStatistics | None = None
    filter_pruning: PruningStatistics | None = None

    def to_str(self) -> str:
        """All tables, one algorithm after the other."""
        tables = (
            self.quantization,
            self.magnitude_sparsity,
            self.rb_sparsity,
            self.const_sparsity,
            self.filter_pruning,
        )
        return "\n\n".join(s.to_str() for s in tables if s is not None)

    def __str__(self) -> str:
        return self.to_str()
