"""Replayed inference forwards: bit-identical to the eager forward, used only where they are sound."""

from __future__ import annotations

import collections
import copy
import importlib.util
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_explore.compression.divergence import UntracedPathWarning
from nncf_explore.compression.model import compress_model
from nncf_explore.compression.quantization.build import build_quantizer_setup
from nncf_explore.compression.replay import ReplayWarning
from nncf_explore.compression.runtime import HookRunner
from nncf_explore.graph import trace_model
from tests import models
from tests.compression.test_runtime import branchy

QUANTIZATION = {"compression": {"algorithm": "quantization"}}


def compressed(model: nn.Module, shape: list[int]) -> nn.Module:
    model = model.eval()
    graph = trace_model(model, {"sample_size": shape})
    setup = build_quantizer_setup(graph, QUANTIZATION)
    q = compress_model(model, graph, setup)
    torch.manual_seed(1)
    q.nncf.init_range([(torch.randn(*shape), 0) for _ in range(2)], num_init_samples=2, progress=False)
    return q.eval()


@contextmanager
def eager_forwards() -> Iterator[list[int]]:
    """Counts forwards that ran eagerly (recordings included)."""
    count = [0]
    original = HookRunner.run

    def counting(self: HookRunner, *args: object, **kwargs: object) -> object:
        count[0] += 1
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    HookRunner.run = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        HookRunner.run = original  # type: ignore[method-assign]


def eager_and_replayed(q: nn.Module, inputs: list[torch.Tensor]) -> tuple[list[object], list[object]]:
    with torch.no_grad():
        q.nncf.enable_replay(False)
        eager = [q(x) for x in inputs]
        q.nncf.enable_replay()
        replayed = [q(x) for x in inputs]  # the first of each signature records
        replayed = [q(x) for x in inputs]
    return eager, replayed


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 64, 64]),
        (models.resnet18, [2, 3, 32, 32]),
    ],
    ids=["mobilenet_v2", "resnet18"],
)
def test_replay_is_bit_identical_to_the_eager_forward_and_runs_no_eager_forward(
    build: Callable[[], nn.Module], shape: list[int]
) -> None:
    torch.manual_seed(0)
    q = compressed(build(), shape)
    inputs = [torch.randn(*shape) for _ in range(3)]
    kept = [x.clone() for x in inputs]
    eager, replayed = eager_and_replayed(q, inputs)
    for a, b in zip(eager, replayed, strict=True):
        assert torch.equal(a, b)  # type: ignore[arg-type]
    assert all(torch.equal(x, k) for x, k in zip(inputs, kept, strict=True))  # inputs never overwritten
    with eager_forwards() as count, torch.no_grad():
        q(inputs[0])
        q(torch.randn(*shape))
    assert count[0] == 0
    status = q.nncf.replay_status()
    assert (status.state, status.recordings) == ("on", 1)


def test_recording_quantizes_in_place_only_where_nothing_reads_the_source_later() -> None:
    class Aliasing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.bn(self.conv(x))
            b = F.relu(a, inplace=True)  # b is a: its quantizer must copy, since a is read below
            return self.conv2(b) + a

    torch.manual_seed(0)
    q = compressed(Aliasing(), [1, 3, 8, 8])
    x = torch.randn(1, 3, 8, 8)
    eager, replayed = eager_and_replayed(q, [x])
    assert torch.equal(eager[0], replayed[0])  # type: ignore[arg-type]
    source = recording_source(q, x)
    assert source.count("owned=False") == 2  # the caller's input, and the ReLU output ``a`` still read


def recording_source(q: nn.Module, x: torch.Tensor) -> str:
    from nncf_explore.compression import recording

    sources: list[str] = []
    original = recording.Recorder.compile

    def keep(self: recording.Recorder) -> recording.Program:
        program = original(self)
        sources.append(self.source)
        return program

    recording.Recorder.compile = keep  # type: ignore[method-assign]
    try:
        q.nncf.enable_replay()
        with torch.no_grad():
            q(x)
    finally:
        recording.Recorder.compile = original  # type: ignore[method-assign]
    return sources[0]


