"""Filter pruning and INT8 quantization in one compression list: mask, then quantize."""

from __future__ import annotations

import torch

from nncf_explore.compression.controller import CompositeController
from nncf_explore.compression.interface import compression_interface
from tests.compression.pruning.nets import Depthwise, compress, pruning_config, randomise_batchnorms


def config(per_channel: bool) -> dict[str, object]:
    pruning = pruning_config(pruning_init=0.5)
    quantization = {"algorithm": "quantization", "weights": {"per_channel": per_channel}}
    return {**pruning, "compression": [pruning["compression"], quantization]}


def test_a_pruned_filter_s_quantized_weight_is_zero() -> None:
    ctrl, net = compress(randomise_batchnorms(Depthwise()), config(per_channel=True))
    assert isinstance(ctrl, CompositeController)
    interface = compression_interface(net)
    plan = interface.plan()
    transform = plan.weights["expand.weight"]
    quantized = transform(net.get_parameter("expand.weight"))
    kept = ctrl.masks.mask("expand.weight").flatten().bool()
    assert torch.count_nonzero(quantized[~kept]) == 0 and torch.count_nonzero(quantized[kept]) > 0
    # the quantizer runs on the masked weight: its grid still fits the kept filters
    assert transform.quantizer is not None


def test_pruned_and_quantized_model_strips_to_smaller_layers_with_equal_outputs() -> None:
    for per_channel in (False, True):
        ctrl, net = compress(randomise_batchnorms(Depthwise()), config(per_channel))
        net.eval()
        stripped = ctrl.strip()
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(stripped(x), net(x), rtol=1e-4, atol=1e-5)
        shapes = {n: tuple(p.shape) for n, p in stripped.named_parameters()}
        assert shapes["expand.weight"] == (4, 4, 1, 1)
        stats = ctrl.statistics()
        assert stats.quantization is not None and stats.filter_pruning is not None
        assert "Statistics of the filter pruning algorithm:" in stats.to_str()


def test_pruning_sparsity_and_quantization_strip_together() -> None:
    # the sparsity masks of pruned layers are cut with their weights
    base = config(per_channel=True)
    sections = list(base["compression"])  # type: ignore[call-overload]
    sections.insert(1, {"algorithm": "magnitude_sparsity", "sparsity_init": 0.3})
    ctrl, net = compress(randomise_batchnorms(Depthwise()), {**base, "compression": sections})
    net.eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    stripped = ctrl.strip()
    torch.testing.assert_close(stripped(x), net(x), rtol=1e-4, atol=1e-5)
    assert dict(stripped.named_parameters())["expand.weight"].shape == (4, 4, 1, 1)
