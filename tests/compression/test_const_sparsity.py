"""Constant sparsity: masks from the zeros of the weights, kept through fine-tuning, within scopes."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_explore import create_compressed_model
from nncf_explore.compression.const_sparsity import ConstSparsityController
from nncf_explore.compression.interface import compression_interface
from tests.compression import digits
from tests.compression.tiny import FC, TinyConv

INPUT_INFO = {"sample_size": [2, 3, 6, 6]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with digits.one_thread():
        yield


def half_zero_model() -> TinyConv:
    """TinyConv with every other weight element zeroed (as a sparsified checkpoint would be)."""
    torch.manual_seed(0)
    model = TinyConv().eval()
    with torch.no_grad():
        for param in (model.conv.weight, model.fc.weight):
            param.view(-1)[::2] = 0.0
    return model


def create(model: nn.Module, *sections: dict[str, Any], **kwargs: Any) -> tuple[Any, nn.Module]:
    cfg = {"input_info": INPUT_INFO, "compression": list(sections)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, cfg, dump_graphs=False, **kwargs)


def const(**scopes: Any) -> dict[str, Any]:
    return {"algorithm": "const_sparsity", **scopes}


def fine_tune(q: nn.Module, steps: int = 5) -> None:
    """SGD with momentum and weight decay on a task loss: every weight gets a gradient."""
    torch.manual_seed(1)
    x, y = torch.randn(16, 3, 6, 6), torch.randn(16, 5)
    optimizer = torch.optim.SGD(q.train().parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(q(x), y).backward()
        optimizer.step()


def test_masks_are_the_zeros_of_the_weights_and_the_forward_equals_eager() -> None:
    model = half_zero_model()
    ctrl, q = create(model, const())
    assert isinstance(ctrl, ConstSparsityController) and sorted(ctrl.weights) == ["conv.weight", "fc.weight"]
    for name in ctrl.weights:
        assert torch.equal(ctrl.masks.mask(name), (model.get_parameter(name) != 0).float())
    assert ctrl.sparsity_level == pytest.approx(0.5)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(q(x), model(x))
    text = ctrl.statistics().to_str()
    assert "Statistics of the const sparsity algorithm:" in text and "| fc.weight    | 50.00 %" in text


def test_zero_weights_stay_zero_after_optimizer_steps() -> None:
    model = half_zero_model()
    ctrl, q = create(model, const())
    fine_tune(q)
    for name in ctrl.weights:
        before, after = model.get_parameter(name), q.get_parameter(name).detach()
        assert torch.all(after[before == 0] == 0), name
        assert not torch.allclose(after[before != 0], before[before != 0]), name  # the rest trains
    assert ctrl.sparsity_level == pytest.approx(0.5)


def test_ignored_scopes_leave_a_layer_unmasked() -> None:
    model = half_zero_model()
    ctrl, q = create(model, const(ignored_scopes=[FC]))
    assert list(ctrl.weights) == ["conv.weight"]
    fine_tune(q)
    conv, fc = q.get_parameter("conv.weight").detach(), q.get_parameter("fc.weight").detach()
    assert torch.all(conv[model.conv.weight == 0] == 0)
    assert torch.count_nonzero(fc[model.fc.weight == 0]) > 0  # not in scope: its zeros train


def test_with_quantization_masked_weights_quantize_to_exactly_zero_after_training() -> None:
    model = half_zero_model()
    _ctrl, q = create(model, {"algorithm": "quantization"}, const())
    fine_tune(q)
    plan = compression_interface(q.eval()).plan()
    for name in ("conv.weight", "fc.weight"):
        with torch.no_grad():
            quantized = plan.weights[name](q.get_parameter(name))
        assert torch.all(quantized[model.get_parameter(name) == 0] == 0), name


def test_compression_state_restores_the_masks_into_a_dense_model() -> None:
    ctrl, q = create(half_zero_model(), const())
    state, weights = copy.deepcopy(ctrl.get_compression_state()), copy.deepcopy(q.state_dict())
    torch.manual_seed(5)
    restored, r = create(TinyConv().eval(), const(), compression_state=state)
    assert restored.sparsity_level == 0.0  # a dense model has no zeros before its checkpoint loads
    r.load_state_dict(weights)
    assert restored.sparsity_level == pytest.approx(0.5)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(r.eval()(x), q.eval()(x))
