"""The `"algorithm": "quantization"` section of the field table (NNCF 2.19 legacy PyTorch)."""

from __future__ import annotations

from nncf_explore.config.fields_common import (
    BATCHNORM_ADAPTATION,
    COMPRESSION_LR_MULTIPLIER,
    IGNORED_SCOPES,
    TARGET_SCOPES,
    VALIDATE_SCOPES,
    epoch,
    scoping_fields,
)
from nncf_explore.config.spec import ArrayOf, Field, MapOf, Obj, OneOf, Spec, TupleOf

_QUANTIZER_ID = "ResNet/NNCFConv2d[conv1]/conv2d_0|WEIGHT"


def _bits(default: int | None, description: str) -> Field:
    # NNCF's schema allows any number; hardware constraints (e.g. 8 bits on CPU) are checked later.
    return Field("integer", default=default, minimum=1, maximum=32, description=description, example=4)


def _quantizer_fields(*, group: bool) -> dict[str, Spec]:
    """`mode`/`bits`/`signed`/`per_channel`; a group has defaults, a scope override has none."""
    return {
        "mode": Field(
            "string",
            enum=("symmetric", "asymmetric"),
            description="Quantization mode. Unset: chosen by `preset` (`performance`: symmetric "
            "everywhere; `mixed`: asymmetric activations), or symmetric without a preset.",
            example="asymmetric",
        ),
        "bits": _bits(
            8 if group else None,
            "Bit width. `initializer.precision` overrides it; the target device's hardware "
            "config may reject widths it does not support (use `target_device: TRIAL` for any width).",
        ),
        "signed": Field(
            "boolean",
            description="Force a signed (true) or unsigned (false) quantization range. Unset: decided by "
            "range-initialization statistics (signed if the minimum is negative).",
            example=True,
        ),
        "per_channel": Field(
            "boolean",
            description="One scale per output channel (weights: dim 0; activations: dim 1) instead of one "
            "per tensor. Unset: the target device's hardware config decides (weights per-channel, "
            "activations per-tensor on ANY/CPU/GPU); with `TRIAL`, per-tensor.",
            example=False,
        ),
    }


_RANGE_COMMON: dict[str, Spec] = {
    "num_init_samples": Field(
        "integer",
        default=256,
        minimum=0,
        description="Training samples used to collect statistics for the initial quantizer ranges "
        "(rounded up to whole batches). 0 disables range initialization.",
        example=850,
    ),
    "type": Field(
        "string",
        enum=("mixed_min_max", "min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile"),
        default="mixed_min_max",
        description="Statistic that sets the range: `mixed_min_max` (per-sample reduction for per-tensor "
        "activations, plain min/max otherwise), `min_max` (global min/max), `mean_min_max` (mean of "
        "per-batch min/max), `threesigma` (median ± 3 MAD), `percentile` (percentiles of all samples), "
        "`mean_percentile` (mean of per-batch percentiles).",
        example="percentile",
    ),
    "params": Obj(
        {
            "min_percentile": Field(
                "number",
                default=0.1,
                minimum=0,
                maximum=100,
                description="`percentile` types only: percentile used as the range minimum.",
                example=0.01,
            ),
            "max_percentile": Field(
                "number",
                default=99.9,
                minimum=0,
                maximum=100,
                description="`percentile` types only: percentile used as the range maximum.",
                example=99.99,
            ),
        },
        description="Parameters of the range statistic.",
    ),
}

_RANGE_GLOBAL = Obj(_RANGE_COMMON, description="One range-initialization setting for all quantizers.")

_RANGE_PER_LAYER = Obj(
    {
        **_RANGE_COMMON,
        "ignored_scopes": IGNORED_SCOPES,
        "target_scopes": TARGET_SCOPES,
        "validate_scopes": VALIDATE_SCOPES,
        "target_quantizer_group": Field(
            "string",
            enum=("activations", "weights"),
            description="Restrict this entry to activation or weight quantizers. Unset: both.",
            example="activations",
        ),
    },
    required_any=("target_scopes", "ignored_scopes"),
    description="Range initialization for the quantizers matched by this entry's scopes.",
    example={"target_scopes": ["{re}.*conv.*"], "type": "percentile"},
)

