"""Field-table sections of the algorithms other than quantization (sparsity, pruning, distillation).

They are listed so that every config NNCF 2.19 accepts also loads here; whether an algorithm can be
run is decided by the compression package.
"""

from __future__ import annotations

from nncf_explore.config.fields_common import (
    COMPRESSION_LR_MULTIPLIER,
    GENERIC_INITIALIZER,
    TARGET_SCOPES,
    epoch,
    fraction,
    scoping_fields,
    sparsity_schedule_params,
)
from nncf_explore.config.spec import ArrayOf, Field, Obj

_SPARSITY_INIT = fraction(0.0, "Sparsity level applied when the algorithm starts.", 0.02)

MAGNITUDE_SPARSITY = Obj(
    {
        "sparsity_init": _SPARSITY_INIT,
        "initializer": GENERIC_INITIALIZER,
        "params": Obj(
            {
                **sparsity_schedule_params("polynomial"),
                "weight_importance": Field(
                    "string",
                    enum=("abs", "normed_abs"),
                    default="normed_abs",
                    description="How weights are ranked before thresholding: absolute value, or absolute "
                    "value normalised per layer.",
                    example="abs",
                ),
            },
            description="Sparsity schedule.",
        ),
        **scoping_fields(),
    },
    description="Zero the weights of smallest magnitude, following a schedule.",
    example={
        "algorithm": "magnitude_sparsity",
        "params": {"sparsity_target": 0.5, "sparsity_target_epoch": 10},
    },
)

RB_SPARSITY = Obj(
    {
        "sparsity_init": _SPARSITY_INIT,
        "params": Obj(sparsity_schedule_params("exponential"), description="Sparsity schedule."),
        **scoping_fields(),
        "compression_lr_multiplier": COMPRESSION_LR_MULTIPLIER,
    },
    description="Regularization-based sparsity: learn which weights to zero with a sparsity loss.",
    example={
        "algorithm": "rb_sparsity",
        "sparsity_init": 0.02,
        "params": {"sparsity_target": 0.61, "sparsity_target_epoch": 5, "sparsity_freeze_epoch": 10},
    },
)

CONST_SPARSITY = Obj(
    scoping_fields(),
    description="Keep the sparsity masks of a loaded checkpoint unchanged (no parameters).",
    example={"algorithm": "const_sparsity"},
)

_LEGR = Obj(
    {
        "generations": Field(
            "integer", default=400, minimum=1, description="Evolution generations.", example=200
        ),
        "train_steps": Field(
            "integer", default=200, minimum=0, description="Steps per accuracy estimate.", example=100
        ),
        "max_pruning": fraction(0.8, "Highest pruning level the ranking is trained for.", 0.6),
        "random_seed": Field("integer", default=42, description="Seed for the coefficients.", example=0),
        "population_size": Field(
            "integer", default=64, minimum=1, description="Evolution population.", example=32
        ),
        "num_samples": Field("integer", default=16, minimum=1, description="Evolution samples.", example=8),
        "mutate_percent": fraction(0.1, "Share of coefficients mutated.", 0.2),
        "scale_sigma": Field("number", default=1, minimum=0, description="Mutation scale.", example=0.5),
    },
    description="LeGR (`learned_ranking`) search parameters.",
)

