"""``create_compressed_model``: NNCF's legacy entry point, with its signature and semantics.

Deliberate differences from NNCF 2.19 (docs/user-guide/quantization.md lists them all): the user's model
is never modified (the compressed model is a copy of it, of the same class), so calling this again on
the same model (or on the compressed model, as a re-run notebook cell does) works and gives the same
result.
"""

from __future__ import annotations

import copy
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nncf_explore.compression.algorithms import BUILDERS, BuildContext, check_section_scopes
from nncf_explore.compression.compression_state import check_compression_state, setup_from_state
from nncf_explore.compression.controller import CompositeController, ModelController
from nncf_explore.compression.init_data import batch_inputs
from nncf_explore.compression.interface import is_compressed
from nncf_explore.compression.model import compress_model, nncf_interface
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.controller import QuantizationController
from nncf_explore.compression.quantization.range_stats import traced_input_shapes
from nncf_explore.compression.quantization.settings import resolve_settings
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.compression.runtime import INTERFACE_NAME
from nncf_explore.config.init_args import BNAdaptationInitArgs, QuantizationRangeInitArgs
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.config.spec import Obj
from nncf_explore.errors import ConfigError, InitDataError
from nncf_explore.graph.inputs import make_mock_inputs
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.trace import DummyForward, trace_model
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper

SUPPORTED_ALGORITHMS = ("quantization", *BUILDERS)


def as_config(config: NNCFConfig | Mapping[str, Any]) -> NNCFConfig:
    """``config`` as a validated :class:`NNCFConfig` (a plain dict is validated and copied)."""
    if isinstance(config, NNCFConfig):
        config.validate()
        return config
    if isinstance(config, Mapping):
        return NNCFConfig.from_dict(dict(config))
    raise TypeError(f"config must be an NNCFConfig or a dict, not {type(config).__name__}")


@dataclass(frozen=True)
class _Fp32Source:
    """How to get back the FP32 model a compressed model was made from.

    ``create_compressed_model`` changes one thing in its copy besides adding quantizers:
    BatchNorm adaptation overwrites the running statistics.  ``buffers`` keeps them as they
    were; ``versions`` are the version counters of the copy's own parameters and buffers when
    it was returned.  While they are unchanged the copy has been neither trained nor edited,
    so a re-run cell can start again from exactly the same FP32 model and give the same result.
    """

    buffers: dict[str, Tensor]
    versions: dict[str, int]


_FP32_SOURCE = "_nncf_fp32_source"


