"""The NNCF config: load, validate with path-aware errors, read values with defaults from one table.

Importing this package has no side effects and does not import torch.

Examples:
    >>> from nncf_explore.config import NNCFConfig
    >>> config = NNCFConfig.from_dict({"compression": {"algorithm": "quantization", "preset": "mixed"}})
    >>> quantization = config.algorithm_configs()[0]
    >>> quantization.get("preset"), quantization.get("quantize_inputs")
    ('mixed', True)
"""

from nncf_explore.config.fields import ALGORITHMS, CONFIG, default_of, spec_at
from nncf_explore.config.init_args import (
    AutoQPrecisionInitArgs,
    BNAdaptationInitArgs,
    DistributedCallbacksArgs,
    InitializingDataLoader,
    LeGRInitArgs,
    ModelEvaluationArgs,
    QuantizationPrecisionInitArgs,
    QuantizationRangeInitArgs,
    register_default_init_args,
    wrap_dataloader_for_init,
)
from nncf_explore.config.nncf_config import ExtraStruct, NNCFConfig
from nncf_explore.config.schema import build_json_schema, render_config_reference
from nncf_explore.config.sections import AlgorithmSection, ConfigView, resolve
from nncf_explore.config.validate import ConfigIssue, find_issues

__all__ = [
    "ALGORITHMS",
    "CONFIG",
    "AlgorithmSection",
    "AutoQPrecisionInitArgs",
    "BNAdaptationInitArgs",
    "ConfigIssue",
    "ConfigView",
    "DistributedCallbacksArgs",
    "ExtraStruct",
    "InitializingDataLoader",
    "LeGRInitArgs",
    "ModelEvaluationArgs",
    "NNCFConfig",
    "QuantizationPrecisionInitArgs",
    "QuantizationRangeInitArgs",
    "build_json_schema",
    "default_of",
    "find_issues",
    "register_default_init_args",
    "render_config_reference",
    "resolve",
    "spec_at",
    "wrap_dataloader_for_init",
]
