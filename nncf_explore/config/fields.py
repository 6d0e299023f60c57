"""The field table: every key an NNCF config may hold, with its type, default, range and example.

This module is the single source of truth for config defaults. Code elsewhere reads values through
:func:`nncf_explore.config.resolve` or :meth:`NNCFConfig.algorithm_configs`, never with a literal
default of its own.

Examples:
    >>> default_of("initializer.range.num_init_samples", algorithm="quantization")
    256
    >>> default_of("target_device")
    'ANY'
    >>> sorted(ALGORITHMS)[:3]
    ['const_sparsity', 'filter_pruning', 'knowledge_distillation']
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping

from nncf_explore.config.fields_common import scope_list
from nncf_explore.config.fields_other import (
    CONST_SPARSITY,
    FILTER_PRUNING,
    KNOWLEDGE_DISTILLATION,
    MAGNITUDE_SPARSITY,
    MOVEMENT_SPARSITY,
    RB_SPARSITY,
)
from nncf_explore.config.fields_quantization import QUANTIZATION
from nncf_explore.config.spec import ArrayOf, Field, Json, MapOf, Obj, OneOf, Spec, Tagged
from nncf_explore.errors import did_you_mean

ALGORITHMS: Mapping[str, Obj] = {
    "quantization": QUANTIZATION,
    "magnitude_sparsity": MAGNITUDE_SPARSITY,
    "rb_sparsity": RB_SPARSITY,
    "const_sparsity": CONST_SPARSITY,
    "filter_pruning": FILTER_PRUNING,
    "knowledge_distillation": KNOWLEDGE_DISTILLATION,
    "movement_sparsity": MOVEMENT_SPARSITY,
}
"""Algorithm sections by their ``"algorithm"`` name, in NNCF's registry order."""

_ALGORITHM_SECTION = Tagged(
    "algorithm",
    ALGORITHMS,
    description="One compression algorithm.",
    # NNCF 2.19's torch binarization (XNOR, DoReFa): valid in its schema, not implemented here.
    elsewhere=frozenset({"binarization"}),
)

_INPUT_INFO = Obj(
    {
        "sample_size": ArrayOf(
            Field("integer", minimum=0, description="One dimension.", example=224),
            description="Full shape of the mock input, batch dimension included. When the graph is "
            "re-matched later, only the batch dimension may differ.",
            example=[1, 3, 224, 224],
        ),
        "type": Field(
            "string",
            default="float",
            description='Data type of the mock input: `"long"` gives int64 (never quantized), anything '
            "else float32.",
            example="long",
        ),
        "filler": Field(
            "string",
            enum=("ones", "zeros", "random"),
            default="ones",
            description="Values of the mock input (`random`: uniform in [0, 1)).",
            example="zeros",
        ),
        "keyword": Field(
            "string",
            description="Pass this input as the keyword argument of that name. Unset: passed positionally, "
            "in list order.",
            example="attention_mask",
        ),
    },
    required=("sample_size",),
    description="One model input.",
)

_MODULE_SCOPE_SYNTAX = (
    " Each entry is an exact scope, or a regular expression if it contains `{re}` (one regex can match "
    "module scopes and node names)."
)

_DEGRADATION: dict[str, Spec] = {
    "maximal_relative_accuracy_degradation": Field(
        "number", minimum=0, description="Allowed accuracy drop, in percent of the original.", example=1.0
    ),
    "maximal_absolute_accuracy_degradation": Field(
        "number", minimum=0, description="Allowed accuracy drop, in metric units.", example=0.5
    ),
}
_DEGRADATION_KEYS = tuple(_DEGRADATION)


def _epochs(default: int | None, description: str, example: int) -> Field:
    return Field("integer", default=default, minimum=0, description=description, example=example)


def _rate(default: float, description: str, example: float) -> Field:
    return Field("number", default=default, minimum=0, description=description, example=example)


_EARLY_EXIT = Obj(
    {
        "params": Obj(
            {**_DEGRADATION, "maximal_total_epochs": _epochs(None, "Fine-tuning epochs at most.", 100)},
            required=("maximal_total_epochs",),
            required_any=_DEGRADATION_KEYS,
            description="Early-exit parameters.",
        )
    },
    required=("params",),
    description="Fine-tune until the accuracy criterion is met, or stop at `maximal_total_epochs`.",
)

_ADAPTIVE = Obj(
    {
        "params": Obj(
            {
                **_DEGRADATION,
                "initial_training_phase_epochs": _epochs(None, "Epochs of the initial fine-tuning.", 10),
                "initial_compression_rate_step": _rate(0.1, "First compression-rate step.", 0.05),
                "compression_rate_step_reduction_factor": _rate(0.5, "Step shrink factor.", 0.25),
                "lr_reduction_factor": _rate(0.5, "Learning-rate factor after a step shrink.", 0.1),
                "minimal_compression_rate_step": _rate(0.025, "Stop below this step.", 0.01),
                "patience_epochs": _epochs(None, "Fine-tuning epochs per compression rate.", 5),
                "maximal_total_epochs": _epochs(10000, "Fine-tuning epochs at most.", 300),
            },
            required=("initial_training_phase_epochs", "patience_epochs"),
            required_any=_DEGRADATION_KEYS,
            description="Adaptive compression-level parameters.",
        )
    },
    required=("params",),
    description="Search the highest compression rate that meets the accuracy criterion.",
)

