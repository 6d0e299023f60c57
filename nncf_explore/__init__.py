"""nncf_explore: NNCF's legacy ``create_compressed_model`` API, and an Explorer to see and edit quantization.

Names are imported on first use (PEP 562), so ``import nncf_explore`` is cheap,
changes nothing in torch, and ``nncf_explore.config`` works without torch.

Examples:
    >>> import torch
    >>> from nncf_explore import NNCFConfig, create_compressed_model
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> config = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 4]},
    ...                                "compression": {"algorithm": "quantization"}})
    >>> ctrl, qmodel = create_compressed_model(model, config, dump_graphs=False)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "trace_model": "nncf_explore.graph.trace",
    "Graph": "nncf_explore.graph.ir",
    "NNCFGraph": "nncf_explore.graph.ir",
    "Node": "nncf_explore.graph.ir",
    "Edge": "nncf_explore.graph.ir",
    "nncf_model_input": "nncf_explore.graph.tracking",
    "nncf_model_output": "nncf_explore.graph.tracking",
    "names_match": "nncf_explore.graph.scope",
    "NNCFConfig": "nncf_explore.config.nncf_config",
    "register_default_init_args": "nncf_explore.config.init_args",
    "InitializingDataLoader": "nncf_explore.config.init_args",
    "QuantizerSpec": "nncf_explore.compression.quantization.spec",
    "QuantizerSetup": "nncf_explore.compression.quantization.setup",
    "QuantizationPoint": "nncf_explore.compression.quantization.setup",
    "build_quantizer_setup": "nncf_explore.compression.quantization.build",
    "config_from_setup": "nncf_explore.compression.quantization.config_gen",
    "create_compressed_model": "nncf_explore.compression.api",
    "kernel_status": "nncf_explore.compression.quantization.kernel",
    "KernelStatus": "nncf_explore.compression.quantization.kernel",
    "load_state": "nncf_explore.compression.api",
    "CompressionStage": "nncf_explore.compression.controller",
    "EditSession": "nncf_explore.compression.editing",
    "Explorer": "nncf_explore.widgets.explorer",
    "ConfigError": "nncf_explore.errors",
    "TraceError": "nncf_explore.errors",
    "GraphError": "nncf_explore.errors",
    "NNCFExploreError": "nncf_explore.errors",
}

__all__ = [
    "CompressionStage",
    "ConfigError",
    "Edge",
    "EditSession",
    "Explorer",
    "Graph",
    "GraphError",
    "InitializingDataLoader",
    "KernelStatus",
    "NNCFConfig",
    "NNCFExploreError",
    "NNCFGraph",
    "Node",
    "QuantizationPoint",
    "QuantizerSetup",
    "QuantizerSpec",
    "TraceError",
    "build_quantizer_setup",
    "config_from_setup",
    "create_compressed_model",
    "kernel_status",
    "load_state",
    "names_match",
    "nncf_model_input",
    "nncf_model_output",
    "register_default_init_args",
    "trace_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nncf_explore' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        if not module.startswith("nncf_explore.widgets"):
            raise
        raise ImportError(
            f"nncf_explore.{name} needs the widget libraries ({exc}); install them with "
            "pip install 'nncf-explore[widgets]' (ipywidgets, plotly, anywidget)"
        ) from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from nncf_explore.compression.api import create_compressed_model, load_state
    from nncf_explore.compression.controller import CompressionStage
    from nncf_explore.compression.editing import EditSession
    from nncf_explore.compression.quantization.build import build_quantizer_setup
    from nncf_explore.compression.quantization.config_gen import config_from_setup
    from nncf_explore.compression.quantization.kernel import KernelStatus, kernel_status
    from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
    from nncf_explore.compression.quantization.spec import QuantizerSpec
    from nncf_explore.config.init_args import InitializingDataLoader, register_default_init_args
    from nncf_explore.config.nncf_config import NNCFConfig
    from nncf_explore.errors import ConfigError, GraphError, NNCFExploreError, TraceError
    from nncf_explore.graph.ir import Edge, Graph, NNCFGraph, Node
    from nncf_explore.graph.scope import names_match
    from nncf_explore.graph.trace import trace_model
    from nncf_explore.graph.tracking import nncf_model_input, nncf_model_output
    from nncf_explore.widgets.explorer import Explorer
