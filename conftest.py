"""Pytest set-up for the whole run: tests and the package's doctests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _working_directory_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Code under test writes relative to the working directory by default (create_compressed_model's
    # graph dumps go to log_dir "."; hypothesis keeps its database there), and the test command must
    # leave the checkout as it found it. Tests that need the repository name it by path.
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(previous)
