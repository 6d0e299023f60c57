"""Knowledge distillation: the loss by hand, a frozen teacher, and composition with other algorithms."""

from __future__ import annotations

import copy
import io
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_explore import ConfigError, create_compressed_model
from nncf_explore.compression.distillation import KnowledgeDistillationController
from tests.compression import digits

INPUT_INFO = {"sample_size": [2, 3, 6, 6]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with digits.one_thread():
        yield


class SmallNet(nn.Module):
    """conv -> BatchNorm -> relu -> linear: the teacher's BatchNorm must never update."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.relu(self.bn(self.conv(x))), 1))


def original() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet().eval()


def kd(kind: str = "softmax", **fields: Any) -> dict[str, Any]:
    return {"algorithm": "knowledge_distillation", "type": kind, **fields}


def create(model: nn.Module, *sections: dict[str, Any]) -> tuple[Any, nn.Module]:
    cfg = {"input_info": INPUT_INFO, "compression": list(sections)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, cfg, dump_graphs=False)


def kd_ctrl(ctrl: Any) -> KnowledgeDistillationController:
    found = next(c for c in getattr(ctrl, "child_ctrls", [ctrl]) if c.name == "knowledge_distillation")
    assert isinstance(found, KnowledgeDistillationController)
    return found


def nudge(q: nn.Module) -> None:
    """Make the student differ from the teacher, so the loss is not at its minimum."""
    with torch.no_grad():
        q.get_parameter("fc.weight").mul_(1.5)


def test_softmax_loss_equals_the_formula_by_hand() -> None:
    model = original()
    ctrl, q = create(model, kd(scale=0.5, temperature=2.0))
    nudge(q)
    x = torch.randn(8, 3, 6, 6)
    student = q.train()(x)
    with torch.no_grad():
        teacher = model(x)
    t = 2.0
    by_hand = -(F.log_softmax(student / t, 1) * F.softmax(teacher / t, 1)).mean() * 5 * t * t
    torch.testing.assert_close(ctrl.loss(), 0.5 * by_hand)
    # the batch mean of the cross-entropy between the softened distributions, as NNCF's C factor says
    ce = -(F.log_softmax(student / t, 1) * F.softmax(teacher / t, 1)).sum(1).mean() * t * t
    torch.testing.assert_close(ctrl.loss(), 0.5 * ce)
    ctrl.loss().backward()
    assert q.get_parameter("fc.weight").grad is not None


def test_mse_loss_and_defaults() -> None:
    model = original()
    ctrl, q = create(model, kd("mse"))
    assert (ctrl.scale, ctrl.kind) == (1.0, "mse")
    nudge(q)
    x = torch.randn(4, 3, 6, 6)
    student = q.train()(x)
    with torch.no_grad():
        torch.testing.assert_close(ctrl.loss(), F.mse_loss(model(x), student))


def test_temperature_with_mse_is_a_config_error_naming_the_path() -> None:
    with pytest.raises(
        ConfigError, match=r"compression\[1\]\.temperature: 'temperature' applies only to type"
    ):
        create(original(), {"algorithm": "quantization"}, kd("mse", temperature=2.0))
    with pytest.raises(ConfigError, match="type"):
        create(original(), {"algorithm": "knowledge_distillation"})


def test_teacher_is_a_frozen_copy_that_never_trains() -> None:
    model = original()
    reference = copy.deepcopy(model.state_dict())
    ctrl, q = create(model, kd())
    teacher = ctrl.teacher
    assert teacher is not model and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any(k.startswith("teacher") or "_kd" in k for k in q.state_dict())  # not part of the student
    optimizer = torch.optim.SGD(q.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        q.train()
        (q(torch.randn(4, 3, 6, 6)).pow(2).mean() + ctrl.loss()).backward()
        optimizer.step()
    assert not teacher.training and not model.training
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, reference[key]), key  # weights and BatchNorm statistics unchanged
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())  # user's model too
    assert not torch.equal(q.get_parameter("fc.weight"), reference["fc.weight"])
    # a user model in training mode gives an eval-mode teacher too
    assert not kd_ctrl(create(original().train(), kd())[0]).teacher.training


def test_loss_only_in_training_and_the_teacher_runs_only_then() -> None:
    ctrl, q = create(original(), kd())
    calls: list[int] = []
    ctrl.teacher.register_forward_hook(lambda *args: calls.append(1))
    nudge(q)
    with torch.no_grad():
        q.eval()(torch.randn(2, 3, 6, 6))
    assert calls == [] and float(ctrl.loss()) == 0.0
    q.train()(torch.randn(2, 3, 6, 6))
    assert calls == [1] and float(ctrl.loss().detach()) > 0
    q.eval()
    assert float(ctrl.loss()) == 0.0


def test_only_the_last_outputs_are_kept_and_cleanup_removes_the_hooks() -> None:
    ctrl, q = create(original(), kd())
    q.train()
    first = q(torch.randn(2, 3, 6, 6))
    gone = weakref.ref(first)
    del first
    q(torch.randn(2, 3, 6, 6))
    assert gone() is None  # the first student output was released
    kd_ctrl(ctrl).cleanup()
    assert not q._forward_pre_hooks and not q._forward_hooks
    assert float(ctrl.loss()) == 0.0


def test_copies_of_the_student_do_not_feed_the_controller() -> None:
    ctrl, q = create(original(), kd())
    clone = copy.deepcopy(q).train()
    clone(torch.randn(2, 3, 6, 6))
    assert float(ctrl.loss()) == 0.0  # the copy's forward is not the controller's model
    buffer = io.BytesIO()
    torch.save(q, buffer)  # the hooks pickle (as inert ones)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False).train()
    loaded(torch.randn(2, 3, 6, 6))
    assert float(ctrl.loss()) == 0.0


def test_forward_in_another_thread_is_seen_by_the_loss() -> None:
    ctrl, q = create(original(), kd())
    nudge(q)
    q.train()
    worker = threading.Thread(target=lambda: q(torch.randn(2, 3, 6, 6)))
    worker.start()
    worker.join()
    assert float(ctrl.loss().detach()) > 0


def test_with_quantization_the_composite_loss_is_the_kd_loss() -> None:
    model = original()
    ctrl, q = create(model, {"algorithm": "quantization"}, kd())
    assert [c.name for c in ctrl.child_ctrls] == ["quantization", "knowledge_distillation"]
    x = torch.randn(4, 3, 6, 6)
    student = q.train()(x)
    with torch.no_grad():
        teacher = model(x)
    by_hand = -(F.log_softmax(student, 1) * F.softmax(teacher, 1)).mean() * 5
    torch.testing.assert_close(ctrl.loss(), by_hand)
    assert float(by_hand.detach()) > 0  # the quantized student differs from the FP32 teacher


def test_with_rb_sparsity_the_composite_loss_is_the_sum() -> None:
    ctrl, q = create(original(), {"algorithm": "rb_sparsity", "sparsity_init": 0.3}, kd())
    nudge(q)
    q.train()(torch.randn(2, 3, 6, 6))
    parts = [c.loss() for c in ctrl.child_ctrls]
    torch.testing.assert_close(ctrl.loss(), parts[0] + parts[1])
    assert all(float(p.detach()) > 0 for p in parts)


def test_compressing_the_compressed_model_again_keeps_one_pair_of_hooks() -> None:
    ctrl, q = create(original(), kd())
    for _ in range(2):  # a re-run notebook cell passes the compressed model
        ctrl, q = create(q, kd())
    assert len(q._forward_pre_hooks) == 1 and len(q._forward_hooks) == 1
    assert not ctrl.teacher._forward_pre_hooks and not hasattr(ctrl.teacher, "_nncf")
    q.train()(torch.randn(2, 3, 6, 6))
    assert float(ctrl.loss().detach()) > 0


def test_compression_state_round_trip_keeps_distilling() -> None:
    ctrl, q = create(original(), {"algorithm": "quantization"}, kd())
    state = copy.deepcopy(ctrl.get_compression_state())
    cfg = {"input_info": INPUT_INFO, "compression": [{"algorithm": "quantization"}, kd()]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored, r = create_compressed_model(original(), cfg, compression_state=state, dump_graphs=False)
    r.load_state_dict(q.state_dict())
    x = torch.randn(2, 3, 6, 6)
    r.train()(x)
    q.train()(x)
    torch.testing.assert_close(restored.loss(), ctrl.loss())


def test_training_forwards_without_autograd_skip_the_teacher() -> None:
    ctrl, q = create(original(), kd())
    calls: list[int] = []
    ctrl.teacher.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():  # e.g. BatchNorm adaptation
        q.train()(torch.randn(2, 3, 6, 6))
    assert calls == [] and float(ctrl.loss()) == 0.0
