from __future__ import annotations

import base64
import doctest
import importlib
import os

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets._export import download_link_html, write_text_atomic
from nncf_explore.widgets._html import error_html, json_diff_html, node_details_html, setup_stats, stats_html
from tests.widgets.fakes import default_setup_for

MODULES = [
    "_collapse",
    "_edits",
    "_export",
    "_figure",
    "_html",
    "_layout",
    "_points",
    "_search",
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
    assert "weights 20/21" in html and "W8" in html and "1.0 MB of 4.0 MB FP32 (25.0%, ×4.00 smaller)" in html


def test_details_and_errors(resnet_graph: Graph) -> None:
    text = node_details_html(resnet_graph, resnet_graph.nodes[1])
    assert "conv1.weight" in text and "kernel_size" in text and "[1, 3, 32, 32]" in text
    assert error_html(ValueError("a < b")).count("a &lt; b") == 1


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path) -> None:
    path = tmp_path / "out" / "config.json"
    write_text_atomic(path, "{}")
    write_text_atomic(path, '{"a": 1}')
    assert path.read_text() == '{"a": 1}'
    assert os.listdir(path.parent) == ["config.json"]
    with pytest.raises(IsADirectoryError, match="type a file name"):
        write_text_atomic(tmp_path, "{}")


def test_download_link_carries_the_text() -> None:
    link = download_link_html("c.json", '{"x": 1}')
    data = link.split("base64,")[1].split('"')[0]
    assert base64.b64decode(data) == b'{"x": 1}' and 'download="c.json"' in link
