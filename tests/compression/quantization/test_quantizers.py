"""Quantizer modules: NNCF state-dict names, range init (§5.4), precision and gradient switches."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from nncf_explore.compression.quantization.quantizers import (
    AsymmetricQuantizer,
    SymmetricQuantizer,
    make_quantizer,
)
from nncf_explore.compression.quantization.spec import QuantizerSpec


def test_symmetric_state_dict_has_nncf_names_and_initial_values() -> None:
    q = make_quantizer(QuantizerSpec(per_channel=True), (4, 1, 1, 1), 0)
    assert isinstance(q, SymmetricQuantizer)
    sd = q.state_dict()
    assert list(sd) == ["scale", "_num_bits", "enabled", "signed_tensor"]
    assert torch.equal(sd["scale"], torch.ones(4, 1, 1, 1))
    for name, value in (("_num_bits", 8), ("enabled", 1), ("signed_tensor", 0)):
        assert sd[name].dtype == torch.int32 and sd[name].tolist() == [value]
    assert not q.signed and not q.is_initialized


def test_asymmetric_state_dict_has_nncf_names_and_initial_values() -> None:
    q = make_quantizer(QuantizerSpec(mode="asymmetric"), (1,), None)
    assert isinstance(q, AsymmetricQuantizer)
    sd = q.state_dict()
    assert list(sd) == ["input_low", "input_range", "_num_bits", "enabled"]
    assert (sd["input_low"].item(), sd["input_range"].item()) == (0.0, 1.0)


def test_unforced_symmetric_init_decides_sign_and_floors_scale() -> None:
    q = make_quantizer(QuantizerSpec(per_channel=True), (3, 1), 0)
    q.apply_minmax_init(torch.tensor([0.0, -0.02, -5.0]), torch.tensor([0.05, 0.01, 2.0]))
    assert q.signed
    assert q.scale.flatten().tolist() == pytest.approx([0.1, 0.1, 5.0])
    assert q.is_initialized
    q.apply_minmax_init(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert not q.signed


@pytest.mark.parametrize("forced", [True, False])
def test_forced_signedness_wins_over_statistics(forced: bool) -> None:
    q = make_quantizer(QuantizerSpec(signed=forced), (1,), None)
    assert q.signed is forced
    q.apply_minmax_init(torch.tensor([-1.0 if not forced else 1.0]), torch.tensor([2.0]))
    assert q.signed is forced
    assert q.scale.item() == 2.0


def test_asymmetric_init_widens_narrow_channels_to_one_percent() -> None:
    q = make_quantizer(QuantizerSpec(mode="asymmetric", per_channel=True), (3, 1), 0)
    q.apply_minmax_init(torch.tensor([-1.0, 2.0, 0.0]), torch.tensor([9.0, 2.0, 0.05]))
    assert q.input_range.flatten().tolist() == pytest.approx([10.0, 0.1, 0.1])
    assert q.input_low.flatten().tolist() == pytest.approx([-1.0, 1.95, -0.025])


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_statistics_raise(bad: float) -> None:
    q = make_quantizer(QuantizerSpec(), (1,), None)
    with pytest.raises(ValueError, match="not finite"):
        q.apply_minmax_init(torch.tensor([bad]), torch.tensor([bad]))


def test_statistics_of_wrong_size_raise() -> None:
    q = make_quantizer(QuantizerSpec(per_channel=True), (3, 1), 0)
    with pytest.raises(ValueError, match="expected 3"):
        q.apply_minmax_init(torch.zeros(2), torch.ones(2))


def test_statistics_accept_any_shape_with_the_right_size() -> None:
    q = make_quantizer(QuantizerSpec(per_channel=True), (1, 3, 1, 1), 1)
    q.apply_minmax_init(torch.zeros(3), torch.tensor([[1.0, 2.0, 3.0]]))
    assert q.scale.shape == (1, 3, 1, 1)


def test_set_bits_changes_levels_and_keeps_scale() -> None:
    q = make_quantizer(QuantizerSpec(signed=True, half_range=True), (1,), None)
    q.apply_minmax_init(torch.tensor([-1.0]), torch.tensor([3.0]))
    assert (q.num_bits, q.level_low, q.level_high, q.levels) == (8, -64, 63, 128)
    q.set_bits(4)
    assert (q.num_bits, q.level_low, q.level_high) == (4, -4, 3)
    assert q.scale.item() == 3.0
    assert q.spec.bits == 4 and q.state_dict()["_num_bits"].tolist() == [4]
    with pytest.raises(ValueError, match="bits >= 3"):
        q.set_bits(2)


def test_enable_and_disable_gradients() -> None:
    q = make_quantizer(QuantizerSpec(mode="asymmetric"), (1,), None)
    q.disable_gradients()
    assert not any(p.requires_grad for p in q.parameters())
    q.enable_gradients()
    assert all(p.requires_grad for p in q.parameters())


def test_loading_a_state_dict_marks_initialized_and_restores_values() -> None:
    src = make_quantizer(QuantizerSpec(bits=4), (1,), None)
    src.apply_minmax_init(torch.tensor([-0.5]), torch.tensor([0.7]))
    src.disable()
    dst = make_quantizer(QuantizerSpec(bits=8), (1,), None)
    dst.load_state_dict(src.state_dict())
    assert dst.is_initialized and dst.signed and not dst.is_enabled
    assert (dst.num_bits, dst.scale.item()) == (4, pytest.approx(0.7))


def test_optional_buffers_may_be_missing_from_a_checkpoint() -> None:
    src = make_quantizer(QuantizerSpec(), (1,), None)
    sd = {k: v for k, v in src.state_dict().items() if k not in ("_num_bits", "enabled")}
    dst = make_quantizer(QuantizerSpec(bits=4), (1,), None)
    dst.load_state_dict(sd, strict=True)
    assert dst.num_bits == 4 and dst.is_enabled


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_logarithm_scale_stores_log_and_exposes_real_values(mode: str) -> None:
    spec = QuantizerSpec(mode=mode, logarithm_scale=True, signed=True)  # type: ignore[arg-type]
    plain = make_quantizer(QuantizerSpec(mode=mode, signed=True), (1,), None)  # type: ignore[arg-type]
    logq = make_quantizer(spec, (1,), None)
    name = "scale" if mode == "symmetric" else "input_range"
    assert logq.state_dict()[name].item() == pytest.approx(1.0)
    for q in (plain, logq):
        q.apply_minmax_init(torch.tensor([-2.0]), torch.tensor([3.0]))
    assert getattr(logq, name).item() == pytest.approx(
        torch.log(torch.tensor(getattr(plain, name).item())).item()
    )
    assert logq.state_dict()[name].item() == pytest.approx(getattr(plain, name).item())
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(logq(x), plain(x))
    fresh = make_quantizer(spec, (1,), None)
    fresh.load_state_dict(plain.state_dict())
    torch.testing.assert_close(fresh(x), plain(x))


def test_deepcopy_and_torch_save_keep_state_and_hooks() -> None:
    q = make_quantizer(QuantizerSpec(logarithm_scale=True), (1,), None)
    q.apply_minmax_init(torch.tensor([0.0]), torch.tensor([2.0]))
    buffer = io.BytesIO()
    torch.save(q, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(q), torch.load(buffer, weights_only=False)):
        assert clone.state_dict()["scale"].item() == pytest.approx(2.0)
        assert clone.is_initialized


def test_broadcast_is_a_noop_without_distributed() -> None:
    q = make_quantizer(QuantizerSpec(), (1,), None)
    q.broadcast_from(0)
    assert q.scale.item() == 1.0


def test_repr_shows_label_levels_and_state() -> None:
    q = make_quantizer(QuantizerSpec(bits=4, signed=True, narrow_range=True), (1,), None)
    q.disable()
    assert repr(q) == "SymmetricQuantizer(B:4 M:S SGN:S PC:N NR:Y, levels=-7..7, disabled)"


def test_uninitialized_activation_quantizer_covers_zero_to_one() -> None:
    q = make_quantizer(QuantizerSpec(), (1,), None)
    out = q(torch.tensor([-1.0, 0.5, 2.0]))
    assert out[0].item() == 0.0 and out[2].item() == pytest.approx(1.0)
