"""Knowledge distillation (NNCF's ``knowledge_distillation``): a loss towards the uncompressed model.

The teacher is a frozen deep copy of the user's original FP32 model, kept by the
controller (never a submodule of the compressed model, so it is in no state dict
and ``model.train()`` cannot reach it).  A forward pre-hook on the compressed
model runs the teacher on the very inputs the student gets, and a forward hook
keeps the student's outputs; only the last pair is kept.  Both hooks act only
in training mode (as NNCF's loss does) with autograd on.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from nncf_explore.compression.controller import CompressionLoss, ModelController
from nncf_explore.compression.quantization.scope_checks import section_path
from nncf_explore.config.sections import resolve
from nncf_explore.errors import ConfigError
from nncf_explore.graph.leaves import Args, Kwargs

if TYPE_CHECKING:
    from nncf_explore.compression.algorithms import BuildContext

ALGORITHM = "knowledge_distillation"


def tensors(output: Any) -> Iterator[Tensor]:
    """The floating-point tensors of a model output (tensors, lists, tuples, dicts), in order.

    Examples:
        >>> [t.tolist() for t in tensors({"a": torch.ones(1), "b": (torch.zeros(1), 3)})]
        [[1.0], [0.0]]
    """
    if isinstance(output, Tensor):
        if output.is_floating_point():
            yield output
    elif isinstance(output, Mapping):
        for value in output.values():
            yield from tensors(value)
    elif isinstance(output, list | tuple):
        for value in output:
            yield from tensors(value)


def softmax_distillation(teacher: Tensor, student: Tensor, temperature: float) -> Tensor:
    """NNCF's softmax KD term: ``-mean(log_softmax(s/T) * softmax(t/T)) * C * T**2``; 0 unless 2-D.

    The mean runs over batch and classes, so the ``C`` (number of classes) factor makes it
    the batch mean of the cross-entropy between the softened distributions.

    Examples:
        >>> t = torch.tensor([[0.0, 0.0]])
        >>> round(float(softmax_distillation(t, t, 1.0)), 4)  # ln 2
        0.6931
    """
    if student.dim() != 2:
        return torch.zeros([], device=student.device)
    log_p = F.log_softmax(student / temperature, dim=1)
    q = F.softmax(teacher / temperature, dim=1)
    return -(log_p * q).mean() * (student.shape[1] * temperature * temperature)


class _Detached:
    """What a copy of the compressed model gets in place of the hooks: they belong to one model."""

    def __call__(self, *args: Any) -> None:
        return None


def _drop_detached(module: nn.Module) -> None:
    # A model compressed again (a re-run notebook cell) is a copy carrying the inert hooks of the
    # previous run; without this, every re-run would add one more pair.
    for hooks in (module._forward_pre_hooks, module._forward_hooks):
        for key in [k for k, hook in hooks.items() if isinstance(hook, _Detached)]:
            del hooks[key]
            module._forward_pre_hooks_with_kwargs.pop(key, None)
            module._forward_hooks_with_kwargs.pop(key, None)
            module._forward_hooks_always_called.pop(key, None)


class _Hook:
    """A hook of the controller that holds it weakly, so the model does not keep the controller alive."""

    def __init__(self, ctrl: KnowledgeDistillationController, kind: str) -> None:
        self._ctrl = weakref.ref(ctrl)
        self._kind = kind

    def __call__(self, module: nn.Module, *rest: Any) -> None:
        ctrl = self._ctrl()
        # Without autograd the loss could not train anything: skip the teacher (BatchNorm
        # adaptation, for one, runs training-mode forwards under no_grad).
        if ctrl is None or module is not ctrl.model or not module.training or not torch.is_grad_enabled():
            return
        if self._kind == "pre":
            ctrl.run_teacher(*rest)
        else:
            ctrl.keep_student(rest[-1])

    def __deepcopy__(self, memo: dict[int, Any]) -> _Detached:
        return _Detached()

    def __reduce__(self) -> tuple[type[_Detached], tuple[()]]:
        return _Detached, ()


class KnowledgeDistillationController(ModelController):
    """Adds ``scale * KD(teacher(x), student(x))`` to ``loss()`` for the last training forward.

    Args:
        model: The compressed model (the student).
        example_inputs: The tracing inputs.
        original: The user's FP32 model; the teacher is a frozen deep copy of it.
        section: The config's ``knowledge_distillation`` section.
        where: The section's JSON path, for messages.

    Raises:
        ConfigError: ``temperature`` is given with ``type: "mse"`` (NNCF rejects it too).
    """

    name = ALGORITHM

    def __init__(
        self,
        model: nn.Module,
        example_inputs: tuple[Args, Kwargs],
        original: nn.Module,
        section: Mapping[str, Any],
        where: str = "compression",
    ) -> None:
        super().__init__(model, example_inputs)
        self.kind = str(resolve(section, "type", algorithm=ALGORITHM))
        if self.kind == "mse" and "temperature" in section:
            raise ConfigError(
                f"{where}.temperature: 'temperature' applies only to type 'softmax' (this section has type "
                "'mse'), as in NNCF; remove 'temperature' or use type 'softmax'"
            )
        self.scale = float(resolve(section, "scale", algorithm=ALGORITHM))
        self.temperature = float(resolve(section, "temperature", algorithm=ALGORITHM))
        self.teacher = copy.deepcopy(original).eval().requires_grad_(False)
        _drop_detached(self.teacher)
        _drop_detached(model)
        self._lock = threading.Lock()
        self._pending = threading.local()
        self._last: tuple[Any, Any] | None = None
        self._handles: list[RemovableHandle] = [
            model.register_forward_pre_hook(_Hook(self, "pre"), with_kwargs=True),
            model.register_forward_hook(_Hook(self, "post")),
        ]
        self.loss = CompressionLoss(model, [self._loss])

    def run_teacher(self, args: Args, kwargs: Kwargs) -> None:
        """Run the teacher on a training forward's inputs (called by the pre-hook)."""
        self._follow_device(args, kwargs)
        with torch.no_grad():
            self._pending.output = self.teacher(*args, **kwargs)

    def keep_student(self, output: Any) -> None:
        """Pair the student's outputs with the teacher's of the same forward (called by the hook)."""
        teacher = getattr(self._pending, "output", None)
        self._pending.output = None
        if teacher is not None:
            with self._lock:
                self._last = (teacher, output)

    def _follow_device(self, args: Args, kwargs: Kwargs) -> None:
        if self.teacher.training:  # someone switched it; a teacher's BatchNorm must not update
            self.teacher.eval()
        device = next((t.device for t in tensors([args, kwargs])), None)
        param = next(self.teacher.parameters(), None)
        if device is not None and param is not None and param.device != device:
            self.teacher.to(device)

    def _loss(self) -> Tensor:
        with self._lock:
            last = self._last
        if last is None or not self.model.training:
            return torch.zeros([])
        teacher, student = last
        total = torch.zeros([])
        for t, s in zip(tensors(teacher), tensors(student), strict=False):
            if self.kind == "softmax":
                total = total + softmax_distillation(t, s, self.temperature)
            else:
                total = total + F.mse_loss(s, t)
        return self.scale * total

    def cleanup(self) -> None:
        """Remove the hooks from the compressed model and drop the kept outputs."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        with self._lock:
            self._last = None


def build(ctx: BuildContext) -> KnowledgeDistillationController:
    """The ``knowledge_distillation`` builder of :data:`~nncf_explore.compression.algorithms.BUILDERS`."""
    where = section_path(ctx.config, ctx.section)
    return KnowledgeDistillationController(
        ctx.compressed, ctx.example_inputs, ctx.original, ctx.section, where
    )
