"""Filter pruning statistics in NNCF's table shape: the model summary, then one row per pruned layer."""

from __future__ import annotations

from dataclasses import dataclass

from nncf_explore.compression.statistics import render_table


@dataclass(frozen=True)
class PrunedLayer:
    """One convolution or linear layer whose filters are masked."""

    name: str
    weight_shape: tuple[int, ...]
    mask_shape: tuple[int, ...]
    zero_share: float


@dataclass(frozen=True)
class PruningStatistics:
    """FLOPs and parameters before and after pruning, and the mask of every pruned layer.

    Attributes:
        layers: Every layer of a prunable group.
        flops: ``(before, after)``; FLOPs are twice the multiply-accumulates of convolutions and
            linear layers.
        params: ``(before, after)`` weight elements of convolutions and linear layers.
        filter_level: Share of the prunable filters that are masked.
        target_level: The level the schedule ends at.
        target_is_flops: Whether that target is a share of FLOPs (``pruning_flops_target``).
    """

    layers: tuple[PrunedLayer, ...]
    flops: tuple[int, int]
    params: tuple[int, int]
    filter_level: float
    target_level: float
    target_is_flops: bool = False

    @property
    def flops_level(self) -> float:
        """Share of FLOPs removed."""
        return 1.0 - self.flops[1] / max(self.flops[0], 1)

    @property
    def params_level(self) -> float:
        """Share of weights removed."""
        return 1.0 - self.params[1] / max(self.params[0], 1)

    def to_str(self) -> str:
        """NNCF-like tables.

        Examples:
            >>> layer = PrunedLayer("c", (4, 3, 1, 1), (4,), 0.5)
            >>> stats = PruningStatistics((layer,), (24, 12), (12, 6), 0.5, 0.5)
            >>> print(stats.to_str().splitlines()[6])
            | FLOPs after pruning / FLOPs before pruning   | 12 / 24 (50.00 %) |
        """
        target = "Target FLOPs pruning level" if self.target_is_flops else "Target filter pruning level"
        summary = [
            ["FLOPs pruning level", f"{self.flops_level:.3f}"],
            ["FLOPs after pruning / FLOPs before pruning", _ratio(*reversed(self.flops))],
            ["Params pruning level", f"{self.params_level:.3f}"],
            ["Params after pruning / Params before pruning", _ratio(*reversed(self.params))],
            ["Filter pruning level", f"{self.filter_level:.3f}"],
            [target, f"{self.target_level:.3f}"],
        ]
        rows = [
            [layer.name, list(layer.weight_shape), list(layer.mask_shape), f"{100 * layer.zero_share:.2f}"]
            for layer in self.layers
        ]
        return "\n".join(
            [
                "Statistics of the filter pruning algorithm:",
                render_table(["Statistic's name", "Value"], summary),
                "",
                "Statistics by pruned layers:",
                render_table(["Layer", "Weight's shape", "Mask's shape", "Mask zero %"], rows)
                if rows
                else "(no prunable layers)",
            ]
        )

    def __str__(self) -> str:
        return self.to_str()


def _ratio(after: int, before: int) -> str:
    return f"{after} / {before} ({100 * after / max(before, 1):.2f} %)"
