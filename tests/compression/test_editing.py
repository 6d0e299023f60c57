"""EditSession: single edits on one traced model, each written as a config that places the same setup again."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from nncf_explore import ConfigError, EditSession, NNCFConfig, QuantizerSetup, create_compressed_model
from tests.compression import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tensors this small run faster on one thread, much faster on a busy machine."""
    with digits.one_thread():
        yield


CONV1_W = "DigitsNet/Conv2d[conv1]/conv2d_0|WEIGHT"
CONV2_W = "DigitsNet/Conv2d[conv2]/conv2d_0|WEIGHT"
RELU1 = "DigitsNet/relu_1|OUTPUT"


@pytest.fixture
def session() -> EditSession:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EditSession(
            digits.trained_fp32(),
            digits.quantization_config(),
            init_loader=digits.train_loader(shuffle=False),
            eval_fn=lambda model: digits.accuracy(model, *digits.eval_split()),
        )


def outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(digits.eval_split()[0])


def recreated_setup(config: dict[str, Any]) -> QuantizerSetup:
    """The setup create_compressed_model places for ``config`` (a pure-JSON dict)."""
    json.dumps(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl, _ = create_compressed_model(digits.trained_fp32(), config, dump_graphs=False)
    setup: QuantizerSetup = ctrl.setup
    return setup


def test_a_fresh_session_has_the_default_setup_and_a_minimal_config(session: EditSession) -> None:
    assert session.config_json() == digits.quantization_config()
    assert recreated_setup(session.config_json()) == session.setup
    assert session.setup == session.default_setup
    assert session.eval_metric() == pytest.approx(
        digits.accuracy(session.compressed_model, *digits.eval_split())
    )


def test_turning_a_weight_quantizer_off(session: EditSession) -> None:
    before = outputs(session.compressed_model)
    session.apply(session.setup.without([CONV2_W]))
    assert CONV2_W not in session.setup and CONV2_W not in session.controller.weight_quantizers
    assert session.config_json()["compression"]["weights"] == {
        "ignored_scopes": ["DigitsNet/Conv2d[conv2]/conv2d_0"]
    }
    assert recreated_setup(session.config_json()) == session.setup
    assert not torch.equal(outputs(session.compressed_model), before)


def test_switching_to_trial_then_changing_bits_and_mode(session: EditSession) -> None:
    session.apply(QuantizerSetup(session.setup.points, "TRIAL"))
    assert session.setup.target_device == "TRIAL" and session.config_json()["target_device"] == "TRIAL"
    assert session.setup == session.default_setup  # TRIAL's own defaults (per-tensor weights, no 7-bit fix)
    assert recreated_setup(session.config_json()) == session.setup
    session.apply(session.setup.replace_point(CONV1_W, spec={"bits": 4}))
    session.apply(session.setup.replace_point(RELU1, spec={"mode": "asymmetric"}))
    assert session.setup.get(CONV1_W).spec.bits == 4 and session.setup.get(RELU1).spec.mode == "asymmetric"
    assert session.controller.weight_quantizers[CONV1_W].quantizer_module_ref.num_bits == 4
    config = session.config_json()
    assert config["compression"]["initializer"]["precision"]["bitwidth_per_scope"] == [[4, CONV1_W]]
    assert config["compression"]["scope_overrides"]["activations"] == {RELU1: {"mode": "asymmetric"}}
    assert recreated_setup(config) == session.setup
    assert session.eval_metric() > 95.0


def test_four_bits_on_target_device_any_names_trial_and_changes_nothing(session: EditSession) -> None:
    previous, config, before = session.setup, session.config_json(), outputs(session.compressed_model)
    with pytest.raises(
        ConfigError, match=r"4 bits is not allowed: target_device 'ANY' .*\"target_device\": \"TRIAL\""
    ):
        session.apply(session.setup.replace_point(CONV2_W, spec={"bits": 4}))
    assert session.setup is previous and session.config_json() == config
    torch.testing.assert_close(outputs(session.compressed_model), before, rtol=0, atol=0)


def test_export_config_writes_valid_json_atomically(session: EditSession, tmp_path) -> None:
    session.apply(session.setup.without([CONV2_W]))
    path = tmp_path / "configs" / "edited.json"
    path.parent.mkdir()
    path.write_text("{ stale")
    assert session.export_config(path) == str(path)
    written = json.loads(path.read_text())
    assert written == session.config_json()
    assert NNCFConfig.from_json(str(path)).to_dict() == written
    assert [p.name for p in path.parent.iterdir()] == ["edited.json"]


def test_session_from_an_existing_controller_edits_that_model(session: EditSession) -> None:
    other = EditSession(session.compressed_model, digits.quantization_config(), controller=session.controller)
    assert other.compressed_model is session.compressed_model and other.setup == session.setup
    other.apply(other.setup.without([CONV1_W]))
    assert CONV1_W not in session.controller.setup
