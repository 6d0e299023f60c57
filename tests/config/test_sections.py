"""Reading values with defaults from the one table: resolve, ConfigView, AlgorithmSection."""

from __future__ import annotations

from typing import Any

import pytest

from nncf_explore.config import ConfigView, NNCFConfig, default_of, resolve, spec_at
from nncf_explore.config.fields import ALGORITHMS
from nncf_explore.errors import ConfigError


def config_of(**top: Any) -> NNCFConfig:
    return NNCFConfig.from_dict(top)


def test_resolve_returns_explicit_value_or_table_default() -> None:
    section = {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 850}}}
    assert resolve(section, "initializer.range.num_init_samples", algorithm="quantization") == 850
    assert resolve(section, "initializer.range.type", algorithm="quantization") == "mixed_min_max"
    assert (
        resolve(
            section, "initializer.batchnorm_adaptation.num_bn_adaptation_samples", algorithm="quantization"
        )
        == 2000
    )
    assert resolve(section, "weights.signed", algorithm="quantization") is None
    assert resolve({}, "target_device") == "ANY"
    assert resolve({}, "log_dir") == "."


@pytest.mark.parametrize(
    ("algorithm", "path", "expected"),
    [
        ("quantization", "preset", "performance"),
        ("quantization", "quantize_inputs", True),
        ("quantization", "quantize_outputs", False),
        ("quantization", "overflow_fix", "enable"),
        ("quantization", "weights.bits", 8),
        ("quantization", "activations.logarithm_scale", False),
        ("quantization", "validate_scopes", True),
        ("quantization", "initializer.range.params.min_percentile", 0.1),
        ("quantization", "initializer.range.params.max_percentile", 99.9),
        ("quantization", "initializer.precision.bits", [2, 4, 8]),
        ("quantization", "initializer.precision.num_data_points", 100),
        ("quantization", "initializer.precision.tolerance", 1e-4),
        ("quantization", "initializer.precision.eval_subset_ratio", 1.0),
        ("quantization", "initializer.precision.warmup_iter_number", 20),
        ("quantization", "initializer.precision.dump_init_precision_data", False),
        ("quantization", "initializer.precision.bitwidth_assignment_mode", "liberal"),
        ("quantization", "params.activations_quant_start_epoch", 1),
        ("quantization", "params.weights_quant_start_epoch", 1),
        ("quantization", "params.lr_poly_drop_duration_epochs", 30),
        ("quantization", "params.base_lr", 1e-3),
        ("quantization", "params.base_wd", 1e-5),
        ("quantization", "export_to_onnx_standard_ops", False),
        ("magnitude_sparsity", "sparsity_init", 0.0),
        ("magnitude_sparsity", "params.schedule", "polynomial"),
        ("magnitude_sparsity", "params.sparsity_target", 0.5),
        ("magnitude_sparsity", "params.sparsity_target_epoch", 90),
        ("magnitude_sparsity", "params.sparsity_freeze_epoch", 100),
        ("magnitude_sparsity", "params.update_per_optimizer_step", False),
        ("magnitude_sparsity", "params.multistep_steps", [90]),
        ("magnitude_sparsity", "params.multistep_sparsity_levels", [0.1, 0.5]),
        ("magnitude_sparsity", "params.patience", 1),
        ("magnitude_sparsity", "params.power", 0.9),
        ("magnitude_sparsity", "params.concave", True),
        ("magnitude_sparsity", "params.sparsity_level_setting_mode", "global"),
        ("magnitude_sparsity", "params.weight_importance", "normed_abs"),
        ("magnitude_sparsity", "initializer.batchnorm_adaptation.num_bn_adaptation_samples", 2000),
        ("rb_sparsity", "params.schedule", "exponential"),
        ("filter_pruning", "pruning_init", 0.0),
        ("filter_pruning", "params.filter_importance", "L2"),
        ("filter_pruning", "params.pruning_target", 0.5),
        ("filter_pruning", "params.pruning_steps", 100),
        ("filter_pruning", "params.schedule", "exponential"),
        ("filter_pruning", "params.num_init_steps", 0),
        ("filter_pruning", "params.all_weights", False),
        ("filter_pruning", "params.prune_first_conv", False),
        ("filter_pruning", "params.prune_downsample_convs", False),
        ("filter_pruning", "params.prune_batch_norms", True),
        ("filter_pruning", "params.legr_params.generations", 400),
        ("filter_pruning", "params.legr_params.random_seed", 42),
        ("knowledge_distillation", "scale", 1.0),
        ("knowledge_distillation", "temperature", 1.0),
    ],
)
def test_table_defaults_match_nncf(algorithm: str, path: str, expected: Any) -> None:
    assert default_of(path, algorithm=algorithm) == expected
    assert resolve({}, path, algorithm=algorithm) == expected


def test_defaults_that_depend_on_a_sibling() -> None:
    hawq = {"initializer": {"precision": {"type": "hawq"}}}
    autoq = {"initializer": {"precision": {"type": "autoq"}}}
    path = "initializer.precision.compression_ratio"
    assert resolve(hawq, path, algorithm="quantization") == 1.5
    assert resolve(autoq, path, algorithm="quantization") == 0.15
    assert resolve(autoq, "initializer.precision.iter_number", algorithm="quantization") == 0
    assert resolve(hawq, "initializer.precision.iter_number", algorithm="quantization") == 200
    assert resolve({}, path, algorithm="quantization") is None  # type defaults to manual


