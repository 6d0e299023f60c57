"""``register_default_init_args`` and the init data-loader contract.

Initialization (range init, BatchNorm adaptation, precision search) needs runtime objects: a data
loader, a loss, evaluation callbacks. They are registered *beside* the JSON config as extra structs,
never inside it, so the config stays pure data.

Examples:
    >>> from nncf_explore.config import NNCFConfig
    >>> config = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 2]}})
    >>> loader = [([0.0, 1.0], 0), ([2.0, 3.0], 1)]
    >>> config = register_default_init_args(config, loader)
    >>> init_loader = config.get_extra_struct(QuantizationRangeInitArgs).data_loader
    >>> batch = next(iter(init_loader))
    >>> init_loader.get_inputs(batch), init_loader.get_target(batch)
    ((([0.0, 1.0],), {}), 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.errors import ConfigError, DataLoaderError

if TYPE_CHECKING:
    import torch

    from nncf_explore.config.nncf_config import ExtraStruct


class InitializingDataLoader:
    """A data loader plus how to split its batches into model inputs and a target.

    The base class implements the default contract: each batch is a 2-item ``(inputs, target)``
    tuple or list, and the model is called as ``model(inputs)``. For any other batch layout, subclass
    it and override :meth:`get_inputs` and :meth:`get_target`.

    Examples:
        >>> class DictBatches(InitializingDataLoader):
        ...     def get_inputs(self, batch):
        ...         return (batch["image"],), {}
        ...     def get_target(self, batch):
        ...         return batch["label"]
        >>> loader = DictBatches([{"image": "img0", "label": 3}])
        >>> [loader.get_inputs(b) for b in loader]
        [(('img0',), {})]
    """

    def __init__(self, data_loader: Iterable[Any]) -> None:
        """Wrap ``data_loader`` (anything iterable; a ``torch.utils.data.DataLoader`` usually)."""
        self._data_loader = data_loader

    @property
    def data_loader(self) -> Iterable[Any]:
        """The wrapped loader."""
        return self._data_loader

    @property
    def batch_size(self) -> int | None:
        """The wrapped loader's ``batch_size`` (None if it has none); steps = ceil(samples / batch_size)."""
        size = getattr(self._data_loader, "batch_size", None)
        return size if isinstance(size, int) else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data_loader)

    def __len__(self) -> int:
        if not isinstance(self._data_loader, Sized):
            raise TypeError(f"the init data loader ({_type_name(self._data_loader)}) has no len()")
        return len(self._data_loader)

    def get_inputs(self, batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The ``(args, kwargs)`` to call the model with for one batch."""
        return (self._split(batch)[0],), {}

    def get_target(self, batch: Any) -> Any:
        """The target (label) of one batch, for losses such as HAWQ's criterion."""
        return self._split(batch)[1]

    def _split(self, batch: Any) -> tuple[Any, Any]:
        if isinstance(batch, tuple | list) and len(batch) == 2:
            return batch[0], batch[1]
        items = f" of {len(batch)} items" if isinstance(batch, tuple | list) else ""
        shape = f"a {_type_name(batch)}{items}"
        key = next(iter(batch), "image") if isinstance(batch, dict) else "image"
        raise DataLoaderError(
            f"the init data loader yielded {shape}, but the default contract expects a 2-item "
            "(inputs, target) tuple or list. Subclass InitializingDataLoader to say how to split a batch:\n\n"
            "    class MyInitLoader(InitializingDataLoader):\n"
            "        def get_inputs(self, batch):\n"
            f"            return (batch[{key!r}],), {{}}   # (args, kwargs) for model(*args, **kwargs)\n"
            "        def get_target(self, batch):\n"
            "            return None   # or the label, if a criterion needs it\n\n"
            "    register_default_init_args(config, MyInitLoader(train_loader))"
        )


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def wrap_dataloader_for_init(data_loader: Iterable[Any]) -> InitializingDataLoader:
    """``data_loader`` as an :class:`InitializingDataLoader` (returned as is if it already is one).

    The batch layout is checked lazily, when a batch is split, so wrapping never consumes data.

    Raises:
        DataLoaderError: ``data_loader`` is not iterable.
    """
    if isinstance(data_loader, InitializingDataLoader):
        return data_loader
    if not isinstance(data_loader, Iterable):
        raise DataLoaderError(
            f"expected an iterable data loader, such as a torch DataLoader, got {_type_name(data_loader)}"
        )
    return InitializingDataLoader(data_loader)


class _InitArgs:
    """Base of the structs below: ``get_id()`` returns the class's ``STRUCT_ID`` (NNCF's ids)."""

    STRUCT_ID: ClassVar[str]

    @classmethod
    def get_id(cls) -> str:
        """The id the struct is registered under in an :class:`NNCFConfig`."""
        return cls.STRUCT_ID


@dataclass(frozen=True)
class QuantizationRangeInitArgs(_InitArgs):
    """Data for quantizer range initialization."""

    STRUCT_ID: ClassVar[str] = "quantization_range_init_args"
    data_loader: InitializingDataLoader
    device: str | torch.device | None = None


@dataclass(frozen=True)
class BNAdaptationInitArgs(_InitArgs):
    """Data for BatchNorm statistics adaptation."""

    STRUCT_ID: ClassVar[str] = "bn_adaptation_init_args"
    data_loader: InitializingDataLoader
    device: str | torch.device | None = None


@dataclass(frozen=True)
class QuantizationPrecisionInitArgs(_InitArgs):
    """Data and loss for HAWQ; the loss is ``criterion_fn(outputs, target, criterion)``."""

    STRUCT_ID: ClassVar[str] = "quantization_precision_init_args"
    criterion_fn: Callable[[Any, Any, Any], Any]
    criterion: Callable[..., Any]
    data_loader: InitializingDataLoader
    device: str | torch.device | None = None


@dataclass(frozen=True)
class AutoQPrecisionInitArgs(_InitArgs):
    """Data and evaluation for AutoQ; ``eval_fn(model, data_loader)`` returns an accuracy."""

    STRUCT_ID: ClassVar[str] = "autoq_precision_init_args"
    data_loader: InitializingDataLoader
    eval_fn: Callable[..., Any]


@dataclass(frozen=True)
class LeGRInitArgs(_InitArgs):
    """Training and validation callbacks for the LeGR filter-ranking search."""

    STRUCT_ID: ClassVar[str] = "legr_init_args"
    train_loader: InitializingDataLoader
    train_fn: Callable[..., Any]
    val_loader: InitializingDataLoader
    val_fn: Callable[..., Any]
    train_optimizer: Any = None
    execution_parameters: Any = None


@dataclass(frozen=True)
class ModelEvaluationArgs(_InitArgs):
    """A callback ``eval_fn(model)`` that returns the model's accuracy."""

    STRUCT_ID: ClassVar[str] = "model_evaluation_args"
    eval_fn: Callable[..., Any]


@dataclass(frozen=True)
class DistributedCallbacksArgs(_InitArgs):
    """How to wrap a model for distributed training and unwrap it again (used by LeGR)."""

    STRUCT_ID: ClassVar[str] = "distributed_callbacks_args"
    wrapping_callback: Callable[[Any], Any]
    unwrapping_callback: Callable[[Any], Any]


INIT_ARGS_STRUCTS: tuple[type[_InitArgs], ...] = (
    QuantizationRangeInitArgs,
    BNAdaptationInitArgs,
    QuantizationPrecisionInitArgs,
    AutoQPrecisionInitArgs,
    LeGRInitArgs,
    ModelEvaluationArgs,
    DistributedCallbacksArgs,
)
"""Every struct :func:`register_default_init_args` may register; a new call replaces all of them."""


def register_default_init_args(
    nncf_config: NNCFConfig,
    train_loader: Iterable[Any],
    criterion: Callable[..., Any] | None = None,
    criterion_fn: Callable[[Any, Any, Any], Any] | None = None,
    train_steps_fn: Callable[..., Any] | None = None,
    validate_fn: Callable[..., Any] | None = None,
    val_loader: Iterable[Any] | None = None,
    autoq_eval_fn: Callable[..., Any] | None = None,
    model_eval_fn: Callable[..., Any] | None = None,
    distributed_callbacks: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
    execution_parameters: Any = None,
    legr_train_optimizer: Any = None,
    device: str | torch.device | None = None,
) -> NNCFConfig:
    """Register the runtime objects that initialization needs, as NNCF does; returns the same config.

    Always registers range-init and BatchNorm-adaptation data (both wrap ``train_loader`` with
    :func:`wrap_dataloader_for_init`) and distributed callbacks (DDP by default). Also registers HAWQ
    data if ``criterion`` is given (``criterion_fn`` defaults to ``criterion(outputs, target)``),
    AutoQ data if ``autoq_eval_fn`` is given (on ``val_loader``, else ``train_loader``), model
    evaluation if ``model_eval_fn`` is given, and LeGR data if ``train_steps_fn``, ``val_loader`` and
    ``validate_fn`` are all given. Every loader is stored wrapped.

    Calling it again on the same config (a re-run notebook cell) is safe: everything a previous call
    registered is replaced, so the result is as if the config were fresh. Structs that other code
    registered are kept.

    Raises:
        ConfigError: ``nncf_config`` is not an :class:`NNCFConfig`.
        DataLoaderError: ``train_loader`` is not iterable.
    """
    if not isinstance(nncf_config, NNCFConfig):
        raise ConfigError(
            f"register_default_init_args needs an NNCFConfig, got {type(nncf_config).__name__}; "
            "build one with NNCFConfig.from_dict(...) or NNCFConfig.from_json(...)"
        )
    loader = wrap_dataloader_for_init(train_loader)
    structs: list[ExtraStruct] = [
        QuantizationRangeInitArgs(loader, device),
        BNAdaptationInitArgs(loader, device),
    ]
    if train_steps_fn is not None and val_loader is not None and validate_fn is not None:
        val = wrap_dataloader_for_init(val_loader)
        structs.append(
            LeGRInitArgs(loader, train_steps_fn, val, validate_fn, legr_train_optimizer, execution_parameters)
        )
    if criterion is not None:
        structs.append(
            QuantizationPrecisionInitArgs(criterion_fn or default_criterion_fn, criterion, loader, device)
        )
    if autoq_eval_fn is not None:
        autoq_loader = wrap_dataloader_for_init(val_loader) if val_loader is not None else loader
        structs.append(AutoQPrecisionInitArgs(autoq_loader, autoq_eval_fn))
    if model_eval_fn is not None:
        structs.append(ModelEvaluationArgs(model_eval_fn))
    wrap, unwrap = distributed_callbacks or (wrap_for_distributed, unwrap_distributed)
    structs.append(DistributedCallbacksArgs(wrap, unwrap))
    for struct_type in INIT_ARGS_STRUCTS:
        nncf_config.remove_extra_struct(struct_type)
    nncf_config.register_extra_structs(structs)
    return nncf_config


def default_criterion_fn(outputs: Any, target: Any, criterion: Callable[..., Any]) -> Any:
    """The loss as NNCF computes it by default: ``criterion(outputs, target)``."""
    return criterion(outputs, target)


def wrap_for_distributed(model: Any) -> Any:
    """Default wrapping callback: ``torch.nn.parallel.DistributedDataParallel(model)``."""
    import torch  # here, not at the top: importing the config must not import torch

    return torch.nn.parallel.DistributedDataParallel(model)


def unwrap_distributed(model: Any) -> Any:
    """Default unwrapping callback: the ``.module`` of a DDP/DataParallel wrapper, else the model."""
    return getattr(model, "module", model)
