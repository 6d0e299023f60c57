"""Tracer coverage: every model traces, lints, and its traced run equals eager PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nncf_explore.errors import TraceError
from nncf_explore.graph import Graph, OpCategory, nncf_model_input, normalize_node_name, trace_model
from nncf_explore.graph.tracking import OpTracker
from tests import models
from tests.data import NNCF_RESNET18_GOLDEN


def traced_output(model: nn.Module, *args: object, **kwargs: object) -> object:
    """Run ``model`` under an active tracker (scoped hooks and mode) and return its output."""
    with torch.no_grad(), OpTracker(model):
        return model(*args, **kwargs)


def assert_same_as_eager(model: nn.Module, *args: object, atol: float = 0.0, **kwargs: object) -> None:
    model.eval()
    with torch.no_grad():
        expected = model(*args, **kwargs)
    got = traced_output(model, *args, **kwargs)
    torch.testing.assert_close(got, expected, rtol=0, atol=atol)


def names(g: Graph) -> list[str]:
    return [n.name for n in g.nodes]


def test_resnet18_matches_nncf_golden_node_list() -> None:
    golden = json.loads(NNCF_RESNET18_GOLDEN.read_text())["original_graph_nodes"]
    g = trace_model(models.resnet18(), {"sample_size": [1, 3, 224, 224]})
    g.lint()
    assert [(n.name, n.op) for n in g.nodes] == [(normalize_node_name(x["name"]), x["type"]) for x in golden]
    assert len(g) == 71


def test_resnet18_node_records_module_and_layer_attributes() -> None:
    g = trace_model(models.resnet18(), {"sample_size": [1, 3, 64, 64]})
    conv = g.node("ResNet/Sequential[layer2]/BasicBlock[0]/Sequential[downsample]/NNCFConv2d[0]/conv2d_0")
    assert conv.module == "layer2.0.downsample.0"
    assert conv.module_class == "Conv2d"
    assert conv.category is OpCategory.CONVOLUTION
    assert conv.weight == "layer2.0.downsample.0.weight"
    assert conv.attrs["in_channels"] == 64 and conv.attrs["out_channels"] == 128
    assert conv.attrs["kernel_size"] == (1, 1) and conv.attrs["stride"] == (2, 2)
    assert conv.attrs["weight_shape"] == (128, 64, 1, 1) and conv.attrs["has_bias"] is False
    fc = g.node("ResNet/Linear[fc]/linear_0")
    assert fc.attrs["in_features"] == 512 and fc.attrs["has_bias"] is True
    edge = g.in_edges(fc.id)[0]
    assert edge.shape == (1, 512) and edge.dtype == "float32" and edge.in_port == 0
    relus = [
        n.name for n in g.nodes if n.name.startswith("ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]")
    ]
    assert relus == [
        "ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__0",
        "ResNet/Sequential[layer1]/BasicBlock[0]/ReLU[relu]/relu__1",
    ]


def test_mixed_cnn_covers_depthwise_concat_raw_param_inplace_and_reshapes() -> None:
    torch.manual_seed(0)
    model = models.MixedCNN().eval()
    g = trace_model(model, {"sample_size": [2, 3, 8, 8], "filler": "random"})
    g.lint()
    ops = [n.op for n in g.nodes]
    for op in ["conv2d", "__iadd__", "cat", "permute", "contiguous", "view", "__getitem__", "linear"]:
        assert op in ops, op
    assert g.node("MixedCNN/Conv2d[dw]/conv2d_0").category is OpCategory.DEPTHWISE_CONVOLUTION
    raw = g.node("MixedCNN/conv2d_0")
    assert raw.weight == "raw_weight" and raw.module_class == "MixedCNN"
    cat = g.node("MixedCNN/cat_0")
    assert cat.attrs["axis"] == 1 and [e.in_port for e in g.in_edges(cat.id)] == [0, 1]
    assert_same_as_eager(model, torch.randn(2, 3, 8, 8))


def test_embedding_lstm_gru_on_integer_tokens() -> None:
    model = models.RecurrentTagger().eval()
    g = trace_model(model, {"sample_size": [2, 7], "type": "long", "filler": "zeros"})
    g.lint()
    assert [n.op for n in g.nodes if n.category is OpCategory.RECURRENT] == ["lstm", "gru"]
    lstm = g.node("RecurrentTagger/LSTM[lstm]/lstm_0")
    assert set(lstm.params.values()) >= {"lstm.weight_ih_l0", "lstm.weight_hh_l0"}
    assert g.out_edges(g.input_nodes[0].id)[0].is_integer
    assert_same_as_eager(model, torch.randint(0, 50, (2, 7)))


def test_transformer_encoder_and_multihead_attention_are_traced_inside() -> None:
    torch.manual_seed(0)
    model = models.TinyTransformer().eval()
    g = trace_model(model, {"sample_size": [2, 5], "type": "long"})
    g.lint()
    ops = [n.op for n in g.nodes]
    assert "multi_head_attention_forward" not in ops and "_native_multi_head_attention" not in ops
    assert ops.count("scaled_dot_product_attention") == 2
    attn = "TinyTransformer/TransformerEncoder[encoder]/ModuleList[layers]/TransformerEncoderLayer[0]/MultiheadAttention[self_attn]"
    assert g.node(f"{attn}/linear_0").weight == "encoder.layers.0.self_attn.in_proj_weight"
    assert g.node(f"{attn}/linear_1").weight == "encoder.layers.0.self_attn.out_proj.weight"
    # eager eval mode runs torch's fused kernel; our decomposition agrees to float rounding
    assert_same_as_eager(model, torch.randint(0, 50, (2, 5)), atol=1e-5)
    cross = models.CrossAttention().eval()
    g2 = trace_model(cross, [{"sample_size": [2, 3, 16]}, {"sample_size": [2, 4, 16]}])
    g2.lint()
    assert len(g2.input_nodes) == 2
    assert [n.op for n in g2.nodes].count("bmm") == 2  # need_weights=True: explicit attention
    assert_same_as_eager(cross, torch.randn(2, 3, 16), torch.randn(2, 4, 16), atol=1e-5)


def test_attention_decomposition_matches_torch_with_masks() -> None:
    from nncf_explore.graph.decompositions import multi_head_attention_forward as ours

    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    q, kv = torch.randn(5, 2, 16), torch.randn(7, 2, 16)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 5:] = True
    causal = torch.triu(torch.ones(5, 7, dtype=torch.bool), diagonal=1)
    for need_weights in (True, False):
        for q_, k_ in ((q, kv), (q, q)):
            kwargs = dict(  # noqa: C408
                key_padding_mask=pad if k_ is kv else None,
                need_weights=need_weights,
                attn_mask=causal[:, : k_.shape[0]],
            )
            args = (
                q_,
                k_,
                k_,
                16,
                4,
                mha.in_proj_weight,
                mha.in_proj_bias,
                None,
                None,
                False,
                0.0,
                mha.out_proj.weight,
                mha.out_proj.bias,
            )
            expected = torch.nn.functional.multi_head_attention_forward(*args, training=False, **kwargs)
            got = ours(*args, training=False, **kwargs)
            torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=0)
            if need_weights:
                torch.testing.assert_close(got[1], expected[1], atol=1e-6, rtol=0)


def test_dict_and_list_inputs_through_wrap_inputs_fn() -> None:
    model = models.DictListModel().eval()
    feats = {"x": torch.randn(1, 4), "y": torch.randn(1, 6)}
    extras = [torch.randn(1, 8), torch.randn(1, 8)]

    def wrap_inputs(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        f, ex = args
        return ({k: nncf_model_input(v) for k, v in f.items()}, [nncf_model_input(e) for e in ex]), kwargs

    def dummy_forward(m: nn.Module) -> object:
        return m(*wrap_inputs((feats, extras), {})[0])

    g = trace_model(model, dummy_forward_fn=dummy_forward, wrap_inputs_fn=wrap_inputs)
    g.lint()
    assert [n.name for n in g.input_nodes] == [f"/nncf_model_input_{i}" for i in range(4)]
    assert_same_as_eager(model, feats, extras)


def test_dummy_forward_without_wrap_inputs_raises_nncf_error() -> None:
    with pytest.raises(ValueError, match="wrap_inputs_fn"):
        trace_model(nn.Linear(2, 2), dummy_forward_fn=lambda m: m(torch.ones(1, 2)))


def test_keyword_inputs() -> None:
    model = models.KeywordModel().eval()
    g = trace_model(model, [{"sample_size": [1, 4]}, {"sample_size": [1, 3], "keyword": "scale"}])
    g.lint()
    assert len(g.input_nodes) == 2
    mul = g.node("KeywordModel/__mul___0")
    assert {g.nodes[e.src].name for e in g.in_edges(mul.id)} == {
        "KeywordModel/Linear[fc]/linear_0",
        "/nncf_model_input_1",
    }
    assert_same_as_eager(model, torch.randn(1, 4), scale=torch.randn(1, 3))


def test_module_called_twice_gets_call_orders() -> None:
    g = trace_model(models.TwiceCalled(), {"sample_size": [1, 8]})
    g.lint()
    assert names(g)[1:5] == [
        "TwiceCalled/Linear[fc]/linear_0",
        "TwiceCalled/ReLU[act]/relu_0",
        "TwiceCalled/Linear[fc]/linear_1",
        "TwiceCalled/ReLU[act]/relu_1",
    ]


def test_matmul_against_parameter_records_the_weight() -> None:
    g = trace_model(models.ParamMatmul(), {"sample_size": [2, 8]})
    mm = g.node("ParamMatmul/matmul_0")
    assert mm.weight == "w" and mm.attrs["weight_port"] == 1 and mm.attrs["weight_shape"] == (8, 4)
    assert_same_as_eager(models.ParamMatmul().eval(), torch.randn(2, 8))


def test_control_flow_traces_the_executed_path() -> None:
    torch.manual_seed(0)
    model = models.Branchy().eval()
    with torch.no_grad():
        model.fc.bias.fill_(10.0)  # ones input -> positive sum -> the "pos" branch
    g = trace_model(model, {"sample_size": [1, 4]})
    assert "Branchy/Linear[pos]/linear_0" in g and "Branchy/Linear[neg]/linear_0" not in g
    assert [n.op for n in g.nodes if n.category is OpCategory.ACTIVATION] == ["relu"]
    with torch.no_grad():
        model.fc.bias.fill_(-10.0)
    g2 = trace_model(model, {"sample_size": [1, 4]})
    assert "Branchy/Linear[neg]/linear_0" in g2


def test_tracing_twice_is_identical_and_leaves_torch_and_model_unchanged() -> None:
    import torch.nn.functional as F

    before = (dict(vars(F)), dict(vars(torch.Tensor)), {k: getattr(torch, k) for k in dir(torch)})
    model = models.MixedCNN()
    model.train()
    model.bn.eval()
    flags = [m.training for m in model.modules()]
    g1 = trace_model(model, {"sample_size": [1, 3, 8, 8]})
    g2 = trace_model(model, {"sample_size": [1, 3, 8, 8]})
    assert g1 == g2
    assert [m.training for m in model.modules()] == flags
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert not torch.nn.modules.module._global_forward_hooks
    assert not torch.nn.modules.module._global_forward_pre_hooks
    after = (dict(vars(F)), dict(vars(torch.Tensor)), {k: getattr(torch, k) for k in dir(torch)})
    assert before[0] == after[0] and before[1] == after[1]
    assert all(before[2][k] is after[2][k] for k in before[2])
    assert not torch.overrides._is_torch_function_mode_enabled()


def test_trace_error_names_module_and_op_and_is_chained() -> None:
    model = models.resnet18()
    with pytest.raises(TraceError) as info:
        trace_model(model, {"sample_size": [1, 5, 32, 32]})
    message = str(info.value)
    assert "'conv1' (Conv2d)" in message and "conv2d" in message and "input_info" in message
    assert info.value.__cause__ is not None
    assert all(not m._forward_hooks for m in model.modules())
    assert not torch.nn.modules.module._global_forward_hooks
    assert not torch.nn.modules.module._global_forward_pre_hooks


def test_graph_json_round_trip_and_networkx() -> None:
    g = trace_model(models.MixedCNN(), {"sample_size": [1, 3, 8, 8]})
    again = Graph.from_dict(json.loads(g.to_json()))
    assert again == g
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == len(g) and nxg.number_of_edges() == len(g.edges)


def test_dump_dot_uses_nncf_dialect(tmp_path: Path) -> None:
    g = trace_model(models.RecurrentTagger(), {"sample_size": [1, 3], "type": "long"})
    path = tmp_path / "g.dot"
    g.dump_dot(str(path))
    text = path.read_text()
    assert '"0 /nncf_model_input_0"' in text
    assert '"1 RecurrentTagger/Embedding[emb]/embedding_0"' in text
    assert "style=dashed" in text  # the integer token edge
    assert 'label="[1, 3] \\n0 -> 0"' in text  # dot's own line break, not an escaped backslash


def test_lint_catches_broken_graphs() -> None:
    from nncf_explore.errors import GraphError
    from nncf_explore.graph.ir import Edge

    g = trace_model(nn.Linear(2, 2), {"sample_size": [1, 2]})
    bad = Graph(g.nodes, [*g.edges, Edge(2, 1, (1, 2), "float32", 0, 5)])
    with pytest.raises(GraphError, match="backwards"):
        bad.lint()


def test_node_lookup_suggests_close_names() -> None:
    from nncf_explore.errors import GraphError

    g = trace_model(models.resnet18(), {"sample_size": [1, 3, 32, 32]})
    with pytest.raises(GraphError, match=r"did you mean 'ResNet/Conv2d\[conv1\]/conv2d_0'"):
        g.node("ResNet/Conv2d[conv9]/conv2d_0")
