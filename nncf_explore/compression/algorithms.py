"""The compression algorithms other than quantization, by NNCF name: one builder each.

``create_compressed_model`` builds quantization itself (placement, range init and
HAWQ need the trace first) and every other section of the ``compression`` list
through this table, in the list's order.  A builder gets everything an algorithm
may need and returns its controller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nncf_explore.compression import const_sparsity, distillation, rb_sparsity
from nncf_explore.compression.controller import ModelController
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs


@dataclass(frozen=True)
class BuildContext:
    """What an algorithm builder receives.

    Attributes:
        compressed: The compressed model (a copy of the user's model, with ``_nncf``).
        original: The user's FP32 model, untouched (a knowledge-distillation teacher copies it).
        config: The whole config (registered init args included).
        section: This algorithm's section of the ``compression`` list.
        example_inputs: The tracing inputs.
        graph: The traced graph.
        restoring: Whether a ``compression_state`` is being restored (skip initialisation then).
    """

    compressed: nn.Module
    original: nn.Module
    config: NNCFConfig
    section: Mapping[str, Any]
    example_inputs: tuple[Args, Kwargs]
    graph: Graph
    restoring: bool


Builder = Callable[[BuildContext], ModelController]


def check_section_scopes(ctx: BuildContext) -> None:
    """Refuse an ``ignored_scopes``/``target_scopes`` entry of the section that matches no node.

    As NNCF does with ``validate_scopes`` (default true): an entry that names nothing in this
    model (a typo, or a config written for another model) would otherwise be a silent no-op.
    Entries are node names (``Net/Conv2d[conv1]/conv2d_0``), exact or with ``{re}``: the
    algorithms select nodes by name, so a bare module scope would select nothing.

    Raises:
        ConfigError: The entry's JSON path, the closest names, and the fix.
    """
    from nncf_explore.compression.quantization.scope_checks import section_path
    from nncf_explore.errors import ConfigError, did_you_mean
    from nncf_explore.graph.scope import matches_pattern

    if ctx.section.get("validate_scopes", True) is False:
        return
    prefix = section_path(ctx.config, ctx.section)
    candidates = [n.name for n in ctx.graph.nodes]
    for key in ("ignored_scopes", "target_scopes"):
        value = ctx.section.get(key)
        entries = [value] if isinstance(value, str) else list(value or [])
        for i, entry in enumerate(entries):
            if any(matches_pattern(entry, name) for name in candidates):
                continue
            where = f"{prefix}.{key}" + ("" if isinstance(value, str) else f"[{i}]")
            raise ConfigError(
                f"{where}: no match has been found among the model operations for {entry!r}"
                f"{did_you_mean(entry, candidates)}. Names follow NNCF's scheme "
                "'{scope}/{op}_{call_order}' (see original_graph.dot or the Explorer); prefix an entry "
                "with '{re}' for a regex, or set "
                f"{prefix}.validate_scopes: false"
            )


def _magnitude_sparsity(ctx: BuildContext) -> ModelController:
    from nncf_explore.compression.sparsity_controller import MagnitudeSparsityController

    return MagnitudeSparsityController(ctx.compressed, ctx.example_inputs, ctx.section, ctx.graph)


def _filter_pruning(ctx: BuildContext) -> ModelController:
    from nncf_explore.compression.pruning.controller import FilterPruningController

    sections = ctx.config.get("compression")
    where = "compression"
    if isinstance(sections, list):
        where += f"[{next((i for i, s in enumerate(sections) if s == ctx.section), 0)}]"
    return FilterPruningController(
        ctx.compressed, ctx.example_inputs, ctx.section, ctx.graph, restoring=ctx.restoring, where=where
    )


BUILDERS: Mapping[str, Builder] = {
    "magnitude_sparsity": _magnitude_sparsity,
    "filter_pruning": _filter_pruning,
    "rb_sparsity": rb_sparsity.build,
    "const_sparsity": const_sparsity.build,
    "knowledge_distillation": distillation.build,
}
"""NNCF algorithm name -> builder; quantization is built by ``create_compressed_model`` itself."""