def test_generated_code_frees_intermediates_and_quantizes_relu6_outputs_in_place() -> None:
    torch.manual_seed(0)
    q = compressed(models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 32, 32])
    source = recording_source(q, torch.randn(1, 3, 32, 32))
    assert source.count("owned=True") >= 30  # each ReLU6's output: nothing reads the BN output after it
    assert source.count("owned=False") == 1  # the model input belongs to the caller
    assert "del " in source


def test_each_input_signature_is_recorded_once_and_replayed() -> None:
    torch.manual_seed(0)
    q = compressed(models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 32, 32])
    q.nncf.enable_replay()
    with torch.no_grad(), eager_forwards() as count:
        for _ in range(3):
            q(torch.randn(1, 3, 32, 32))
            q(torch.randn(2, 3, 32, 32))
    assert count[0] == 2
    assert q.nncf.replay_status().recordings == 2


def test_training_autograd_and_other_modes_run_eagerly() -> None:
    torch.manual_seed(0)
    q = compressed(models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 32, 32])
    q.nncf.enable_replay()
    x = torch.randn(2, 3, 32, 32)  # two samples: batch norm trains on it below
    with torch.no_grad():
        q(x)
    with eager_forwards() as count:
        q(x)  # autograd on
        with torch.no_grad():
            q.train()
            q(x)
            q.eval()
            handle = nn.modules.module.register_module_forward_hook(lambda *_: None)
            q(x)  # a global hook expects module calls
            handle.remove()
            q(x)  # replayed again
    assert count[0] == 3


def test_changed_module_attributes_parameters_and_setups_are_recorded_again() -> None:
    torch.manual_seed(0)
    q = compressed(models.resnet18(), [1, 3, 32, 32])
    x = torch.randn(1, 3, 32, 32)
    q.nncf.enable_replay()
    with torch.no_grad(), eager_forwards() as count:
        q(x)
        q.layer1[0].downsample = nn.Identity()  # a path change
        replayed = q(x)
        q.nncf.enable_replay(False)
        expected = q(x)
        q.nncf.enable_replay()
        q(x)
        q.fc.weight = nn.Parameter(q.fc.weight.detach() * 2)  # a new parameter object
        q(x)
        setup = q.nncf.quantizer_setup
        q.nncf.apply_setup(setup.with_points(p.respec(bits=4) if p.kind == "weight" else p for p in setup))
        q(x)
        q.layer1[0].register_forward_hook(lambda *_: None)
        q(x)
        q(x)
    assert torch.equal(replayed, expected)
    assert count[0] == 7  # initial, downsample, eager, re-enable, parameter, setup, hook


def test_data_dependent_control_flow_is_refused_with_the_reason_and_stays_correct() -> None:
    model, graph, setup = branchy()
    q = compress_model(model, graph, setup).eval()
    q.nncf.enable_replay()
    with (
        torch.no_grad(),
        pytest.warns(ReplayWarning, match=r"reads tensor values into Python \(.*__bool__\)"),
    ):
        q(torch.ones(1, 4))
    assert q.nncf.replay_status().state == "refused"
    assert "forwards run eagerly" in q.nncf.replay_status().detail
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", ReplayWarning)
        negative = torch.full((1, 4), -100.0)
        q.nncf.enable_replay(False)
        with pytest.warns(UntracedPathWarning):
            expected = q(negative)
        q.nncf.enable_replay()
        q.nncf.replay_status()
        with pytest.warns(ReplayWarning):
            got = q(negative)
    assert torch.equal(got, expected)


