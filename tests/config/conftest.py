"""Example configs shared by the config tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

NNCF_EXAMPLE_FILES = sorted(DATA.glob("*.json"))
"""The example configs of NNCF's classification sample (v2.17), with typical training keys."""

EXTRA_EXAMPLES: dict[str, dict[str, Any]] = {
    "sparsity_quantization_kd": {
        "input_info": [
            {"sample_size": [1, 3, 32, 32]},
            {"sample_size": [1, 7], "type": "long", "keyword": "ids"},
        ],
        "compression": [
            {
                "algorithm": "magnitude_sparsity",
                "params": {
                    "schedule": "multistep",
                    "multistep_steps": [2, 4],
                    "multistep_sparsity_levels": [0.1, 0.3, 0.5],
                },
            },
            {"algorithm": "quantization", "preset": "mixed", "overflow_fix": "first_layer_only"},
            {"algorithm": "knowledge_distillation", "type": "mse", "scale": 0.5},
        ],
    },
    "per_layer_range_and_overrides": {
        "target_device": "TRIAL",
        "log_dir": "runs/x",
        "compression": {
            "algorithm": "quantization",
            "initializer": {
                "range": [
                    {
                        "type": "percentile",
                        "params": {"min_percentile": 0.01},
                        "target_scopes": "{re}.*conv.*",
                    },
                    {
                        "type": "min_max",
                        "ignored_scopes": ["{re}.*conv.*"],
                        "target_quantizer_group": "weights",
                    },
                ]
            },
            "scope_overrides": {
                "weights": {"Net/NNCFConv2d[conv1]/conv2d_0": {"bits": 4, "mode": "asymmetric"}},
                "activations": {
                    "{re}.*relu.*": {"signed": False, "initializer": {"range": {"type": "threesigma"}}}
                },
            },
            "activations": {"unified_scale_ops": [["Net/__add___0", "Net/cat_0"]]},
            "validate_scopes": False,
        },
    },
    "accuracy_aware_pruning": {
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_relative_accuracy_degradation": 1.0,
                "initial_training_phase_epochs": 5,
                "patience_epochs": 3,
            },
        },
        "compression": {
            "algorithm": "filter_pruning",
            "params": {"interlayer_ranking_type": "learned_ranking", "legr_params": {"generations": 10}},
        },
    },
    "movement_sparsity": {
        "compression": {
            "algorithm": "movement_sparsity",
            "params": {
                "warmup_start_epoch": 1,
                "warmup_end_epoch": 3,
                "importance_regularization_factor": 0.01,
            },
            "sparse_structure_by_scopes": [
                {"mode": "block", "sparse_factors": [32, 32], "target_scopes": "{re}.*"}
            ],
        },
        "compression_lr_multiplier": 2.0,
        "scopes_without_shape_matching": ["{re}.*attention.*"],
        "disable_shape_matching": True,
    },
    "const_sparsity_and_global_scopes": {
        "ignored_scopes": "Net/Conv2d[aux]",
        "target_scopes": ["Net"],
        "compression": [
            {"algorithm": "const_sparsity"},
            {"algorithm": "rb_sparsity", "compression_lr_multiplier": 1},
        ],
    },
}
"""Configs that reach the parts of the table the NNCF examples do not."""
