"""NNCFConfig: loading, writing, copying, extra structs and warnings."""

from __future__ import annotations

import copy
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nncf_explore.config import NNCFConfig
from nncf_explore.errors import ConfigError, ConfigWarning

KD_WITH_COMMENT = """{
    "input_info": {"sample_size": [1, 3, 224, 224]},
    "compression": [
        {"algorithm": "filter_pruning"},
        {
            "algorithm": "knowledge_distillation",
            "type": "softmax" // or mse
        }
    ]
}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(text)
    return path


def test_from_json_rejects_comments_with_location_caret_and_hint(tmp_path: Path) -> None:
    path = write(tmp_path, KD_WITH_COMMENT)
    with pytest.raises(ConfigError) as info:
        NNCFConfig.from_json(path)
    message = str(info.value)
    assert message.startswith(f"{path}:7:31: invalid JSON")
    assert '"type": "softmax" // or mse' in message
    assert "\n" + " " * 34 + "^" in message
    assert "JSON has no comments" in message and "NNCF >= 2.17" in message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ('{\n  /* block */ "log_dir": "x"\n}', "JSON has no comments"),
        ('{\n  # python style\n  "log_dir": "x"\n}', "JSON has no comments"),
        ('{"log_dir": "x",\n}', "trailing comma"),
        ('{"log_dir": ["x", ]}', "trailing comma"),
        ("{'log_dir': 'x'}", "double quotes"),
    ],
)
def test_from_json_syntax_hints(tmp_path: Path, text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        NNCFConfig.from_json(write(tmp_path, text))


def test_from_json_validation_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"target_device": "cpu"}')
    with pytest.raises(ConfigError, match=rf"^Invalid NNCF config {path}: target_device:"):
        NNCFConfig.from_json(path)


def test_from_json_warns_about_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '{"log_dir": "a", "log_dir": "b"}')
    with pytest.warns(ConfigWarning, match='key "log_dir" appears twice'):
        config = NNCFConfig.from_json(path)
    assert config["log_dir"] == "b"


def test_from_json_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        NNCFConfig.from_json("/nonexistent/config.json")


def test_to_json_is_atomic_and_keeps_permissions(tmp_path: Path) -> None:
    path = write(tmp_path, "{}")
    os.chmod(path, 0o600)
    NNCFConfig.from_dict({"log_dir": "x"}).to_json(path)
    assert json.loads(path.read_text()) == {"log_dir": "x"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_to_json_new_file_is_world_readable_and_ends_with_newline(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    old_umask = os.umask(0o022)  # the mode follows the umask (tests/test_files.py tries others)
    try:
        NNCFConfig.from_dict({"log_dir": "x"}).to_json(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == '{\n  "log_dir": "x"\n}\n'


def test_to_json_failure_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"old": true}')
    config = NNCFConfig.from_dict({})
    config["bad"] = object()
    with pytest.raises(ConfigError, match="bad: .* not JSON data"):
        config.to_json(path)
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_from_dict_deep_copies_and_turns_tuples_into_lists() -> None:
    source: dict[str, Any] = {"input_info": {"sample_size": (1, 3, 8, 8)}, "extra": {"nested": [1]}}
    config = NNCFConfig.from_dict(source)
    source["extra"]["nested"].append(2)
    assert config == {"input_info": {"sample_size": [1, 3, 8, 8]}, "extra": {"nested": [1]}}


def test_from_dict_accepts_numpy_floats_but_not_numpy_ints() -> None:
    numpy = pytest.importorskip("numpy")
    config = NNCFConfig.from_dict({"compression_lr_multiplier": numpy.float64(2.0)})
    assert type(config["compression_lr_multiplier"]) is float
    with pytest.raises(ConfigError, match=r"compression_lr_multiplier: .*numpy.int64.*int\(\.\.\.\)"):
        NNCFConfig.from_dict({"compression_lr_multiplier": numpy.int64(2)})


def test_to_dict_is_a_plain_deep_copy() -> None:
    config = NNCFConfig.from_dict({"compression": {"algorithm": "quantization"}})
    plain = config.to_dict()
    assert type(plain) is dict and plain == config
    plain["compression"]["preset"] = "mixed"
    assert "preset" not in config["compression"]


def test_dict_reads_and_validate_after_editing() -> None:
    config = NNCFConfig.from_dict({"target_device": "CPU"})
    assert config["target_device"] == "CPU" and config.get("log_dir") is None and "target_device" in config
    config["target_device"] = "gpu"
    with pytest.raises(ConfigError, match="did you mean 'GPU'"):
        config.validate()


def test_constructor_does_not_validate() -> None:
    assert NNCFConfig({"target_device": "cpu"})["target_device"] == "cpu"


class Loader:
    """Stands in for a data loader: it must never be deep-copied."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Loader:
        raise AssertionError("a data loader was deep-copied")


