"""Browser tests get up to two reruns.

They drive JupyterLab, a kernel and chromium on two cores, and a busy machine can delay the
front end past a wait (a figure drawn a moment too late). A real failure fails all three runs;
the reruns are reported in the summary (``R``), so a test that starts needing them shows.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=5))
