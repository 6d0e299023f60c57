"""register_default_init_args and the init data-loader contract."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nncf_explore.config import (
    AutoQPrecisionInitArgs,
    BNAdaptationInitArgs,
    DistributedCallbacksArgs,
    InitializingDataLoader,
    LeGRInitArgs,
    ModelEvaluationArgs,
    NNCFConfig,
    QuantizationPrecisionInitArgs,
    QuantizationRangeInitArgs,
    register_default_init_args,
    wrap_dataloader_for_init,
)
from nncf_explore.errors import ConfigError, DataLoaderError


def tensor_loader(batch_size: int = 4) -> DataLoader[Any]:
    dataset = TensorDataset(torch.randn(10, 3), torch.arange(10))
    return DataLoader(dataset, batch_size=batch_size)


def fresh_config() -> NNCFConfig:
    return NNCFConfig.from_dict({"input_info": {"sample_size": [1, 3]}})


def test_default_contract_splits_two_item_batches() -> None:
    loader = wrap_dataloader_for_init(tensor_loader())
    batch = next(iter(loader))
    args, kwargs = loader.get_inputs(batch)
    assert kwargs == {} and len(args) == 1 and args[0].shape == (4, 3)
    assert torch.equal(loader.get_target(batch), torch.arange(4))
    assert loader.batch_size == 4 and len(loader) == 3


def test_wrapping_is_idempotent_and_keeps_subclasses() -> None:
    class Custom(InitializingDataLoader):
        def get_inputs(self, batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (), {"x": batch}

    custom = Custom([1, 2])
    assert wrap_dataloader_for_init(custom) is custom
    wrapped = wrap_dataloader_for_init([(1, 2)])
    assert wrap_dataloader_for_init(wrapped) is wrapped
    assert custom.get_inputs(1) == ((), {"x": 1})


def test_bad_batches_fail_lazily_with_the_fix() -> None:
    loader = wrap_dataloader_for_init([{"image": torch.zeros(1), "label": 0}])
    batch = next(iter(loader))
    with pytest.raises(DataLoaderError) as info:
        loader.get_inputs(batch)
    message = str(info.value)
    assert "yielded a dict," in message
    assert "class MyInitLoader(InitializingDataLoader)" in message
    assert "return (batch['image'],), {}" in message
    with pytest.raises(DataLoaderError, match="a tuple of 3 items"):
        wrap_dataloader_for_init([(1, 2, 3)]).get_target((1, 2, 3))


def test_non_iterable_loader_fails_at_once() -> None:
    with pytest.raises(DataLoaderError, match="expected an iterable data loader"):
        wrap_dataloader_for_init(42)  # type: ignore[arg-type]


def test_batch_size_of_loaders_without_one() -> None:
    assert wrap_dataloader_for_init([(1, 2)]).batch_size is None
    sampler_loader = DataLoader(TensorDataset(torch.zeros(4, 1)), batch_sampler=[[0, 1], [2, 3]])
    assert wrap_dataloader_for_init(sampler_loader).batch_size is None


def test_minimal_registration() -> None:
    config = fresh_config()
    loader = tensor_loader()
    assert register_default_init_args(config, loader, device="cpu") is config
    range_args = config.get_extra_struct(QuantizationRangeInitArgs)
    bn_args = config.get_extra_struct(BNAdaptationInitArgs)
    assert range_args.data_loader is bn_args.data_loader
    assert range_args.data_loader.data_loader is loader and range_args.device == "cpu"
    assert config.has_extra_struct(DistributedCallbacksArgs)
    for absent in (QuantizationPrecisionInitArgs, AutoQPrecisionInitArgs, LeGRInitArgs, ModelEvaluationArgs):
        assert not config.has_extra_struct(absent)
    assert config.to_dict() == {"input_info": {"sample_size": [1, 3]}}


def test_full_registration() -> None:
    config = fresh_config()
    criterion = torch.nn.CrossEntropyLoss()
    val = tensor_loader(2)
    register_default_init_args(
        config,
        tensor_loader(),
        criterion=criterion,
        train_steps_fn=lambda *a: None,
        validate_fn=lambda *a: 0.5,
        val_loader=val,
        autoq_eval_fn=lambda *a: 0.7,
        model_eval_fn=lambda m: 0.9,
        legr_train_optimizer="sgd",
        execution_parameters="cpu-only",
    )
    precision = config.get_extra_struct(QuantizationPrecisionInitArgs)
    outputs, target = torch.randn(2, 5), torch.tensor([1, 3])
    assert torch.equal(
        precision.criterion_fn(outputs, target, precision.criterion), criterion(outputs, target)
    )
    assert config.get_extra_struct(AutoQPrecisionInitArgs).data_loader.data_loader is val
    legr = config.get_extra_struct(LeGRInitArgs)
    assert legr.val_loader.data_loader is val and legr.train_optimizer == "sgd"
    assert legr.execution_parameters == "cpu-only"
    assert config.get_extra_struct(ModelEvaluationArgs).eval_fn(None) == 0.9


def test_autoq_defaults_to_the_train_loader() -> None:
    config = register_default_init_args(fresh_config(), tensor_loader(), autoq_eval_fn=lambda *a: 0.0)
    autoq = config.get_extra_struct(AutoQPrecisionInitArgs)
    assert autoq.data_loader is config.get_extra_struct(QuantizationRangeInitArgs).data_loader


def test_calling_again_replaces_everything_it_registered() -> None:
    config = fresh_config()
    register_default_init_args(config, tensor_loader(), criterion=torch.nn.MSELoss())
    second_loader = tensor_loader(2)
    register_default_init_args(config, second_loader)
    assert config.get_extra_struct(QuantizationRangeInitArgs).data_loader.data_loader is second_loader
    assert not config.has_extra_struct(QuantizationPrecisionInitArgs)


def test_structs_registered_by_others_are_kept() -> None:
    class Mine:
        @classmethod
        def get_id(cls) -> str:
            return "mine"

    config = fresh_config()
    config.register_extra_structs([Mine()])
    register_default_init_args(config, tensor_loader())
    assert config.has_extra_struct("mine")


def test_distributed_callbacks() -> None:
    config = register_default_init_args(fresh_config(), tensor_loader())
    callbacks = config.get_extra_struct(DistributedCallbacksArgs)
    wrapper = torch.nn.DataParallel(torch.nn.Linear(1, 1))
    assert callbacks.unwrapping_callback(wrapper) is wrapper.module
    custom = (lambda m: ("wrapped", m), lambda m: m[1])
    config = register_default_init_args(fresh_config(), tensor_loader(), distributed_callbacks=custom)
    assert config.get_extra_struct(DistributedCallbacksArgs).wrapping_callback(1) == ("wrapped", 1)


def test_requires_an_nncf_config() -> None:
    with pytest.raises(ConfigError, match=r"needs an NNCFConfig, got dict.*NNCFConfig.from_dict"):
        register_default_init_args({}, tensor_loader())  # type: ignore[arg-type]


def test_deepcopy_of_a_registered_config_shares_the_loader() -> None:
    import copy

    config = register_default_init_args(fresh_config(), tensor_loader())
    clone = copy.deepcopy(config)
    assert clone.get_extra_struct(QuantizationRangeInitArgs) is config.get_extra_struct(
        QuantizationRangeInitArgs
    )