class LoaderStruct:
    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    @classmethod
    def get_id(cls) -> str:
        return "loader_struct"


class OtherStruct:
    STRUCT_ID: ClassVar[str] = "loader_struct"

    @classmethod
    def get_id(cls) -> str:
        return cls.STRUCT_ID


def test_extra_structs_live_beside_the_json() -> None:
    config = NNCFConfig.from_dict({"log_dir": "x"})
    struct = LoaderStruct(Loader())
    config.register_extra_structs([struct])
    assert config.has_extra_struct(LoaderStruct) and config.has_extra_struct("loader_struct")
    assert config.get_extra_struct(LoaderStruct) is struct
    assert config.get_extra_struct("loader_struct") is struct
    assert config.get_all_extra_structs() == [struct]
    assert dict(config) == {"log_dir": "x"} and config.to_dict() == {"log_dir": "x"}
    assert repr(config) == "NNCFConfig({'log_dir': 'x'}, extra_structs=['loader_struct'])"


def test_deepcopy_copies_the_json_and_shares_runtime_objects() -> None:
    config = NNCFConfig.from_dict({"compression": {"algorithm": "quantization"}})
    struct = LoaderStruct(Loader())
    config.register_extra_structs([struct])
    clone = copy.deepcopy(config)
    assert isinstance(clone, NNCFConfig) and clone == config
    assert clone["compression"] is not config["compression"]
    assert clone.get_extra_struct(LoaderStruct) is struct
    clone.remove_extra_struct(LoaderStruct)
    assert config.has_extra_struct(LoaderStruct)
    shallow = config.copy()
    assert isinstance(shallow, NNCFConfig) and shallow.get_extra_struct(LoaderStruct) is struct


def test_registering_the_same_id_twice_raises_with_a_fix() -> None:
    config = NNCFConfig()
    config.register_extra_structs([LoaderStruct(Loader())])
    with pytest.raises(ConfigError, match="already registered.*remove_extra_struct"):
        config.register_extra_structs([LoaderStruct(Loader())])


def test_missing_and_mistyped_extra_structs() -> None:
    config = NNCFConfig()
    with pytest.raises(
        ConfigError, match="no extra struct 'loader_struct' is registered.*register_default_init_args"
    ):
        config.get_extra_struct(LoaderStruct)
    config.register_extra_structs([OtherStruct()])
    with pytest.raises(ConfigError, match="is a OtherStruct, not a LoaderStruct"):
        config.get_extra_struct(LoaderStruct)
    config.remove_extra_struct("loader_struct")
    config.remove_extra_struct("loader_struct")
    assert not config.has_extra_struct("loader_struct")


def test_schema_is_available_from_the_class() -> None:
    assert NNCFConfig.schema()["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("ignored_scope", ["x"], "did you mean 'ignored_scopes'?"),
        ("input_infos", {"sample_size": [1]}, "did you mean 'input_info'?"),
        ("compresion", {"algorithm": "quantization"}, "did you mean 'compression'?"),
        ("Target_Device", "CPU", "did you mean 'target_device'?"),
        ("weights", {"bits": 4}, 'it is a setting of the "quantization" algorithm'),
        ("initializer", {"range": {"num_init_samples": 8}}, "belongs in its section"),
        ("algorithm", "quantization", 'belong in the "compression" section'),
    ],
)
def test_suspicious_top_level_keys_warn(key: str, value: Any, fragment: str) -> None:
    with pytest.warns(ConfigWarning, match=f"^{key}: .*{fragment}".replace("?", r"\?")) as record:
        NNCFConfig.from_dict({key: value})
    assert record[0].filename == __file__


TRAINING_KEYS = {
    "model": "resnet50",
    "pretrained": True,
    "num_classes": 1000,
    "batch_size": 256,
    "batch_size_val": 256,
    "batch_size_init": 64,
    "workers": 6,
    "multiprocessing_distributed": True,
    "epochs": 30,
    "optimizer": {"type": "Adam", "base_lr": 1e-5},
    "dataset": "imagenet",
    "dataset_dir": "/data",
    "seed": 0,
    "print_freq": 10,
    "checkpoint_save_dir": "ckpt",
    "mode": "train",
    "export_to_onnx": "model.onnx",
    "weights": "model.pth",
    "resume": "last.pth",
    "test_every_n_epochs": 1,
    "model_params": {"depth": 50},
    "target": "accuracy",
    "params": {"lr": 0.1, "momentum": 0.9},
    "type": "classification",
    "distributed": False,
    "iter_size": 1,
    "_comment": "a note",
}


def test_common_training_keys_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = NNCFConfig.from_dict(TRAINING_KEYS)
    assert config == TRAINING_KEYS


def test_validate_warnings_point_at_the_caller() -> None:
    config = NNCFConfig({"log_dirs": "x"})
    with pytest.warns(ConfigWarning) as record:
        config.validate()
    assert record[0].filename == __file__
