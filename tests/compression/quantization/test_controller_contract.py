"""NNCF's controller contract: ``weight_quantizers`` / ``non_weight_quantizers`` map ids to info objects."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import create_compressed_model
from nncf_explore.compression.quantization.controller import NonWeightQuantizerInfo, WeightQuantizerInfo
from nncf_explore.compression.quantization.quantizers import BaseQuantizer
from nncf_explore.errors import ConfigError
from tests.compression.tiny import CONV, INPUT, RELU, TinyConv


def create() -> tuple[Any, nn.Module]:
    config = {"input_info": {"sample_size": [2, 3, 6, 6]}, "compression": {"algorithm": "quantization"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(TinyConv().eval(), config, dump_graphs=False)


def test_weight_quantizers_are_info_objects_with_the_module_ref() -> None:
    ctrl, model = create()
    info = ctrl.weight_quantizers[f"{CONV}|WEIGHT"]
    assert isinstance(info, WeightQuantizerInfo)
    assert info.quantizer_module_ref is model.nncf.get_quantizer(f"{CONV}|WEIGHT")
    assert info.quantizer_module_ref.num_bits == 8  # what NNCF users' code reads
    assert info.quantized_module is model.conv
    assert [p.id for p in info.affected_insertions] == [f"{CONV}|WEIGHT"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.quantizer_module_ref = None


def test_non_weight_quantizers_are_info_objects_listing_their_insertions() -> None:
    ctrl, model = create()
    infos = ctrl.non_weight_quantizers
    assert sorted(infos) == [f"{INPUT}|OUTPUT", f"{RELU}|OUTPUT"]
    for qid, info in infos.items():
        assert isinstance(info, NonWeightQuantizerInfo)
        assert info.quantizer_module_ref is model.nncf.get_quantizer(qid)
        assert [p.id for p in info.affected_insertions] == [qid]


def test_modules_stay_directly_reachable() -> None:
    ctrl, model = create()
    modules = ctrl.all_quantizations
    assert all(isinstance(m, BaseQuantizer) for m in modules.values())
    assert modules == model.nncf.quantizers()
    assert ctrl.quantizer(f"{RELU}|OUTPUT") is modules[f"{RELU}|OUTPUT"]
    with pytest.raises(
        ConfigError, match=r"no quantizer 'TinyConv/relu_1\|OUTPUT' in the setup; did you mean"
    ):
        ctrl.quantizer("TinyConv/relu_1|OUTPUT")


def test_disabling_weight_quantization_reaches_the_modules() -> None:
    ctrl, _ = create()
    ctrl.disable_weight_quantization()
    assert not any(i.quantizer_module_ref.is_enabled for i in ctrl.weight_quantizers.values())
    assert all(i.quantizer_module_ref.is_enabled for i in ctrl.non_weight_quantizers.values())
    with torch.no_grad():
        ctrl.enable_weight_quantization()
    assert all(i.quantizer_module_ref.is_enabled for i in ctrl.weight_quantizers.values())