class SideEffect(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(x)


class LazyCache(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "offset"):
            self.register_buffer("offset", torch.ones(4))
        return self.fc(x) + self.offset


def test_a_forward_that_builds_a_cache_once_is_recorded_on_its_second_call() -> None:
    torch.manual_seed(0)
    q = compressed(LazyCache(), [1, 4])
    del q.offset  # as built: the first compressed forward creates the buffer
    q.nncf.enable_replay()
    x = torch.randn(1, 4)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", ReplayWarning)
        first = q(x)
        with eager_forwards() as count:
            second, third = q(x), q(x)
    assert count[0] == 1  # the second call records, the third replays
    assert torch.equal(first, second) and torch.equal(second, third)
    assert q.nncf.replay_status().recordings == 1


class DataShape(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y[y > 0].sum(0, keepdim=True) + y


class Outsider(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.offset = torch.ones(4)  # not a buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.offset


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (SideEffect(), r"changes attributes of module '\(the root\)' \(SideEffect\) on every call"),
        (DataShape(), r"output whose shape depends on them"),
        (Outsider(), r"neither an input of the forward.*register_buffer"),
    ],
    ids=["attribute-write", "data-dependent-shape", "outside-tensor"],
)
def test_forwards_a_replay_could_not_follow_are_refused_naming_why(model: nn.Module, reason: str) -> None:
    torch.manual_seed(0)
    q = compressed(model, [1, 4])
    q.nncf.enable_replay()
    x = torch.randn(1, 4)
    with torch.no_grad(), pytest.warns(ReplayWarning, match=reason):
        first = q(x)
        if isinstance(model, SideEffect):
            first = q(x)  # a first forward that sets attributes is given a second chance
    with torch.no_grad(), eager_forwards() as count:
        second = q(x)
    assert count[0] == 1 and torch.equal(first, second)


class Structured(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> dict[str, object]:
        y = self.fc(x) * scale
        pair = collections.namedtuple("pair", "low high")(y.min(1).values, y.max(1).values)
        return {"y": y, "pair": pair, "parts": [y[:, :2], y[:, 2:]], "n": 3}


def test_outputs_are_rebuilt_and_non_tensor_arguments_are_part_of_the_signature() -> None:
    torch.manual_seed(0)
    q = compressed(Structured(), [1, 4])
    x = torch.randn(1, 4)
    with torch.no_grad():
        expected = {s: q(x, scale=s) for s in (1.0, 2.0)}
        q.nncf.enable_replay()
        for _ in range(2):
            got = {s: q(x, scale=s) for s in (1.0, 2.0)}
    for s in (1.0, 2.0):
        assert torch.equal(got[s]["y"], expected[s]["y"])
        assert type(got[s]["pair"]).__name__ == "pair" and torch.equal(
            got[s]["pair"].high, expected[s]["pair"].high
        )
        assert all(torch.equal(a, b) for a, b in zip(got[s]["parts"], expected[s]["parts"], strict=True))
        assert got[s]["n"] == 3
    assert q.nncf.replay_status().recordings == 2


def test_copies_keep_the_setting_but_no_recording() -> None:
    torch.manual_seed(0)
    q = compressed(models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 32, 32])
    q.nncf.enable_replay()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = q(x)
        for clone in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
            assert clone.nncf.replay_status().recordings == 0
            assert torch.equal(clone(x), expected) and torch.equal(clone(x), expected)
            assert clone.nncf.replay_status().recordings == 1
    assert q.nncf.replay_status().state == "on"
    q.nncf.enable_replay(False)
    assert q.nncf.replay_status().state == "off"


class Transposes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x).T  # a property returning a tensor
        y = torch.cat([y, y.data * 2], 0)[:, : x.shape[0]]
        first, second = y.chunk(2, dim=0)
        return (first @ second.mT).flatten() + torch.arange(first.numel() * 0 + 1)


@pytest.mark.parametrize(
    ("build", "info"),
    [
        (models.MixedCNN, {"sample_size": [2, 3, 8, 8]}),
        (models.RecurrentTagger, {"sample_size": [2, 7], "type": "long"}),
        (models.TinyTransformer, {"sample_size": [2, 5], "type": "long"}),
        (models.TwiceCalled, {"sample_size": [2, 8]}),
        (models.CrossAttention, [{"sample_size": [2, 3, 16]}, {"sample_size": [2, 5, 16]}]),
        (Transposes, {"sample_size": [3, 6]}),
    ],
    ids=["mixed-cnn", "lstm-gru", "transformer", "shared-module", "cross-attention", "views-and-factories"],
)
def test_architectures_replay_bit_identically(build: Callable[[], nn.Module], info: object) -> None:
    from nncf_explore.graph.inputs import make_mock_inputs

    torch.manual_seed(0)
    model = build().eval()
    graph = trace_model(model, info)  # type: ignore[arg-type]
    q = compress_model(model, graph, build_quantizer_setup(graph, QUANTIZATION)).eval()
    inputs = [make_mock_inputs(info)[0] for _ in range(2)]  # type: ignore[arg-type]
    inputs = [tuple(a if a.dtype == torch.long else torch.randn_like(a) for a in args) for args in inputs]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", ReplayWarning)
        expected = [q(*args) for args in inputs]
        q.nncf.enable_replay()
        for _ in range(2):
            got = [q(*args) for args in inputs]
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a, b)
    assert q.nncf.replay_status().recordings == 1


