"""strip() and ONNX export remove pruned filters physically; the smaller model computes the same."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore.compression.interface import compression_interface
from tests.compression.pruning.nets import (
    Concat,
    Depthwise,
    Residual,
    Shifted,
    SqueezeExcite,
    compress,
    pruning_config,
    randomise_batchnorms,
)
from tests.models import MobileNetV2, resnet18

FULL = {"prune_first_conv": True, "prune_downsample_convs": True, "pruning_init": 0.4}


def weights(model: nn.Module) -> int:
    """Elements of convolution and linear weights (found by name and rank, in a stripped graph too)."""
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1)


def weight_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n.replace("_", "."): tuple(p.shape) for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (Residual, [2, 3, 8, 8]),
        (Depthwise, [2, 3, 8, 8]),
        (Concat, [2, 3, 8, 8]),
        (SqueezeExcite, [2, 3, 8, 8]),
        (Shifted, [2, 3, 8, 8]),
        (lambda: resnet18(10), [2, 3, 32, 32]),
        (lambda: MobileNetV2(10), [2, 3, 32, 32]),
    ],
    ids=[
        "residual",
        "depthwise-flatten-linear",
        "concat",
        "squeeze-excite",
        "constant-added",
        "resnet18",
        "mobilenet_v2",
    ],
)
def test_strip_gives_a_physically_smaller_model_with_equal_outputs(make: Any, size: list[int]) -> None:
    ctrl, net = compress(randomise_batchnorms(make()), pruning_config([1, *size[1:]], **FULL))
    net.eval()
    stripped = ctrl.strip()
    x = torch.randn(size, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(stripped(x), net(x), rtol=1e-4, atol=1e-5)
    assert weights(stripped) < weights(net)
    # the compressed model itself keeps its full layers and masks
    assert "pruning_masks" in compression_interface(net)._modules
    assert weights(net) == sum(
        p.numel() for n, p in make().named_parameters() if n.endswith("weight") and p.dim() > 1
    )


def test_stripped_layers_have_the_kept_channel_counts() -> None:
    ctrl, _ = compress(randomise_batchnorms(Depthwise()), pruning_config(pruning_init=0.5))
    shapes = weight_shapes(ctrl.strip())
    assert shapes["expand.weight"] == (4, 4, 1, 1)  # 8 filters, half pruned
    assert shapes["dw.weight"] == (4, 1, 3, 3)  # the depthwise conv follows
    assert shapes["bn1.weight"] == (4,) and shapes["bn2.bias"] == (4,)
    assert shapes["project.weight"] == (3, 4, 1, 1)
    assert shapes["fc.weight"] == (3, 3 * 16)  # flatten: each pruned channel removes 16 features
    stats = ctrl.statistics().filter_pruning
    stripped_params = sum(math.prod(v) for k, v in shapes.items() if k.endswith("weight") and len(v) > 1)
    assert stats.params[1] == stripped_params


def test_pruning_with_batchnorms_unmasked_strips_too() -> None:
    ctrl, _ = compress(Depthwise(), pruning_config(pruning_init=0.5, prune_batch_norms=False))
    assert weight_shapes(ctrl.strip())["bn1.weight"] == (4,)


def test_onnx_export_has_the_smaller_layers(tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    ctrl, net = compress(randomise_batchnorms(Depthwise()), pruning_config(pruning_init=0.5))
    path = tmp_path / "pruned.onnx"
    ctrl.export_model(path)
    proto = onnx.load(str(path))
    shapes = {tuple(t.dims) for t in proto.graph.initializer}
    assert (4, 4, 1, 1) in shapes and (8, 4, 1, 1) not in shapes
    x = torch.randn(1, 3, 8, 8)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    net.eval()
    torch.testing.assert_close(torch.from_numpy(out), net(x).detach(), rtol=1e-4, atol=1e-5)
