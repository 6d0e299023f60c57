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

from nncf_explore.compression.controller import CompositeController, ModelController
from nncf_explore.compression.init_data import batch_inputs
from nncf_explore.compression.interface import is_compressed
from nncf_explore.compression.model import compress_model, nncf_interface
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.controller import BUILDER_STATE_VERSION, QuantizationController
from nncf_explore.compression.quantization.settings import resolve_settings
from nncf_explore.compression.quantization.setup import QuantizerSetup
from nncf_explore.compression.runtime import INTERFACE_NAME
from nncf_explore.config.init_args import BNAdaptationInitArgs, QuantizationRangeInitArgs
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.errors import ConfigError, did_you_mean
from nncf_explore.graph.inputs import make_mock_inputs
from nncf_explore.graph.ir import Graph
from nncf_explore.graph.leaves import Args, Kwargs
from nncf_explore.graph.trace import DummyForward, trace_model
from nncf_explore.graph.tracking import InputsWrapper, OutputsWrapper

SUPPORTED_ALGORITHMS = ("quantization", "magnitude_sparsity")


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


def _example_inputs(config: NNCFConfig, model: nn.Module) -> tuple[Args, Kwargs] | None:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if config.get("input_info") is not None:
        return make_mock_inputs(config["input_info"], device)
    loader = _init_loader(config, QuantizationRangeInitArgs) or _init_loader(config, BNAdaptationInitArgs)
    if loader is None:
        return None
    args, kwargs = batch_inputs(loader, next(iter(loader)))
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


def _builder_state(compression_state: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if not isinstance(compression_state, Mapping) or "builder_state" not in compression_state:
        looks_like = (
            "a checkpoint or model state_dict"
            if isinstance(compression_state, Mapping)
            and (
                "state_dict" in compression_state
                or any(isinstance(v, Tensor) for v in compression_state.values())
            )
            else f"a {type(compression_state).__name__} without a 'builder_state' key"
        )
        raise ConfigError(
            f"compression_state is {looks_like}, not the output of ctrl.get_compression_state(); pass "
            "checkpoint['compression_state'] here and load checkpoint['state_dict'] with "
            "model.load_state_dict() afterwards"
        )
    state = compression_state["builder_state"].get(name)
    if not isinstance(state, Mapping):
        saved = sorted(compression_state["builder_state"])
        raise ConfigError(
            f"compression_state has no builder_state.{name} entry (it holds {saved}): it was saved with "
            "another config; pass the compression_state saved with this config"
        )
    return state


def _quantizer_setup(
    graph: Graph, config: NNCFConfig, section: Mapping[str, Any], compression_state: Mapping[str, Any] | None
) -> QuantizerSetup:
    if compression_state is None:
        return build_quantizer_setup(graph, config, section)
    state = _builder_state(compression_state, "quantization")
    if state.get("version") != BUILDER_STATE_VERSION:
        raise ConfigError(
            f"compression_state builder_state.quantization.version is {state.get('version')!r}; this "
            f"nncf_explore reads version {BUILDER_STATE_VERSION} (NNCF's own states are not readable)"
        )
    try:
        setup = QuantizerSetup.from_dict(state["quantizer_setup"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"compression_state builder_state.quantization.quantizer_setup is malformed "
            f"({type(exc).__name__}: {exc}); pass the compression_state exactly as get_compression_state() "
            "returned it"
        ) from exc
    missing = [p.target_node for p in setup if p.target_node not in graph]
    if missing:
        suggestion = did_you_mean(missing[0], (n.name for n in graph.nodes))
        raise ConfigError(
            "compression_state places quantizers on nodes this model's graph does not have "
            f"({len(missing)} of them, e.g. {missing[0]!r}{suggestion}). It was saved for another model or "
            "other input_info; "
            "create the model without compression_state, or with the model and config it was saved with"
        )
    return setup


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
            message names the JSON path and the fix.
        TraceError: The model could not be run on the described inputs.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        >>> cfg = {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "quantization"}}
        >>> import warnings; warnings.simplefilter("ignore")
        >>> ctrl, qnet = create_compressed_model(net, cfg, dump_graphs=False)
        >>> sorted(ctrl.weight_quantizers)
        ['Sequential/Conv2d[0]/conv2d_0|WEIGHT']
    """
    config = as_config(config)
    model = fp32_model(model)
    graph, example_inputs = _trace(model, config, dummy_forward_fn, wrap_inputs_fn, wrap_outputs_fn)
    log_dir = str(config.get("log_dir", "."))
    if dump_graphs:
        _dump(graph, log_dir, "original_graph.dot")
    sections = config.algorithm_configs()
    for section in sections:
        if section.name not in SUPPORTED_ALGORITHMS:
            raise ConfigError(
                f"{section.path}.algorithm: {section.name!r} is valid NNCF but not implemented by "
                f"nncf_explore; supported: {list(SUPPORTED_ALGORITHMS)}"
            )
    quant = next((s for s in sections if s.name == "quantization"), None)
    setup = QuantizerSetup()
    if quant is not None:
        setup = _quantizer_setup(graph, config, quant.data, compression_state)
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
            controllers.append(_sparsity(compressed, config, section.data, example_inputs, graph))
    adapted: dict[str, Tensor] = {}
    if compression_state is None:
        adapted = _adapt_batchnorm(compressed, config, sections)
    ctrl = _controller(compressed, example_inputs, controllers)
    if compression_state is not None and "ctrl_state" in compression_state:
        ctrl.load_state(compression_state["ctrl_state"])
    if dump_graphs:
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
    return ctrl


def _sparsity(
    compressed: nn.Module,
    config: NNCFConfig,
    section: Mapping[str, Any],
    example_inputs: tuple[Args, Kwargs],
    graph: Graph,
) -> ModelController:
    from nncf_explore.compression.sparsity_controller import MagnitudeSparsityController

    return MagnitudeSparsityController(compressed, example_inputs, section, graph)


def _adapt_batchnorm(compressed: nn.Module, config: NNCFConfig, sections: list[Any]) -> dict[str, Tensor]:
    """Run BatchNorm adaptation if a loader is registered; the BatchNorm buffers as they were before."""
    loader = _init_loader(config, BNAdaptationInitArgs)
    if loader is None or not sections:
        return {}
    from torch.nn.modules.batchnorm import _BatchNorm

    from nncf_explore.compression.batchnorm_adaptation import adapt_batchnorm

    samples = max(int(s.get("initializer.batchnorm_adaptation.num_bn_adaptation_samples")) for s in sections)
    if samples <= 0:
        return {}
    before = {
        f"{owner}.{name}" if owner else name: buffer.detach().clone()
        for owner, module in compressed.named_modules()
        if isinstance(module, _BatchNorm)
        for name, buffer in module.named_buffers(recurse=False)
    }
    adapt_batchnorm(compressed, loader, samples)
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