def test_strip_and_export_capture_the_eager_forward_while_replay_is_on(tmp_path: object) -> None:
    from pathlib import Path

    from nncf_explore import NNCFConfig, create_compressed_model

    torch.manual_seed(0)
    model = models.MobileNetV2(num_classes=10, width=0.5).eval()
    config = NNCFConfig.from_dict(
        {"input_info": {"sample_size": [1, 3, 32, 32]}, "compression": {"algorithm": "quantization"}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no init loader: initial ranges are fine here
        ctrl, q = create_compressed_model(model, config, dump_graphs=False)
    q.eval().nncf.enable_replay()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        recorded, replayed = q(x), q(x)
        stripped = ctrl.strip()
        assert torch.equal(stripped(x), replayed) and torch.equal(recorded, replayed)
        assert torch.equal(q(x), replayed)
    if importlib.util.find_spec("onnx") is not None:
        ctrl.export_model(str(Path(str(tmp_path)) / "m.onnx"))
        assert (Path(str(tmp_path)) / "m.onnx").stat().st_size > 0
    with torch.no_grad():
        assert torch.equal(q(x), replayed)


class Autocasting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = self.fc(x)
        return self.head(y.float())


def test_autocast_inside_the_forward_is_refused_and_outside_is_part_of_the_signature() -> None:
    torch.manual_seed(0)
    q = compressed(Autocasting(), [1, 4])
    q.nncf.enable_replay()
    x = torch.randn(1, 4)
    with torch.no_grad(), pytest.warns(ReplayWarning, match="switches autocast"):
        q(x)
    plain = compressed(models.TwiceCalled(), [1, 8])
    plain.nncf.enable_replay()
    x = torch.randn(1, 8)
    with torch.no_grad():
        fp32 = plain(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = plain(x)
        assert torch.equal(plain(x), fp32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(plain(x), low)
    assert plain.nncf.replay_status().recordings == 2


def test_two_threads_replay_one_model() -> None:
    import threading

    torch.manual_seed(0)
    q = compressed(models.MobileNetV2(num_classes=10, width=0.5), [1, 3, 32, 32])
    inputs = [torch.randn(1, 3, 32, 32) for _ in range(6)]
    with torch.no_grad():
        expected = [q(x) for x in inputs]
    q.nncf.enable_replay()
    results: dict[int, list[torch.Tensor]] = {}

    def work(index: int) -> None:
        with torch.no_grad():
            results[index] = [q(x) for x in inputs for _ in range(2)][::2]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_input_shapes_that_keep_changing_stop_being_recorded() -> None:
    from nncf_explore.compression.replay import MAX_RECORDINGS

    torch.manual_seed(0)
    q = compressed(models.TwiceCalled(), [1, 8])
    q.nncf.enable_replay()
    with torch.no_grad(), eager_forwards() as count:
        for batch in range(1, 2 * MAX_RECORDINGS + 4):
            q(torch.randn(batch, 8))  # each shape once: every recording goes unused
        recorded = count[0]
        q(torch.randn(2 * MAX_RECORDINGS + 10, 8))
        new_signature_runs = count[0] - recorded
        q(torch.randn(2 * MAX_RECORDINGS, 8))  # the last one recorded, still kept: replayed
    assert new_signature_runs == 1 and count[0] == recorded + 1
    status = q.nncf.replay_status()
    assert status.state == "on" and "input shapes keep changing" in status.detail
    assert status.recordings == MAX_RECORDINGS


def test_value_and_metadata_reads_are_ignored_calls_so_recording_sees_them() -> None:
    from nncf_explore.graph.ops import IGNORED_OPS, METADATA_READS, VALUE_READS

    # The mode hands only ignored calls to on_ignored, where a recording classifies them.
    assert VALUE_READS <= IGNORED_OPS and METADATA_READS <= IGNORED_OPS
    assert not VALUE_READS & METADATA_READS