def test_resolve_under_reads_one_item_of_a_list() -> None:
    entry = {"target_scopes": "x", "type": "percentile"}
    assert resolve(entry, "num_init_samples", algorithm="quantization", under="initializer.range") == 256
    assert resolve(entry, "type", algorithm="quantization", under="initializer.range") == "percentile"
    assert resolve({"sample_size": [1, 2]}, "filler", under="input_info") == "ones"
    assert resolve({}, "mode", algorithm="quantization", under="scope_overrides.weights.anything") is None


def test_resolve_returns_copies() -> None:
    value = resolve({}, "initializer.precision.bits", algorithm="quantization")
    value.append(16)
    assert default_of("initializer.precision.bits", algorithm="quantization") == [2, 4, 8]
    section = {"weights": {"ignored_scopes": ["a"]}}
    resolve(section, "weights.ignored_scopes", algorithm="quantization").append("b")
    assert section == {"weights": {"ignored_scopes": ["a"]}}


def test_unknown_paths_are_programming_errors_with_suggestions() -> None:
    with pytest.raises(KeyError, match="num_init_sample.*did you mean 'num_init_samples'"):
        resolve({}, "initializer.range.num_init_sample", algorithm="quantization")
    with pytest.raises(KeyError, match="no algorithm 'quantisation'.*did you mean 'quantization'"):
        resolve({}, "preset", algorithm="quantisation")
    with pytest.raises(KeyError, match="did you mean 'bits'"):
        spec_at("weights.bit", algorithm="quantization")


def test_reading_through_a_list_explains_how_to_read_items() -> None:
    section = {"initializer": {"range": [{"target_scopes": "x"}]}}
    with pytest.raises(TypeError, match="ConfigView.views"):
        resolve(section, "initializer.range.num_init_samples", algorithm="quantization")


def test_algorithm_configs_normalise_object_list_and_absence() -> None:
    assert config_of().algorithm_configs() == []
    single = config_of(compression={"algorithm": "quantization"}).algorithm_configs()
    assert [(s.name, s.index, s.path) for s in single] == [("quantization", None, "compression")]
    many = config_of(
        compression=[{"algorithm": "const_sparsity"}, {"algorithm": "quantization"}]
    ).algorithm_configs()
    assert [s.name for s in many] == ["const_sparsity", "quantization"]


def test_algorithm_configs_check_the_section_again_after_edits() -> None:
    config = config_of(compression={"algorithm": "quantization"})
    config["compression"]["algorithm"] = "quantisation"
    with pytest.raises(ConfigError, match="did you mean 'quantization'"):
        config.algorithm_configs()


def test_compression_lr_multiplier_is_inherited_from_the_top_level() -> None:
    config = config_of(
        compression_lr_multiplier=3.0,
        compression=[
            {"algorithm": "quantization"},
            {"algorithm": "rb_sparsity", "compression_lr_multiplier": 5.0},
            {"algorithm": "filter_pruning"},
        ],
    )
    quantization, rb, _ = config.algorithm_configs()
    assert quantization.get("compression_lr_multiplier") == 3.0
    assert rb.get("compression_lr_multiplier") == 5.0
    assert (
        config_of(compression={"algorithm": "quantization"})
        .algorithm_configs()[0]
        .get("compression_lr_multiplier")
        is None
    )


def test_views_normalise_object_or_list_values() -> None:
    config = config_of(
        input_info=[{"sample_size": [1, 3]}, {"sample_size": [1, 5], "type": "long", "keyword": "ids"}]
    )
    inputs = config.view().views("input_info")
    assert [
        (v.path, v.get("sample_size"), v.get("type"), v.get("filler"), v.get("keyword")) for v in inputs
    ] == [
        ("input_info[0]", [1, 3], "float", "ones", None),
        ("input_info[1]", [1, 5], "long", "ones", "ids"),
    ]
    single = config_of(input_info={"sample_size": [2]}).view().views("input_info")
    assert [(v.path, v.get("filler")) for v in single] == [("input_info", "ones")]
    assert config_of().view().views("input_info") == []


def test_section_views_for_per_layer_ranges_and_overrides() -> None:
    section = config_of(
        compression={
            "algorithm": "quantization",
            "initializer": {"range": [{"target_scopes": "a", "type": "min_max"}, {"ignored_scopes": ["b"]}]},
            "scope_overrides": {"activations": {"{re}.*conv.*": {"bits": 4}}},
            "ignored_scopes": "Net/relu_0",
        }
    ).algorithm_configs()[0]
    ranges = section.views("initializer.range")
    assert [(r.path, r.get("type"), r.get("num_init_samples")) for r in ranges] == [
        ("compression.initializer.range[0]", "min_max", 256),
        ("compression.initializer.range[1]", "mixed_min_max", 256),
    ]
    assert ranges[1].get_list("ignored_scopes") == ["b"] and ranges[0].get_list("ignored_scopes") == []
    override = section.view("scope_overrides", "activations", "{re}.*conv.*")
    assert override.path == 'compression.scope_overrides.activations["{re}.*conv.*"]'
    assert (override.get("bits"), override.get("mode")) == (4, None)
    assert section.get_list("ignored_scopes") == ["Net/relu_0"]
    assert section.is_set("ignored_scopes") and not section.is_set("initializer.precision")
    assert section.view("initializer", "precision").get("type") == "manual"


def test_config_resolve_and_view() -> None:
    config = config_of(target_device="TRIAL")
    assert config.resolve("target_device") == "TRIAL"
    assert config.resolve("disable_shape_matching") is False
    assert isinstance(config.view(), ConfigView)


def test_every_algorithm_has_a_section_spec() -> None:
    assert list(ALGORITHMS) == [
        "quantization",
        "magnitude_sparsity",
        "rb_sparsity",
        "const_sparsity",
        "filter_pruning",
        "knowledge_distillation",
        "movement_sparsity",
    ]