CONFIG = Obj(
    {
        "input_info": OneOf(
            (_INPUT_INFO, ArrayOf(_INPUT_INFO, min_items=1)),
            description="Shapes and types of the mock inputs used to trace the model (one object per "
            "`forward` argument). Optional when an init data loader is registered: its first batch is used.",
            example={"sample_size": [1, 3, 224, 224]},
        ),
        "target_device": Field(
            "string",
            enum=("ANY", "CPU", "GPU", "NPU", "TRIAL", "CPU_SPR"),
            default="ANY",
            description="Hardware whose quantization constraints apply. `ANY` and `CPU_SPR` use the CPU "
            "constraints; `NPU` also allows 4- and 2-bit weights and 4-bit activations at some ops; "
            "`TRIAL` applies none (any bit width, per-channel activations).",
            example="TRIAL",
        ),
        "compression": OneOf(
            (_ALGORITHM_SECTION, ArrayOf(_ALGORITHM_SECTION, unique_by="algorithm")),
            description="The compression algorithms to apply, as one object or a list (applied in list "
            "order), with at most one section per algorithm. Absent: no compression.",
            example=[{"algorithm": "quantization"}],
        ),
        "accuracy_aware_training": Tagged(
            "mode",
            {"early_exit": _EARLY_EXIT, "adaptive_compression_level": _ADAPTIVE},
            description="Settings of NNCF's accuracy-aware training loop.",
            example={
                "mode": "early_exit",
                "params": {"maximal_relative_accuracy_degradation": 1.0, "maximal_total_epochs": 100},
            },
        ),
        "compression_lr_multiplier": Field(
            "number",
            minimum=0,
            description="PyTorch only: multiply the gradients of all compression parameters; an algorithm "
            "section's own value wins.",
            example=10.0,
        ),
        "disable_shape_matching": Field(
            "boolean",
            default=False,
            deprecated=True,
            description="Skip input-shape matching when re-matching the graph; use "
            "`scopes_without_shape_matching` instead.",
            example=True,
        ),
        "log_dir": Field(
            "string",
            default=".",
            description="Directory for graph dumps and other logs.",
            example="runs/int8",
        ),
        "ignored_scopes": scope_list(
            "Modules not replaced by compressible versions. NNCF matches these against module scopes "
            "with original class names, such as `ResNet/Conv2d[conv1]`; they do not steer quantizer "
            "placement (use the algorithm's own `ignored_scopes`).",
            ["{re}.*AuxLogits.*", "ResNet/Conv2d[conv1]"],
            syntax=_MODULE_SCOPE_SYNTAX,
        ),
        "target_scopes": scope_list(
            "If set, only these modules are replaced by compressible versions (module scopes, as for "
            "the top-level `ignored_scopes`).",
            ["{re}ResNet/Sequential\\[layer4\\].*"],
            syntax=_MODULE_SCOPE_SYNTAX,
        ),
        "scopes_without_shape_matching": ArrayOf(
            Field("string", description="A scope.", example="Net/GRU[rnn]", syntax="scope"),
            description="Scopes whose tensors may change non-batch shapes between calls (RNNs, attention "
            "with variable length); their nodes are re-matched without comparing shapes.",
            example=["{re}.*MultiheadAttention.*"],
        ),
    },
    open=True,
    description="An NNCF config. Keys not listed here (`model`, `epochs`, ...) are allowed and ignored.",
    example={"input_info": {"sample_size": [1, 3, 224, 224]}, "compression": {"algorithm": "quantization"}},
)
"""The root of the table: the top level of a config."""


def root_spec(algorithm: str | None = None) -> Obj:
    """The table root: the whole config, or one algorithm's section.

    Raises:
        KeyError: ``algorithm`` is not an NNCF algorithm name.
    """
    if algorithm is None:
        return CONFIG
    if algorithm not in ALGORITHMS:
        raise KeyError(f"no algorithm {algorithm!r} in the field table{did_you_mean(algorithm, ALGORITHMS)}")
    return ALGORITHMS[algorithm]


def containers(spec: Spec, data: Json = None) -> Iterator[Obj | MapOf]:
    """The objects a value of ``spec`` may be, looking through unions and arrays.

    For a tagged union, ``data`` (the value, if known) picks the option.
    """
    if isinstance(spec, Obj | MapOf):
        yield spec
    elif isinstance(spec, ArrayOf):
        yield from containers(spec.items)
    elif isinstance(spec, OneOf):
        for option in spec.options:
            yield from containers(option, data)
    elif isinstance(spec, Tagged):
        tag = data.get(spec.tag) if isinstance(data, Mapping) else None
        yield from (
            [spec.options[tag]] if isinstance(tag, str) and tag in spec.options else spec.options.values()
        )


def child_spec(spec: Spec, key: str, data: Json = None) -> Spec | None:
    """The spec of ``key`` inside a value of ``spec``, or None if no such key exists."""
    for container in containers(spec, data):
        if isinstance(container, MapOf):
            return container.values
        if key in container.fields:
            return container.fields[key]
    return None


def spec_at(path: str, *, algorithm: str | None = None, under: str = "") -> Spec:
    """The spec at a dotted ``path`` (array items are looked through; a map key may be any word).

    Examples:
        >>> spec_at("bits", algorithm="quantization", under="weights").maximum
        32

    Raises:
        KeyError: The path names no field; the message suggests the closest one.
    """
    spec: Spec = root_spec(algorithm)
    walked: list[str] = []
    for key in [k for k in f"{under}.{path}".split(".") if k]:
        child = child_spec(spec, key)
        if child is None:
            known = [k for c in containers(spec) if isinstance(c, Obj) for k in c.fields]
            where = ".".join(walked) or (algorithm or "the top level")
            raise KeyError(f"no field {key!r} under {where!r} in the field table{did_you_mean(key, known)}")
        spec, walked = child, [*walked, key]
    return spec


def default_of(path: str, *, algorithm: str | None = None, under: str = "") -> Json:
    """The table default at ``path`` (a fresh copy), or None if the field has no default."""
    return copy.deepcopy(spec_at(path, algorithm=algorithm, under=under).default)
