"""HookRunner: quantizers fire where the setup says, names match the trace, divergence is reported."""

from __future__ import annotations

import collections
import threading
import warnings

import pytest
import torch
from torch import nn

from nncf_explore.compression.divergence import UntracedPathWarning
from nncf_explore.compression.hook_plan import build_hook_plan
from nncf_explore.compression.model import compress_model
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.quantization.setup import QuantizationPoint, QuantizerSetup
from nncf_explore.compression.quantization.spec import QuantizerSpec
from nncf_explore.compression.runtime import replace_first_tensor
from nncf_explore.errors import GraphError
from nncf_explore.graph import trace_model
from tests import models
from tests.compression.tiny import CONV, FC, INPUT, RELU, symmetric, tiny, tiny_setup

QUANTIZATION = {"compression": {"algorithm": "quantization"}}


def count_calls(module: nn.Module) -> list[int]:
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


def test_forward_equals_hand_computed_fake_quantization() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    scales = {
        f"{CONV}|WEIGHT": torch.linspace(0.2, 0.5, 4).reshape(4, 1, 1, 1),
        f"{INPUT}|OUTPUT": torch.tensor([1.5]),
        f"{RELU}|OUTPUT": torch.tensor([0.7]),
        f"{FC}|INPUT0": torch.tensor([0.9]),
    }
    for qid, scale in scales.items():
        with torch.no_grad():
            q.nncf.get_quantizer(qid).scale.copy_(scale)
    q.nncf.get_quantizer(f"{CONV}|WEIGHT").signed = True
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        got = q(x)
        xq = symmetric(x, scales[f"{INPUT}|OUTPUT"], 8, signed=False)
        wq = symmetric(model.conv.weight, scales[f"{CONV}|WEIGHT"], 8, signed=True)
        y = torch.relu(torch.nn.functional.conv2d(xq, wq, model.conv.bias, padding=1))
        y = symmetric(y, scales[f"{RELU}|OUTPUT"], 8, signed=False)
        y = symmetric(torch.flatten(y, 1), scales[f"{FC}|INPUT0"], 4, signed=False)
        expected = model.fc(y)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert not torch.allclose(got, model(x), atol=1e-3)


def test_tuple_output_post_hook_quantizes_output_port_0_only() -> None:
    class Chunky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = self.fc(x).chunk(2, dim=1)
            return a * 100 + b

    torch.manual_seed(0)
    model = Chunky().eval()
    graph = trace_model(model, {"sample_size": [2, 4]})
    setup = QuantizerSetup((QuantizationPoint("activation", "Chunky/chunk_0", None, QuantizerSpec(bits=2)),))
    q = compress_model(model, graph, setup)
    x = torch.randn(8, 4)
    with torch.no_grad():
        a, b = model.fc(x).chunk(2, dim=1)
        expected = symmetric(a, torch.tensor([1.0]), 2, signed=False) * 100 + b
        torch.testing.assert_close(q(x), expected, rtol=0, atol=0)


def test_replace_first_tensor_keeps_containers() -> None:
    pair = collections.namedtuple("pair", "values indices")
    out = replace_first_tensor([1, pair(torch.ones(1), torch.zeros(1))], lambda t: t * 3)
    assert isinstance(out, list) and isinstance(out[1], pair)
    assert out[0] == 1 and out[1].values.item() == 3 and out[1].indices.item() == 0


def test_lstm_weights_in_flat_weight_lists_are_quantized() -> None:
    torch.manual_seed(0)
    model = models.RecurrentTagger().eval()
    graph = trace_model(model, {"sample_size": [2, 7], "type": "long"})
    lstm = "RecurrentTagger/LSTM[lstm]/lstm_0"
    point = QuantizationPoint(
        "weight", lstm, 2, QuantizerSpec(bits=3, signed=True), weight_param="lstm.weight_ih_l0"
    )
    q = compress_model(model, graph, QuantizerSetup((point,)))
    q.nncf.get_quantizer(point.id).apply_minmax_init(torch.tensor([-0.2]), torch.tensor([0.2]))
    tokens = torch.randint(0, 50, (2, 7))
    reference = models.RecurrentTagger().eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        reference.lstm.weight_ih_l0.copy_(symmetric(model.lstm.weight_ih_l0, torch.tensor([0.2]), 3, True))
        torch.testing.assert_close(q(tokens), reference(tokens), rtol=0, atol=0)
        assert not torch.allclose(q(tokens), model(tokens))


