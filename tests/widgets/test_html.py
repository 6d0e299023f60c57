from __future__ import annotations

import base64
import doctest
import importlib

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._export import download_link_html, export_path
from nncf_explore.widgets._html import (
    error_html,
    json_diff_html,
    node_details_html,
    node_title_html,
    setup_stats,
    stats_html,
)
from tests.widgets.fakes import default_setup_for

CONV1_NAME = "ResNet/Conv2d[conv1]/conv2d_0"
MODULES = [
    "_collapse",
    "_edits",
    "_export",
    "_figure",
    "_graphviz",
    "_html",
    "_layered",
    "_layout",
    "_points",
    "_scene",
    "_search",
    "_styles",
    "node_panel",
]


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"nncf_explore.widgets.{module}"))
    assert result.failed == 0


def test_json_diff_marks_only_changed_lines() -> None:
    old = '{\n  "a": 1,\n  "b": 2\n}'
    new = '{\n  "a": 1,\n  "b": 3,\n  "c": 4\n}'
    out = json_diff_html(old, new)
    assert "2 lines added, 1 removed" in out
    assert '<span style="background:#fff3b0">  &quot;c&quot;: 4</span>' in out
    assert '"a"' not in out and "&quot;a&quot;: 1," in out  # unchanged, not highlighted
    assert "no change" in json_diff_html(new, new)


def test_stats_count_bits_and_memory(resnet_graph: Graph) -> None:
    default = default_setup_for(resnet_graph)
    stats = setup_stats(default, default.without([default.weights[0].id]), 1_000_000, 4_000_000)
    assert (stats.weights_on, stats.weights_total) == (20, 21)
    html = stats_html(stats)
    assert (
        "weights 20/21" in html
        and "W8" in html
        and "976.6 KiB of 3.8 MiB FP32 (25.0%, ×4.00 smaller)" in html
    )


def test_details_and_errors(resnet_graph: Graph) -> None:
    assert CONV1_NAME in node_title_html(resnet_graph.nodes[1])
    text = node_details_html(resnet_graph, resnet_graph.nodes[1])
    assert "conv1.weight" in text and "kernel_size" in text and "[1, 3, 32, 32]" in text
    assert error_html(ValueError("a < b")).count("a &lt; b") == 1


def test_export_path_creates_folders_and_refuses_directories(tmp_path) -> None:
    assert export_path(f"  {tmp_path}/out/config.json ") == tmp_path / "out" / "config.json"
    assert (tmp_path / "out").is_dir()
    with pytest.raises(IsADirectoryError, match="type a file name"):
        export_path(str(tmp_path))
    with pytest.raises(ValueError, match="type a file path"):
        export_path("  ")


def test_download_link_carries_the_text() -> None:
    link = download_link_html("c.json", '{"x": 1}')
    data = link.split("base64,")[1].split('"')[0]
    assert base64.b64decode(data) == b'{"x": 1}' and 'download="c.json"' in link