RANGE_INIT = OneOf(
    (_RANGE_GLOBAL, ArrayOf(_RANGE_PER_LAYER, min_items=1)),
    description="Initial quantizer ranges from statistics over a registered data loader: one object for "
    "all quantizers, or a list of per-scope entries (a quantizer may match at most one entry). Absent "
    "with a loader registered: the defaults apply; absent without a loader: no range initialization.",
    example={"num_init_samples": 850},
)

_PRECISION = Obj(
    {
        "type": Field(
            "string",
            enum=("hawq", "autoq", "manual"),
            default="manual",
            description="`hawq`: Hessian-trace based search under a bit-complexity budget (needs a "
            "criterion); `autoq`: NNCF's reinforcement-learning search, not implemented (refused, pointing "
            "to `hawq` and the budget search); `manual`: take `bitwidth_per_scope` as given.",
            example="hawq",
        ),
        "bits": ArrayOf(
            _bits(None, "A candidate bit width."),
            default=[2, 4, 8],
            min_items=1,
            description="Candidate bit widths; overrides `bits` of the `weights`/`activations` groups.",
            example=[4, 8],
        ),
        "num_data_points": Field(
            "integer",
            default=100,
            minimum=1,
            description="HAWQ: data points for the Hessian trace.",
            example=200,
        ),
        "iter_number": Field(
            "integer",
            minimum=0,
            default_by=("type", {"hawq": 200, "autoq": 0}),
            description="HAWQ: maximum Hutchinson iterations per trace; AutoQ: search iterations.",
            example=100,
        ),
        "tolerance": Field(
            "number",
            default=1e-4,
            minimum=0,
            description="HAWQ: relative tolerance that stops the Hutchinson iterations.",
            example=1e-5,
        ),
        "compression_ratio": Field(
            "number",
            minimum=0,
            default_by=("type", {"hawq": 1.5, "autoq": 0.15}),
            description="HAWQ: minimum ratio of the all-INT8 bit complexity (FLOPs × bits) to the "
            "mixed-precision one. AutoQ: target model size relative to FP32 (INT8 = 0.25).",
            example=1.4,
        ),
        "eval_subset_ratio": Field(
            "number",
            default=1.0,
            minimum=0,
            maximum=1,
            description="AutoQ: fraction of the evaluation loader used per search iteration.",
            example=0.5,
        ),
        "warmup_iter_number": Field(
            "integer",
            default=20,
            minimum=0,
            description="AutoQ: random policies tried first to fill the replay buffer.",
            example=5,
        ),
        "bitwidth_per_scope": ArrayOf(
            TupleOf(
                (
                    _bits(None, "The bit width."),
                    Field(
                        "string", description="A quantizer id.", example=_QUANTIZER_ID, syntax="quantizer_id"
                    ),
                ),
                description="A `[bits, quantizer id]` pair.",
                example=[4, _QUANTIZER_ID],
            ),
            description="`manual`: bit width per quantizer. An id such as `<node>|WEIGHT` or `<node>|OUTPUT` "
            "applies to the first quantizer whose insertion point contains it.",
            example=[[4, _QUANTIZER_ID], [8, "ResNet/ReLU[relu]/relu__0|OUTPUT"]],
        ),
        "traces_per_layer_path": Field(
            "string",
            description="HAWQ: the `hawq_traces.json` an earlier run wrote with "
            "`dump_init_precision_data` (traces by quantizer id), to skip recomputing them.",
            example="logs/hawq_traces.json",
        ),
        "dump_init_precision_data": Field(
            "boolean",
            default=False,
            description="HAWQ: write `hawq_traces.json` (reusable as `traces_per_layer_path`) and "
            "`hawq_bits.json` (the chosen bits, the ratio reached and the front) to `log_dir`.",
            example=True,
        ),
        "bitwidth_assignment_mode": Field(
            "string",
            enum=("strict", "liberal"),
            default="liberal",
            description="`strict`: quantizers feeding the same module get the same width; `liberal`: "
            "they may differ.",
            example="strict",
        ),
    },
    description="Mixed-precision search: choose a bit width per quantizer.",
    example={"type": "hawq", "bits": [4, 8], "compression_ratio": 1.4},
)

_INITIALIZER = Obj(
    {"range": RANGE_INIT, "batchnorm_adaptation": BATCHNORM_ADAPTATION, "precision": _PRECISION},
    description="Initialization run once when quantization is applied.",
)