def test_shared_weight_is_quantized_once_per_forward() -> None:
    model = models.TwiceCalled().eval()
    graph = trace_model(model, {"sample_size": [1, 8]})
    setup = build_quantizer_setup(graph, QUANTIZATION)
    assert [p.weight_param for p in setup.weights] == ["fc.weight"]
    q = compress_model(model, graph, setup)
    calls = count_calls(q.nncf.get_quantizer(setup.weights[0].id))
    q.train()
    q(torch.randn(2, 8)).sum().backward()
    assert calls[0] == 1


def test_weight_cache_serves_inference_and_notices_changes() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    quantizer = q.nncf.get_quantizer(f"{CONV}|WEIGHT")
    calls = count_calls(quantizer)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        first = q(x)
        q(x)
        assert calls[0] == 1  # reused across eval forwards
        quantizer.scale.mul_(2)  # a new version of the quantizer's parameter
        assert not torch.equal(q(x), first)
        assert calls[0] == 2
        quantizer.scale.div_(2)
        q.conv.weight.add_(0.1)
        q(x)
        assert calls[0] == 3
        q.conv.weight.data.sub_(0.1)  # .data bypasses version counters ...
        q(x)
        assert calls[0] == 3
        q.nncf.clear_weight_cache()  # ... so the cache is cleared by hand
        torch.testing.assert_close(q(x), first, rtol=0, atol=0)
        assert calls[0] == 4
    q.train()
    q(x)
    q(x)
    assert calls[0] == 6  # training forwards always quantize afresh


def test_bad_plans_name_the_problem() -> None:
    _, graph = tiny()
    setup = tiny_setup()
    typo = QuantizationPoint("activation", "TinyConv/relu_9", None, QuantizerSpec())
    with pytest.raises(GraphError, match="did you mean 'TinyConv/relu_0'"):
        build_hook_plan(graph, [(typo, nn.Identity())])
    twice = setup.weights[0].replace(target_node=FC)
    with pytest.raises(ValueError, match="both quantize parameter 'conv.weight'"):
        build_hook_plan(graph, [(setup.weights[0], nn.Identity()), (twice, nn.Identity())])


@pytest.mark.parametrize(
    ("build", "info"),
    [
        (models.resnet18, {"sample_size": [2, 3, 32, 32]}),
        (lambda: models.MixedCNN().eval(), {"sample_size": [2, 3, 8, 8]}),
        (lambda: models.RecurrentTagger().eval(), {"sample_size": [2, 7], "type": "long"}),
        (lambda: models.TinyTransformer().eval(), {"sample_size": [2, 5], "type": "long"}),
        (lambda: models.TwiceCalled().eval(), {"sample_size": [2, 8]}),
    ],
)
def test_runtime_names_match_the_trace(build, info) -> None:
    """With every default quantizer in place, no forward leaves the traced graph (names line up)."""
    model = build()
    graph = trace_model(model, info)
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION))
    from nncf_explore.graph.inputs import make_mock_inputs

    args, kwargs = make_mock_inputs(info)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntracedPathWarning)
        with torch.no_grad():
            q(*args, **kwargs)
        q.train()
        q(*args, **kwargs)