FILTER_PRUNING = Obj(
    {
        "pruning_init": fraction(0.0, "Pruning level applied when the algorithm starts.", 0.1),
        "initializer": GENERIC_INITIALIZER,
        "params": Obj(
            {
                "schedule": Field(
                    "string",
                    enum=("exponential", "exponential_with_bias", "baseline"),
                    default="exponential",
                    description="How the pruning level grows from `pruning_init` to the target.",
                    example="baseline",
                ),
                "pruning_target": fraction(0.5, "Share of filters pruned at the end.", 0.4),
                "pruning_flops_target": fraction(
                    None, "Target share of FLOPs removed (instead of filters).", 0.3
                ),
                "pruning_steps": epoch(100, "Epochs over which the level grows to the target.", 20),
                "num_init_steps": epoch(0, "Epochs of training before pruning starts.", 1),
                "filter_importance": Field(
                    "string",
                    enum=("L2", "L1", "geometric_median"),
                    default="L2",
                    description="Filter ranking criterion.",
                    example="geometric_median",
                ),
                "interlayer_ranking_type": Field(
                    "string",
                    enum=("unweighted_ranking", "learned_ranking"),
                    default="unweighted_ranking",
                    description="How filters of different layers are compared (`learned_ranking` = LeGR).",
                    example="learned_ranking",
                ),
                "all_weights": Field(
                    "boolean",
                    default=False,
                    description="Rank filters across all layers at once.",
                    example=True,
                ),
                "prune_first_conv": Field(
                    "boolean", default=False, description="Also prune the first convolutions.", example=True
                ),
                "prune_downsample_convs": Field(
                    "boolean",
                    default=False,
                    description="Also prune convolutions with stride > 1.",
                    example=True,
                ),
                "prune_batch_norms": Field(
                    "boolean",
                    default=True,
                    description="Prune the BatchNorm channels that follow pruned filters.",
                    example=False,
                ),
                "legr_params": _LEGR,
                "save_ranking_coeffs_path": Field(
                    "string", description="Where to save LeGR coefficients.", example="coeffs.json"
                ),
                "load_ranking_coeffs_path": Field(
                    "string",
                    description="LeGR coefficients to load instead of searching.",
                    example="coeffs.json",
                ),
            },
            description="Pruning schedule and ranking.",
        ),
        **scoping_fields(),
    },
    description="Remove whole convolution filters, following a schedule.",
    example={"algorithm": "filter_pruning", "pruning_init": 0.1, "params": {"pruning_target": 0.5}},
)

KNOWLEDGE_DISTILLATION = Obj(
    {
        "type": Field(
            "string",
            enum=("mse", "softmax"),
            description="Distillation loss between the compressed model and its uncompressed copy.",
            example="softmax",
        ),
        "scale": Field(
            "number", default=1.0, description="Multiplier of the distillation loss.", example=0.5
        ),
        "temperature": Field(
            "number",
            default=1.0,
            minimum=0,
            description="`softmax` only: logit softening temperature.",
            example=2.0,
        ),
    },
    required=("type",),
    description="Add a distillation loss towards the uncompressed model; combine with another algorithm.",
    example={"algorithm": "knowledge_distillation", "type": "softmax"},
)

_MOVEMENT_STRUCTURE = Obj(
    {
        "mode": Field(
            "string",
            enum=("fine", "block", "per_dim"),
            description="Sparsity granularity for the matched layers.",
            example="block",
        ),
        "sparse_factors": ArrayOf(
            Field("integer", minimum=1, description="Block size along one dimension.", example=32),
            description="`block` only: the block shape.",
            example=[32, 32],
        ),
        "axis": Field("integer", description="`per_dim` only: the dimension sparsified.", example=0),
        "target_scopes": TARGET_SCOPES,
    },
    required=("mode", "target_scopes"),
    description="A sparsity structure for the layers matched by `target_scopes`.",
)

MOVEMENT_SPARSITY = Obj(
    {
        "params": Obj(
            {
                "warmup_start_epoch": epoch(None, "First epoch of the warm-up stage.", 1),
                "warmup_end_epoch": epoch(None, "Epoch after the warm-up stage.", 4),
                "importance_regularization_factor": Field(
                    "number", minimum=0, description="Weight of the importance regularization.", example=0.01
                ),
                "enable_structured_masking": Field(
                    "boolean", default=True, description="Structured masks after warm-up.", example=False
                ),
                "power": Field("number", default=3.0, description="Polynomial decay power.", example=2.0),
                "init_importance_threshold": Field(
                    "number",
                    description="Initial importance threshold. Unset: chosen automatically.",
                    example=-0.1,
                ),
                "final_importance_threshold": Field(
                    "number", default=0.0, description="Final importance threshold.", example=0.1
                ),
                "steps_per_epoch": Field("integer", minimum=1, description="Steps per epoch.", example=1000),
            },
            required=("warmup_start_epoch", "warmup_end_epoch", "importance_regularization_factor"),
            description="Movement-sparsity scheduler.",
        ),
        "sparse_structure_by_scopes": ArrayOf(
            _MOVEMENT_STRUCTURE, description="Per-scope sparsity structure."
        ),
        **scoping_fields(),
        "compression_lr_multiplier": COMPRESSION_LR_MULTIPLIER,
    },
    description="Experimental movement sparsity for transformers.",
    example={
        "algorithm": "movement_sparsity",
        "params": {"warmup_start_epoch": 1, "warmup_end_epoch": 4, "importance_regularization_factor": 0.01},
    },
)