def _user_tensors(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    prefix = INTERFACE_NAME + "."
    for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
        if not name.startswith(prefix):
            yield name, tensor


def _versions(model: nn.Module) -> dict[str, int]:
    return {name: tensor._version for name, tensor in _user_tensors(model)}


def fp32_model(model: nn.Module) -> nn.Module:
    """``model`` itself, or for a compressed model a plain copy of it without quantizers.

    This is what makes a re-run notebook cell (``ctrl, model = create_compressed_model(model, cfg)``)
    safe: an untouched compressed model gives back the FP32 model it was made from (BatchNorm
    statistics from before adaptation included), so the re-run gives the same result; a trained
    or edited one gives its current weights.
    """
    if not is_compressed(model):
        return model
    clean = copy.deepcopy(model)
    del clean._modules[INTERFACE_NAME]
    for attribute in ("forward", "nncf", _FP32_SOURCE):
        clean.__dict__.pop(attribute, None)
    source = model.__dict__.get(_FP32_SOURCE)
    if isinstance(source, _Fp32Source) and source.versions == _versions(model):
        with torch.no_grad():
            for name, value in source.buffers.items():
                clean.get_buffer(name).copy_(value)
        what = "compressing the FP32 model it was made from again"
    else:
        what = "it was changed since (trained or loaded), so compressing a plain copy of its current weights"
    warnings.warn(
        f"create_compressed_model got an already compressed model (a re-run notebook cell?): {what}",
        stacklevel=3,
    )
    return clean


def _init_loader(config: NNCFConfig, struct: type[Any]) -> Iterable[Any] | None:
    if not config.has_extra_struct(struct):
        return None
    loader: Iterable[Any] = config.get_extra_struct(struct).data_loader
    return loader


_NO_BATCH = object()


def _example_inputs(config: NNCFConfig, model: nn.Module) -> tuple[Args, Kwargs] | None:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if config.get("input_info") is not None:
        return make_mock_inputs(config["input_info"], device)
    loader = _init_loader(config, QuantizationRangeInitArgs) or _init_loader(config, BNAdaptationInitArgs)
    if loader is None:
        return None
    first = next(iter(loader), _NO_BATCH)
    if first is _NO_BATCH:
        raise InitDataError(
            f"input_info: the config has no input_info, so the model is traced on the init data loader's "
            f"first batch, but the loader (a {type(loader).__name__}) yielded no batch; pass a loader with "
            'data to register_default_init_args, or add e.g. "input_info": {"sample_size": [1, 3, 224, 224]}'
        )
    args, kwargs = batch_inputs(loader, first)
    return args, kwargs


def _trace(
    model: nn.Module,
    config: NNCFConfig,
    dummy_forward_fn: DummyForward | None,
    wrap_inputs_fn: InputsWrapper | None,
    wrap_outputs_fn: OutputsWrapper | None,
) -> tuple[Graph, tuple[Args, Kwargs]]:
    inputs = _example_inputs(config, model)
    if inputs is None and dummy_forward_fn is None:
        raise ConfigError(
            "input_info: the config has no input_info and no init data loader is registered, so the model "
            'cannot be traced; add e.g. "input_info": {"sample_size": [1, 3, 224, 224]}, or call '
            "register_default_init_args(config, train_loader) first"
        )
    if dummy_forward_fn is None and config.get("input_info") is None:
        # NNCF's LoaderInputInfo: trace on the init loader's first batch, inputs marked as at run time.
        args, kwargs = inputs or ((), {})
        marker = wrap_inputs_fn or _mark_tensors

        def first_batch(m: nn.Module) -> Any:
            marked_args, marked_kwargs = marker(args, kwargs)
            return m(*marked_args, **marked_kwargs)

        graph = trace_model(
            model, dummy_forward_fn=first_batch, wrap_inputs_fn=marker, wrap_outputs_fn=wrap_outputs_fn
        )
        return graph, (args, kwargs)
    graph = trace_model(
        model,
        config.get("input_info"),
        dummy_forward_fn=dummy_forward_fn,
        wrap_inputs_fn=wrap_inputs_fn,
        wrap_outputs_fn=wrap_outputs_fn,
    )
    return graph, inputs or ((), {})


def _mark_tensors(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    from nncf_explore.graph.tracking import nncf_model_input

    marked = tuple(nncf_model_input(a) if isinstance(a, torch.Tensor) else a for a in args)
    return marked, {k: nncf_model_input(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}


def _dump(graph: Graph, log_dir: str, name: str, annotations: Mapping[int, str] | None = None) -> None:
    if (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_rank()
    ):
        return
    graph.dump_dot(os.path.join(log_dir, name), annotations)


def _quantizer_setup(
    graph: Graph,
    model: nn.Module,
    config: NNCFConfig,
    section: Mapping[str, Any],
    builder_state: Mapping[str, Any] | None,
) -> QuantizerSetup:
    if builder_state is None:
        return build_quantizer_setup(graph, config, section)
    return setup_from_state(builder_state["quantization"], graph, model, resolve_settings(config, section))


def _check_algorithms(sections: list[Any]) -> None:
    for section in sections:
        if section.name not in SUPPORTED_ALGORITHMS:
            raise ConfigError(
                f"{section.path}.algorithm: {section.name!r} is valid NNCF but not implemented by "
                f"nncf_explore; supported: {list(SUPPORTED_ALGORITHMS)}"
            )


def create_compressed_model(
    model: nn.Module,
    config: NNCFConfig | Mapping[str, Any],
    compression_state: Mapping[str, Any] | None = None,
    dummy_forward_fn: Callable[[nn.Module], Any] | None = None,
    wrap_inputs_fn: InputsWrapper | None = None,
    wrap_outputs_fn: OutputsWrapper | None = None,
    dump_graphs: bool = True,
) -> tuple[ModelController, nn.Module]:
    """Compress ``model`` as ``config`` says; NNCF 2.x's legacy API.

    Args:
        model: The FP32 model, weights loaded. It is not modified.
        config: An :class:`NNCFConfig` (or a dict) with ``input_info`` and a ``compression`` section.
        compression_state: ``ctrl.get_compression_state()`` of an earlier run: rebuilds the same
            quantizers without placement or range init; then load the saved ``state_dict``.
        dummy_forward_fn: Calls the model for tracing; it marks inputs with ``nncf_model_input``
            and requires ``wrap_inputs_fn``.
        wrap_inputs_fn: ``(args, kwargs) -> (args, kwargs)`` marking the inputs of each real forward.
        wrap_outputs_fn: ``output -> output`` marking outputs.
        dump_graphs: Write ``original_graph.dot`` and ``compressed_graph.dot`` into ``log_dir``.

    Returns:
        ``(controller, compressed_model)``: the compressed model is a copy of ``model`` of the same
        class, with quantizers in ``compressed_model._nncf`` and NNCF's ``compressed_model.nncf`` API.

    Raises:
        ConfigError: The config is invalid or asks for something the model or device cannot do; the
            message names the JSON path and the fix.  Raised before any file is written.
        CompressionStateError: ``compression_state`` does not fit the config or the model (a
            ``ConfigError`` naming the path in the state).  Raised before any file is written.
        TraceError: The model could not be run on the described inputs.
        InitDataError: An init data loader is empty or yields a batch the model cannot run
            (``RangeInitError`` for range init, naming the quantizer or the batch).

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        >>> cfg = {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "quantization"}}
        >>> import warnings; warnings.simplefilter("ignore")
        >>> ctrl, qnet = create_compressed_model(net, cfg, dump_graphs=False)
        >>> sorted(ctrl.weight_quantizers)
        ['Sequential/Conv2d[0]/conv2d_0|WEIGHT']
    """
    # Every check of the config and the state comes before anything is written (the graph dumps).
    config = as_config(config)
    sections = config.algorithm_configs()
    _check_algorithms(sections)
    builder_state = None
    if compression_state is not None:
        builder_state = check_compression_state(compression_state, [s.name for s in sections])
    model = fp32_model(model)
    graph, example_inputs = _trace(model, config, dummy_forward_fn, wrap_inputs_fn, wrap_outputs_fn)
    quant = next((s for s in sections if s.name == "quantization"), None)
    setup = QuantizerSetup()
    if quant is not None:
        setup = _quantizer_setup(graph, model, config, quant.data, builder_state)
    compressed = compress_model(
        model, graph, setup, wrap_inputs_fn=wrap_inputs_fn, wrap_outputs_fn=wrap_outputs_fn
    )
    controllers: list[ModelController] = []
    for section in sections:
        if section.name == "quantization":
            controllers.append(
                _quantization(compressed, config, section.data, example_inputs, compression_state)
            )
        else:
            context = BuildContext(
                compressed, model, config, section.data, example_inputs, graph, compression_state is not None
            )
            check_section_scopes(context)
            controllers.append(BUILDERS[section.name](context))
    adapted: dict[str, Tensor] = {}
    if compression_state is None:
        adapted = _adapt_batchnorm(compressed, graph, config, sections)
    ctrl = _controller(compressed, example_inputs, controllers)
    if compression_state is not None and "ctrl_state" in compression_state:
        ctrl.load_state(dict(compression_state["ctrl_state"]))
    if dump_graphs:
        log_dir = str(config.get("log_dir", "."))
        _dump(graph, log_dir, "original_graph.dot")
        _dump(graph, log_dir, "compressed_graph.dot", nncf_interface(compressed).quantizer_annotations())
    object.__setattr__(compressed, _FP32_SOURCE, _Fp32Source(adapted, _versions(compressed)))
    return ctrl, compressed


def _controller(
    compressed: nn.Module, example_inputs: tuple[Args, Kwargs], controllers: list[ModelController]
) -> ModelController:
    if not controllers:
        return ModelController(compressed, example_inputs)
    if len(controllers) == 1:
        return controllers[0]
    return CompositeController(compressed, example_inputs, controllers)


def _quantization(
    compressed: nn.Module,
    config: NNCFConfig,
    section: Mapping[str, Any],
    example_inputs: tuple[Args, Kwargs],
    compression_state: Mapping[str, Any] | None,
) -> QuantizationController:
    settings = resolve_settings(config, section)
    loader = _init_loader(config, QuantizationRangeInitArgs)
    ctrl = QuantizationController(compressed, example_inputs, settings, section, loader)
    if compression_state is None:
        # Without a loader this warns, naming every quantizer that keeps NNCF's initial range.
        range_config = section.get("initializer", {}).get("range")
        nncf_interface(compressed).init_range(loader, range_config)
        if section.get("initializer", {}).get("precision", {}).get("type") == "hawq":
            from nncf_explore.compression.precision.initializer import run_hawq

            run_hawq(compressed, config, section, settings)
    return ctrl


def _adapt_batchnorm(
    compressed: nn.Module, graph: Graph, config: NNCFConfig, sections: list[Any]
) -> dict[str, Tensor]:
    """Run BatchNorm adaptation if a loader is registered; the BatchNorm buffers as they were before."""
    loader = _init_loader(config, BNAdaptationInitArgs)
    if loader is None or not sections:
        return {}
    from torch.nn.modules.batchnorm import _BatchNorm

    from nncf_explore.compression.batchnorm_adaptation import adapt_batchnorm

    # Algorithms without an initializer in NNCF's schema (rb_sparsity, const_sparsity, KD) ask for none.
    path = "initializer.batchnorm_adaptation.num_bn_adaptation_samples"
    asked = [int(s.get(path)) for s in sections if isinstance(s.spec, Obj) and "initializer" in s.spec.fields]
    samples = max(asked, default=0)
    if samples <= 0:
        return {}
    before = {
        f"{owner}.{name}" if owner else name: buffer.detach().clone()
        for owner, module in compressed.named_modules()
        if isinstance(module, _BatchNorm)
        for name, buffer in module.named_buffers(recurse=False)
    }
    adapt_batchnorm(compressed, loader, samples, expected=traced_input_shapes(graph))
    return before


def load_state(model: nn.Module, state_dict: Mapping[str, Any], is_resume: bool = False) -> int:
    """Load a checkpoint's ``state_dict`` into ``model``; NNCF's helper, strict when ``is_resume``.

    Accepts the dict itself or a checkpoint holding it under ``"state_dict"``; strips DDP's
    ``module.`` prefix.  Returns the number of matched keys.

    Raises:
        ConfigError: With ``is_resume``, when keys are missing or unexpected (listed in the message).
    """
    sd = state_dict.get("state_dict", state_dict)
    own = model.state_dict()
    cleaned = {(k[7:] if k.startswith("module.") and k[7:] in own else k): v for k, v in sd.items()}
    result = model.load_state_dict(cleaned, strict=False)
    if is_resume and (result.missing_keys or result.unexpected_keys):
        raise ConfigError(
            f"load_state: the checkpoint does not match the model: missing {result.missing_keys[:10]}, "
            f"unexpected {result.unexpected_keys[:10]}; create the model with the compression_state saved "
            "alongside this checkpoint"
        )
    return len([k for k in cleaned if k in own])