def branchy():
    torch.manual_seed(0)
    model = models.Branchy().eval()
    with torch.no_grad():
        model.fc.bias.fill_(1.0)
        model.fc.weight.fill_(0.1)
    graph = trace_model(model, {"sample_size": [1, 4]})  # ones: h.sum() > 0, the "pos" branch
    assert graph.find("Branchy/Linear[pos]/linear_0") and not graph.find("Branchy/Linear[neg]/linear_0")
    # Without range init an input quantizer would clip negative inputs to 0 and keep the branch.
    setup = build_quantizer_setup(graph, QUANTIZATION).without(["/nncf_model_input_0|OUTPUT"])
    return model, graph, setup


def test_divergence_warns_once_naming_the_ops_and_the_fix() -> None:
    model, graph, setup = branchy()
    q = compress_model(model, graph, setup)
    assert "Branchy/relu_0|OUTPUT" in q.nncf.quantizer_setup
    negative = torch.full((1, 4), -100.0)
    with pytest.warns(UntracedPathWarning) as record:
        for _ in range(3):
            q(negative)
    assert len(record) == 1
    message = str(record[0].message)
    assert "ran op 'Branchy/sigmoid_0' (and 'Branchy/Linear[neg]/linear_0'), which the traced" in message
    assert "skipped quantized op 'Branchy/relu_0', so quantizer 'Branchy/relu_0|OUTPUT' did not" in message
    assert record[0].filename == __file__  # points at the user's call
    assert "data-dependent control flow" in message
    assert "input_info" in message and "make the branch static" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntracedPathWarning)
        q(negative)  # already reported for this model
        q(torch.ones(1, 4))  # the traced path


def test_divergence_reports_are_per_model() -> None:
    model, graph, setup = branchy()
    first, second = compress_model(model, graph, setup), compress_model(model, graph, setup)
    negative = torch.full((1, 4), -100.0)
    for q in (first, second):
        with pytest.warns(UntracedPathWarning):
            q(negative)


def test_concurrent_forwards_on_two_threads_match_sequential_ones() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    inputs = [torch.randn(2, 3, 6, 6) for _ in range(8)]
    with torch.no_grad():
        expected = [q(x) for x in inputs]
    results: dict[int, torch.Tensor] = {}

    def work(indices: range) -> None:
        with torch.no_grad():
            for _ in range(20):
                for i in indices:
                    results[i] = q(inputs[i])

    threads = [threading.Thread(target=work, args=(range(k, 8, 2),)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, x in enumerate(expected):
        torch.testing.assert_close(results[i], x, rtol=0, atol=0)


def _nothing_left_in_torch() -> bool:
    module = torch.nn.modules.module
    return not (
        module._global_forward_hooks
        or module._global_forward_pre_hooks
        or module._global_forward_hooks_always_called
        or torch.overrides._is_torch_function_mode_enabled()
    )


def test_forward_leaves_no_global_hook_or_mode_behind_even_when_it_raises() -> None:
    model, graph = tiny()
    q = compress_model(model, graph, tiny_setup())
    q(torch.randn(2, 3, 6, 6))
    assert _nothing_left_in_torch()
    with pytest.raises(RuntimeError):
        q(torch.randn(2, 5, 6, 6))  # wrong channel count: the conv raises mid-forward
    assert _nothing_left_in_torch()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in q.modules())


class _WithHelper(nn.Module):
    """Calls a module it does not register (kept in a plain list): it gets no scope of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.helpers = [nn.ReLU()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.helpers[0](self.conv(x))


def test_modules_outside_the_model_get_no_scope_at_trace_and_run_time() -> None:
    model = _WithHelper().eval()
    graph = trace_model(model, {"sample_size": [1, 3, 8, 8]})
    assert "_WithHelper/relu_0" in {n.name for n in graph.nodes}
    setup = build_quantizer_setup(graph, {"compression": {"algorithm": "quantization"}})
    q = compress_model(model, graph, setup)
    x = torch.randn(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntracedPathWarning)  # the same names at run time
        out = q(x)
    assert torch.equal(out, torch.relu(out))
    assert _nothing_left_in_torch()
