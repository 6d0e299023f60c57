"""A compression_state is checked like a config: bad fields get a CompressionStateError with their path."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model
from nncf_explore.errors import CompressionStateError, ConfigError
from tests.compression.tiny import CONV, RELU, TinyConv

POINTS = "compression_state.builder_state.quantization.quantizer_setup.points"


def config(device: str = "TRIAL", **compression: Any) -> dict[str, Any]:
    return {
        "input_info": {"sample_size": [2, 3, 6, 6]},
        "target_device": device,
        "compression": compression or {"algorithm": "quantization"},
    }


@cache
def saved_state(device: str = "TRIAL") -> str:
    """A valid state as JSON (points: conv weight, fc weight, input, relu output)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(TinyConv().eval(), config(device), dump_graphs=False)
    return json.dumps(ctrl.get_compression_state())


def load(state: Any, cfg: dict[str, Any] | None = None) -> torch.Tensor:
    """Build from ``state`` and run one forward (a state that fails only there is a bug too)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, model = create_compressed_model(
            TinyConv().eval(), cfg or config(), compression_state=state, dump_graphs=False
        )
    with torch.no_grad():
        out: torch.Tensor = model(torch.randn(2, 3, 6, 6))
    return out


def mutated(change: Callable[[list[dict[str, Any]]], None], device: str = "TRIAL") -> dict[str, Any]:
    state: dict[str, Any] = json.loads(saved_state(device))
    change(state["builder_state"]["quantization"]["quantizer_setup"]["points"])
    return state


def test_the_saved_state_loads() -> None:
    assert torch.isfinite(load(json.loads(saved_state()))).all()


def test_bits_past_the_devices_range_are_refused() -> None:
    state = mutated(lambda points: points[0]["spec"].update(bits=16))
    with pytest.raises(CompressionStateError) as info:
        load(state)
    assert str(info.value).startswith(f"{POINTS}[0].spec.bits: 16 bits is out of range; use 2..8")


def test_bits_follow_the_config_field_rules() -> None:
    state = mutated(lambda points: points[2]["spec"].update(bits="8"))
    with pytest.raises(CompressionStateError, match=rf"^{POINTS}\[2\]\.spec\.bits: "):
        load(state)


def test_an_unknown_kind_is_refused_not_dropped() -> None:
    state = mutated(lambda points: points[3].update(kind="junk"))
    with pytest.raises(CompressionStateError) as info:
        load(state)
    assert str(info.value).startswith(f"{POINTS}[3].kind: 'junk' is not one of 'weight', 'activation'")


def test_a_weight_quantizer_moved_onto_a_relu_is_refused() -> None:
    def move(points: list[dict[str, Any]]) -> None:
        points[0]["target_node"] = RELU
        del points[0]["id"]

    with pytest.raises(CompressionStateError) as info:
        load(mutated(move))
    assert str(info.value).startswith(
        f"{POINTS}[0].target_node: a weight quantizer needs a node with a weight, and '{RELU}' (relu) has "
        f"none (nodes with a weight: ['{CONV}', "
    )


@pytest.mark.parametrize(
    ("device", "scale_shape", "message"),
    [
        ("TRIAL", [5, 1, 1, 1], r"\[0\]\.scale_shape: a per-tensor quantizer needs scale_shape of ones"),
        (
            "CPU",
            [5, 1, 1, 1],
            r"\[0\]\.scale_shape: \[5, 1, 1, 1\] does not fit the quantized tensor of shape",
        ),
        ("CPU", [4, 1, 1], r"\[0\]\.scale_shape: \[4, 1, 1\] does not fit the quantized tensor of shape"),
    ],
)
def test_a_bad_scale_shape_is_refused_before_the_first_forward(
    device: str, scale_shape: list[int], message: str
) -> None:
    state = mutated(lambda points: points[0].update(scale_shape=scale_shape), device)
    with pytest.raises(CompressionStateError, match=message):
        load(state, config(device))


def test_a_quantization_state_with_a_sparsity_only_config_is_refused() -> None:
    sparsity = config(algorithm="magnitude_sparsity")
    with pytest.raises(CompressionStateError) as info:
        load(json.loads(saved_state()), sparsity)
    assert str(info.value).startswith(
        "compression_state.builder_state.quantization: the state holds 'quantization', but the config's "
        "algorithms are 'magnitude_sparsity'; add the 'quantization' section"
    )


def test_a_malformed_ctrl_state_names_its_path() -> None:
    state = json.loads(saved_state())
    del state["ctrl_state"]["quantization"]["scheduler_state"]["current_epoch"]
    with pytest.raises(
        CompressionStateError,
        match=r"^compression_state.ctrl_state.quantization.scheduler_state.current_epoch: expected an integer",
    ):
        load(state)


def test_compression_state_error_is_a_config_error() -> None:
    assert issubclass(CompressionStateError, ConfigError) and issubclass(CompressionStateError, ValueError)


# -- fuzzing ----------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(-2, 6), max_size=5),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (dict keys and list indices)."""
    found = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


def _mutate(state: Any, path: tuple[Any, ...], action: str, junk: Any) -> None:
    parent = state
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "junk":
        parent[key] = junk
    elif action == "wrap":  # a right value of the wrong type
        parent[key] = [parent[key]]
    else:
        parent[key] = str(parent[key])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_mutated_state_loads_or_raises_our_error(data: st.DataObject) -> None:
    state = json.loads(saved_state())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(state)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["delete", "junk", "wrap", "stringify"]), label="action")
        _mutate(state, path, action, data.draw(JUNK, label="junk"))
    try:
        out = load(copy.deepcopy(state))
    except CompressionStateError as exc:
        assert str(exc).startswith("compression_state"), str(exc)
    else:
        assert out.shape == (2, 5)


def test_a_state_breaking_the_devices_rule_at_one_point_is_refused() -> None:
    # On NPU a depthwise convolution's input may only be 8-bit, though 4 bits is fine elsewhere.
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8))
    config = NNCFConfig.from_dict(
        {
            "input_info": {"sample_size": [1, 3, 12, 12]},
            "target_device": "NPU",
            "compression": {"algorithm": "quantization"},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(net, config, dump_graphs=False)
        state = copy.deepcopy(ctrl.get_compression_state())
        points = state["builder_state"]["quantization"]["quantizer_setup"]["points"]
        index = next(
            i for i, p in enumerate(points) if p["kind"] == "activation" and "ReLU" in p["target_node"]
        )
        points[index]["spec"]["bits"] = 4
        with pytest.raises(
            CompressionStateError, match=rf"points\[{index}\]\.spec\.bits: .*4 bits is not allowed"
        ):
            create_compressed_model(net, config, compression_state=state, dump_graphs=False)
