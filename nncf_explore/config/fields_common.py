"""Field groups shared by several parts of the table: scopes, BatchNorm adaptation, sparsity schedules."""

from __future__ import annotations

from nncf_explore.config.spec import ArrayOf, Field, Obj, OneOf, Spec

_SCOPE_SYNTAX = (
    " Each entry is an exact node name or quantizer id (`<node>|WEIGHT`, `<node>|OUTPUT`), or a regular "
    "expression if it contains `{re}`."
)


def scope_list(description: str, example: list[str], syntax: str = _SCOPE_SYNTAX) -> OneOf:
    """A string or an array of strings naming graph nodes (NNCF accepts both spellings)."""
    return OneOf(
        (
            Field("string", description="A single scope entry.", example=example[0], syntax="scope"),
            ArrayOf(Field("string", description="One scope entry.", example=example[0], syntax="scope")),
        ),
        description=description + syntax,
        example=example,
    )


IGNORED_SCOPES = scope_list(
    "Nodes this algorithm leaves alone (a denylist; NNCF's schema text calls it an allowlist by mistake).",
    ["{re}.*__add___\\d+", "ResNet/NNCFConv2d[conv1]/conv2d_0"],
)
TARGET_SCOPES = scope_list(
    "If set, only these nodes are compressed (an allowlist; NNCF's schema text calls it a denylist).",
    ["{re}ResNet/Sequential\\[layer4\\]/.*"],
)
VALIDATE_SCOPES = Field(
    "boolean",
    default=True,
    description="Raise an error when an `ignored_scopes` or `target_scopes` entry matches no node of the "
    "model graph. Set it to false for configs shared between models.",
    example=False,
)


def scoping_fields() -> dict[str, Spec]:
    """The scope keys every algorithm section (and each quantizer group) accepts."""
    return {
        "ignored_scopes": IGNORED_SCOPES,
        "target_scopes": TARGET_SCOPES,
        "validate_scopes": VALIDATE_SCOPES,
    }


COMPRESSION_LR_MULTIPLIER = Field(
    "number",
    minimum=0,
    inherits_top_level=True,
    description="PyTorch only: multiply the gradients of this algorithm's own parameters (scales, "
    "masks) by this value. Unset inside an algorithm section means the top-level value applies; "
    "unset everywhere means gradients are left as they are.",
    example=10.0,
)

BATCHNORM_ADAPTATION = Obj(
    {
        "num_bn_adaptation_samples": Field(
            "integer",
            default=2000,
            minimum=0,
            description="Training samples run through the compressed model (in train mode, no gradients) "
            "to re-estimate BatchNorm running statistics. Rounded up to whole batches; 0 disables "
            "the adaptation. Runs whenever an init data loader is registered.",
            example=4096,
        )
    },
    description="BatchNorm statistics adaptation after compression is applied.",
)

GENERIC_INITIALIZER = Obj(
    {"batchnorm_adaptation": BATCHNORM_ADAPTATION},
    description="Initialization run once when the algorithm is applied.",
)


def sparsity_schedule_params(schedule_default: str) -> dict[str, Spec]:
    """Scheduler parameters shared by `magnitude_sparsity` and `rb_sparsity`."""
    return {
        "schedule": Field(
            "string",
            enum=("polynomial", "exponential", "adaptive", "multistep"),
            default=schedule_default,
            description="How the sparsity level grows from `sparsity_init` to `sparsity_target`.",
            example="multistep",
        ),
        "sparsity_target": fraction(0.5, "Sparsity level reached at `sparsity_target_epoch`.", 0.7),
        "sparsity_target_epoch": epoch(90, "Epoch at which the level reaches `sparsity_target`.", 30),
        "sparsity_freeze_epoch": epoch(100, "Epoch after which masks stop changing.", 40),
        "update_per_optimizer_step": Field(
            "boolean",
            default=False,
            description="Update the level after every optimizer step instead of every epoch "
            "(function-based schedules only; needs `steps_per_epoch` to be exact in epoch 0).",
            example=True,
        ),
        "steps_per_epoch": Field(
            "integer",
            minimum=1,
            description="Optimizer steps per epoch, for `update_per_optimizer_step`. Unset: counted "
            "during the first epoch.",
            example=5000,
        ),
        "multistep_steps": ArrayOf(
            Field("integer", minimum=0, description="An epoch index.", example=30),
            default=[90],
            description="`multistep` only: epochs at which the next level of "
            "`multistep_sparsity_levels` starts.",
            example=[10, 20],
        ),
        "multistep_sparsity_levels": ArrayOf(
            Field("number", minimum=0, maximum=1, description="A sparsity level.", example=0.3),
            default=[0.1, 0.5],
            description="`multistep` only: one level more than `multistep_steps`; the first applies "
            "at once and the last overrides `sparsity_target`.",
            example=[0.1, 0.3, 0.5],
        ),
        "patience": Field(
            "integer",
            default=1,
            minimum=0,
            description="`adaptive` only: scheduler steps without improvement before the level grows.",
            example=3,
        ),
        "power": Field(
            "number", default=0.9, description="`polynomial` only: the exponent of the schedule.", example=2.0
        ),
        "concave": Field(
            "boolean",
            default=True,
            description="`polynomial` only: approach the target in a concave (true) or convex (false) curve.",
            example=False,
        ),
        "sparsity_level_setting_mode": Field(
            "string",
            enum=("global", "local"),
            default="global",
            description="`global`: one threshold over all weights of the model; `local`: the level "
            "applies to each layer separately.",
            example="local",
        ),
    }


def fraction(default: float | None, description: str, example: float) -> Field:
    """A number in [0, 1], such as a sparsity or pruning level."""
    return Field("number", default=default, minimum=0, maximum=1, description=description, example=example)


def epoch(default: int | None, description: str, example: int) -> Field:
    """A zero-based epoch index or count."""
    return Field("integer", default=default, minimum=0, description=description, example=example)
