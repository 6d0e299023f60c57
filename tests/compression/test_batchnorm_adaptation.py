"""BatchNorm adaptation: running statistics become the average over the adaptation batches."""

from __future__ import annotations

import torch
from torch import nn

from nncf_explore.compression.batchnorm_adaptation import adapt_batchnorm
from nncf_explore.compression.model import compress_model
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.graph import trace_model


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.unused = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))


def loader(n: int = 3, batch: int = 4) -> list[tuple[torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 3, 6, 6, generator=generator) * 2 + 1, 0) for _ in range(n)]


def expected_stats(
    conv: nn.Module, batches: list[tuple[torch.Tensor, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        outs = [conv(x) for x, _ in batches]
    means = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs]).mean(0)
    variances = torch.stack([o.transpose(0, 1).flatten(1).var(dim=1, unbiased=True) for o in outs]).mean(0)
    return means, variances


def test_running_statistics_are_the_average_over_adaptation_batches() -> None:
    torch.manual_seed(0)
    model = ConvBN().eval()
    model.drop.train()  # mixed flags are restored as they were
    flags = [m.training for m in model.modules()]
    unused_before = model.unused.running_mean.clone()
    data = loader(4)
    batches = adapt_batchnorm(model, data, num_samples=10, progress=False)
    assert batches == 3  # ceil(10 / 4)
    mean, var = expected_stats(model.conv, data[:3])
    torch.testing.assert_close(model.bn.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.bn.running_var, var, rtol=1e-5, atol=1e-6)
    assert model.bn.momentum == 0.1 and model.bn.num_batches_tracked.item() == 3
    assert [m.training for m in model.modules()] == flags
    torch.testing.assert_close(model.unused.running_mean, unused_before, rtol=0, atol=0)  # never reached


def test_adaptation_runs_the_compressed_model_with_quantizers_active() -> None:
    torch.manual_seed(0)
    model = ConvBN().eval()
    graph = trace_model(model, {"sample_size": [1, 3, 6, 6]})
    q = compress_model(
        model, graph, build_quantizer_setup(graph, {"compression": {"algorithm": "quantization"}})
    )
    q.nncf.init_range(loader(), progress=False)
    data = loader(2)
    adapt_batchnorm(q, data, progress=False)
    # the BN input is the conv output computed on quantized input and weight
    input_q = q.nncf.get_quantizer("/nncf_model_input_0|OUTPUT")
    weight_q = q.nncf.get_quantizer("ConvBN/Conv2d[conv]/conv2d_0|WEIGHT")

    def quantized_conv(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(input_q(x), weight_q(q.conv.weight), q.conv.bias)

    mean, var = expected_stats(quantized_conv, data)
    torch.testing.assert_close(q.bn.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(q.bn.running_var, var, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(model.bn.running_mean, q.bn.running_mean)  # the user's model is untouched


def test_zero_samples_change_nothing() -> None:
    model = ConvBN().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert adapt_batchnorm(model, loader(), num_samples=0) == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
