"""scikit-learn's 8×8 digits as a small, fast, deterministic image task, and a CNN trained on it.

Tests, benchmarks and notebooks share these helpers: the split, the network, the FP32
training (cached per process), accuracy, and a QAT loop that follows NNCF's training
contract (``scheduler.epoch_step()`` before each epoch, ``scheduler.step()`` before each
iteration, ``loss = task_loss + ctrl.loss()``).

Example:
    >>> model = trained_fp32()
    >>> 95.0 < accuracy(model, *eval_split()) <= 100.0
    True
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SEED = 0
TEST_FRACTION = 0.25
BATCH = 64
FP32_EPOCHS = 12
INPUT_INFO = {"sample_size": [1, 1, 8, 8]}


@functools.cache
def _split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = (images - 0.3) / 0.4  # roughly zero mean, unit variance: signed inputs, as real data
    labels = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SEED))
    n_test = int(len(labels) * TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def train_split() -> tuple[Tensor, Tensor]:
    """``(images [N, 1, 8, 8], labels [N])`` of the training split (1348 samples)."""
    x, y, _, _ = _split()
    return x, y


def eval_split() -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of the held-out split (449 samples; one sample is 0.22 points)."""
    _, _, x, y = _split()
    return x, y


class Batches:
    """``(images, labels)`` batches of a split, reshuffled per pass from a fixed seed; has ``batch_size``.

    Args:
        x: Images.
        y: Labels.
        batch_size: Samples per batch.
        shuffle: Shuffle each pass (pass ``k`` uses seed ``seed + k``).
        seed: Base seed of the shuffles.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int = BATCH, shuffle: bool = True, seed: int = SEED):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._passes = 0

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self._passes)
            order = torch.randperm(len(self.y), generator=generator)
        else:
            order = torch.arange(len(self.y))
        self._passes += 1
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


def train_loader(shuffle: bool = True, seed: int = SEED) -> Batches:
    """Batches of the training split."""
    return Batches(*train_split(), shuffle=shuffle, seed=seed)


class DigitsNet(nn.Module):
    """conv-BN-ReLU ×3 with a max-pool, global average pool, linear head (about 24k parameters).

    No in-place ops, so quantizer outputs can be trained through.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _Block(nn.Module):
    """A ResNet basic block: two 3x3 convolutions and a shortcut (1x1 convolution when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """The deeper model of notebook 02: a stem and three residual blocks (9 weighted layers, 78k parameters)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.layer1 = _Block(width, width)
        self.layer2 = _Block(width, 2 * width, stride=2)
        self.layer3 = _Block(2 * width, 4 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run on one thread: for 8×8 images, thread hand-offs cost more than they save (10× on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(model: nn.Module, epochs: int, lr: float, ctrl: Any = None, seed: int = SEED) -> None:
    with one_thread():
        _train_epochs(model, epochs, lr, ctrl, seed)


def _train_epochs(model: nn.Module, epochs: int, lr: float, ctrl: Any, seed: int) -> None:
    """``epochs`` of Adam with cosine decay; with ``ctrl``, NNCF's scheduler and loss contract."""
    torch.manual_seed(seed)
    loader = train_loader(seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(loader))
    model.train()
    for _ in range(epochs):
        if ctrl is not None:
            ctrl.scheduler.epoch_step()
        for x, y in loader:
            if ctrl is not None:
                ctrl.scheduler.step()
            loss = F.cross_entropy(model(x), y)
            if ctrl is not None:
                loss = loss + ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


@functools.cache
def _trained_state(cls: type[nn.Module], lr: float) -> dict[str, Tensor]:
    torch.manual_seed(SEED)
    model = cls()
    _train(model, FP32_EPOCHS, lr=lr)
    return copy.deepcopy(model.state_dict())


def trained_fp32() -> DigitsNet:
    """A fresh DigitsNet with the trained FP32 weights, in eval mode (training runs once per process)."""
    model = DigitsNet()
    model.load_state_dict(_trained_state(DigitsNet, 1e-2))
    return model.eval()


def trained_resnet() -> DigitsResNet:
    """A fresh DigitsResNet with trained FP32 weights, in eval mode (training runs once per process)."""
    model = DigitsResNet()
    model.load_state_dict(_trained_state(DigitsResNet, 3e-3))
    return model.eval()


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy in percent, eval mode, no grad (the model's mode is restored)."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return 100.0 * float((model(x).argmax(dim=1) == y).float().mean())
    finally:
        model.train(training)


def quantization_config(
    weight_bits: int | None = None, activation_bits: int | None = None, **section: Any
) -> dict[str, Any]:
    """A config for DigitsNet; bit widths other than 8 select ``target_device: TRIAL``.

    ``section`` holds further keys of the quantization section; ``weights``/``activations``
    dicts given there are merged with the bit widths.
    """
    algorithm: dict[str, Any] = {"algorithm": "quantization", **section}
    for group, bits in (("weights", weight_bits), ("activations", activation_bits)):
        if bits is not None:
            algorithm[group] = {**algorithm.get(group, {}), "bits": bits}
    config: dict[str, Any] = {"input_info": dict(INPUT_INFO), "compression": algorithm}
    if {weight_bits, activation_bits} - {None, 8}:
        config["target_device"] = "TRIAL"
    return config


def init_config(config: dict[str, Any]) -> Any:
    """``config`` as an NNCFConfig with the training split registered for range init and BN adaptation.

    The init loader does not shuffle, so every ``create_compressed_model`` call sees the same batches.
    """
    from nncf_explore import NNCFConfig, register_default_init_args

    return register_default_init_args(NNCFConfig.from_dict(config), train_loader(shuffle=False))


def qat(ctrl: Any, model: nn.Module, epochs: int = 2, lr: float = 1e-3) -> None:
    """Quantization-aware training of a compressed model (weights and quantizer ranges)."""
    _train(model, epochs, lr, ctrl=ctrl)


def compressed_accuracy(weight_bits: int | None, activation_bits: int | None, qat_epochs: int) -> float:
    """Top-1 (%) on the eval split of the trained FP32 net compressed at these bit widths, after QAT epochs.

    ``None`` bits keep the CPU defaults (INT8); tests and ``bench/bench_accuracy.py`` share this recipe.
    """
    import warnings

    from nncf_explore import create_compressed_model

    config = init_config(quantization_config(weight_bits, activation_bits))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, model = create_compressed_model(trained_fp32(), config, dump_graphs=False)
    if qat_epochs:
        qat(ctrl, model, epochs=qat_epochs)
    return accuracy(model, *eval_split())
