"""Small models for the pruning tests, one per channel-dependency case, and how to build them."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from nncf_explore import create_compressed_model

SIZE = [1, 3, 8, 8]


def pruning_config(size: list[int] | None = None, **params: Any) -> dict[str, Any]:
    """A filter_pruning config; ``pruning_init`` and ``algorithm`` may be overridden through params."""
    section: dict[str, Any] = {"algorithm": "filter_pruning", "pruning_init": params.pop("pruning_init", 0.5)}
    section.update({k: params.pop(k) for k in ("ignored_scopes",) if k in params})
    section["params"] = params
    return {"input_info": {"sample_size": size or SIZE}, "compression": section}


def compress(model: nn.Module, config: dict[str, Any]) -> tuple[Any, nn.Module]:
    """``create_compressed_model`` without the graph dumps and their warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_compressed_model(model, config, dump_graphs=False)


def randomise_batchnorms(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, so masks matter."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    return model.eval()


class Residual(nn.Module):
    """stem -> (conv1 -> bn -> relu -> conv2 -> bn) + stem -> head conv -> pool -> linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(y)))))
        h = torch.relu(self.head(torch.relu(z + y)))
        return self.fc(h.mean(dim=(2, 3)))


class Depthwise(nn.Module):
    """stem -> expand -> bn -> depthwise -> bn -> project -> flatten -> linear."""

    def __init__(self, groups: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.expand = nn.Conv2d(4, 8, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=groups or 8)
        self.bn2 = nn.BatchNorm2d(8)
        self.project = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.bn2(self.dw(torch.relu(self.bn1(self.expand(x)))))
        x = torch.nn.functional.max_pool2d(torch.relu(self.project(x)), 2)
        return self.fc(torch.flatten(x, 1))


class Concat(nn.Module):
    """stem -> (a, b) -> cat -> bn -> conv -> mean -> linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 6, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)
        self.bn = nn.BatchNorm2d(10)
        self.conv = nn.Conv2d(10, 5, 1)
        self.fc = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class Permuted(nn.Module):
    """A conv whose channels go through a permute: pruning cannot follow them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.relu(self.stem(x)))
        return self.fc(x.permute(0, 2, 3, 1)).mean(dim=(1, 2))


def node_named(graph: Any, module: str) -> str:
    """The name of the (first) node ``module`` runs."""
    return next(n.name for n in graph.nodes if n.module == module)


class Shifted(nn.Module):
    """A conv whose output gets a constant added before the next conv reads it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(torch.relu(self.stem(x))) + 1.0)
        return self.fc(self.head(x).mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    """conv -> x * sigmoid(expand(relu(reduce(mean(x))))) -> conv: the gate's zeros do not matter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.reduce = nn.Conv2d(8, 4, 1)
        self.expand = nn.Conv2d(4, 8, 1)
        self.head = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(torch.relu(self.stem(x))))
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))
        return self.fc(self.head(x * gate).mean(dim=(2, 3)))