def _group(*, activations: bool) -> Obj:
    extra: dict[str, Spec] = {}
    if activations:
        extra["unified_scale_ops"] = ArrayOf(
            ArrayOf(Field("string", description="A node name.", example="Net/__add___0", syntax="scope")),
            description="Groups of node names whose activation inputs share one quantizer (and scale).",
            example=[["Net/Conv2d[a]/conv2d_0", "Net/Conv2d[b]/conv2d_0"]],
        )
    return Obj(
        {
            **_quantizer_fields(group=True),
            "logarithm_scale": Field(
                "boolean", default=False, description="Train log(scale) instead of scale.", example=True
            ),
            **scoping_fields(),
            **extra,
        },
        description=f"Settings for {'activation' if activations else 'weight'} quantizers only.",
        example={"mode": "asymmetric", "per_channel": not activations, "bits": 8},
    )


_OVERRIDE = Obj(
    {**_quantizer_fields(group=False), "initializer": Obj({"range": RANGE_INIT}, description="Range init.")},
    description="Settings for the quantizers whose node matches the key.",
)

_STAGED_PARAMS = Obj(
    {
        "activations_quant_start_epoch": epoch(1, "Epoch from which activations are quantized.", 3),
        "weights_quant_start_epoch": epoch(1, "Epoch from which weights are quantized.", 12),
        "batch_multiplier": Field(
            "integer", minimum=1, description="Training script: batches per optimizer step.", example=1
        ),
        "lr_poly_drop_start_epoch": epoch(None, "Training script: epoch the learning-rate drop starts.", 20),
        "lr_poly_drop_duration_epochs": epoch(30, "Training script: length of the learning-rate drop.", 10),
        "disable_wd_start_epoch": epoch(None, "Training script: epoch weight decay is switched off.", 20),
        "base_lr": Field(
            "number", default=1e-3, minimum=0, description="Training script: base lr.", example=3.1e-4
        ),
        "base_wd": Field(
            "number", default=1e-5, minimum=0, description="Training script: weight decay.", example=0
        ),
    },
    description="Staged quantization: quantizers stay disabled until their start epoch, then are enabled "
    "and range initialization runs again. Its presence selects the staged scheduler (defaults make epoch "
    "0 run in FP32). Only the two `*_quant_start_epoch` keys are read by the algorithm.",
    example={"activations_quant_start_epoch": 3, "weights_quant_start_epoch": 12},
)

QUANTIZATION = Obj(
    {
        "initializer": _INITIALIZER,
        "preset": Field(
            "string",
            enum=("performance", "mixed"),
            default="performance",
            description="`performance`: symmetric weights and activations; `mixed`: symmetric weights, "
            "asymmetric activations. Explicit `mode` values win. Not allowed with `target_device: NPU`.",
            example="mixed",
        ),
        "weights": _group(activations=False),
        "activations": _group(activations=True),
        "quantize_inputs": Field(
            "boolean",
            default=True,
            description="Quantize the model inputs (float inputs only).",
            example=False,
        ),
        "quantize_outputs": Field(
            "boolean", default=False, description="Also quantize the model outputs.", example=True
        ),
        "scope_overrides": Obj(
            {
                "weights": MapOf(_OVERRIDE, key_name="scope", description="Weight quantizer overrides."),
                "activations": MapOf(
                    _OVERRIDE, key_name="scope", description="Activation quantizer overrides."
                ),
            },
            description="Per-node settings that win over group settings. Keys use the scope syntax of "
            "`ignored_scopes` (exact name or `{re}` regex).",
            example={"activations": {"{re}.*conv_first.*": {"mode": "asymmetric"}}},
        ),
        "overflow_fix": Field(
            "string",
            enum=("enable", "disable", "first_layer_only"),
            default="enable",
            description="On CPU/ANY, use 7-bit INT8 weight ranges to avoid saturation in some CPU kernels: "
            "on all layers, none, or the first convolution only.",
            example="first_layer_only",
        ),
        "export_to_onnx_standard_ops": Field(
            "boolean",
            default=False,
            deprecated=True,
            description="Export QuantizeLinear/DequantizeLinear pairs (8-bit only) instead of FakeQuantize.",
            example=True,
        ),
        "params": _STAGED_PARAMS,
        **scoping_fields(),
        "compression_lr_multiplier": COMPRESSION_LR_MULTIPLIER,
    },
    description="Quantization-aware training: fake-quantize weights and activations.",
    example={
        "algorithm": "quantization",
        "initializer": {"range": {"num_init_samples": 850}},
        "weights": {"per_channel": True},
    },
)
