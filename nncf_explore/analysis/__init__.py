"""Where quantization hurts: per-quantizer and per-node measures, and the bit widths to choose.

Every measure is addressed by quantizer id and by node name, the names of the
traced graph, so the Explorer can draw it on the graph and a config can act on
it.  :class:`Sensitivity` is the one entry point; it caches each measure per
setup and data.
"""

from nncf_explore.analysis.ablation import AblationResult, AblationRun
from nncf_explore.analysis.quant_error import (
    NodeError,
    QuantizationErrorReport,
    TensorError,
    measure_quantization_error,
)
from nncf_explore.analysis.sensitivity import MEASURES, Sensitivity
from nncf_explore.compression.precision.hessian import HessianTraces, hessian_traces, weight_perturbations
from nncf_explore.compression.precision.mixed_precision import MixedPrecisionFront, mixed_precision_front

__all__ = [
    "MEASURES",
    "AblationResult",
    "AblationRun",
    "HessianTraces",
    "MixedPrecisionFront",
    "NodeError",
    "QuantizationErrorReport",
    "Sensitivity",
    "TensorError",
    "hessian_traces",
    "measure_quantization_error",
    "mixed_precision_front",
    "weight_perturbations",
]
