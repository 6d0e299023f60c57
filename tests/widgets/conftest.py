"""Fixtures for the widget tests: a traced ResNet-18 and synthetic graphs, with fake sessions."""

from __future__ import annotations

import pytest

from nncf_explore.graph.ir import Graph
from nncf_explore.widgets import _layout
from tests.widgets.fakes import FakeSession, synthetic_graph


@pytest.fixture(scope="session")
def resnet_graph() -> Graph:
    from nncf_explore.graph import trace_model
    from tests.models import resnet18

    return trace_model(resnet18(), {"sample_size": [1, 3, 32, 32]})


@pytest.fixture(scope="session")
def big_graph() -> Graph:
    """About 1,000 nodes: above the collapse threshold, below the WebGL one."""
    return synthetic_graph(1000, blocks_per_stage=16)


@pytest.fixture
def session(resnet_graph: Graph) -> FakeSession:
    return FakeSession(resnet_graph)


@pytest.fixture(autouse=True)
def _fresh_layout_cache() -> None:
    _layout.clear_cache()
