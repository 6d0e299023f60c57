"""Generated files are up to date, docstring examples run, and importing the config stays cheap."""

from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import nncf_explore.config
import nncf_explore.errors
from nncf_explore.config import build_json_schema, render_config_reference
from nncf_explore.config.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "reference" / "config.md"
SCHEMA = ROOT / "docs" / "reference" / "nncf_config.schema.json"
REGENERATE = f"regenerate with: python -m nncf_explore.config --write-docs {DOCS.relative_to(ROOT)} --write-schema {SCHEMA.relative_to(ROOT)}"


def test_committed_reference_page_is_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_config_reference(), REGENERATE


def test_committed_json_schema_is_up_to_date() -> None:
    assert json.loads(SCHEMA.read_text(encoding="utf-8")) == build_json_schema(), REGENERATE


MODULES = [
    importlib.import_module(info.name)
    for info in pkgutil.iter_modules(nncf_explore.config.__path__, "nncf_explore.config.")
    if info.name != "nncf_explore.config.__main__"
] + [nncf_explore.config, nncf_explore.errors]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0


def test_importing_the_config_has_no_torch_and_no_side_effects() -> None:
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "before = set(sys.modules)\n"
        "import nncf_explore.config\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in {'torch', 'numpy', 'networkx', 'pydot', 'tqdm'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_cli_writes_docs_and_schema(tmp_path: Path) -> None:
    docs, schema = tmp_path / "config.md", tmp_path / "schema.json"
    assert main(["--write-docs", str(docs), "--write-schema", str(schema)]) == 0
    assert docs.read_text(encoding="utf-8") == render_config_reference()
    assert json.loads(schema.read_text(encoding="utf-8")) == build_json_schema()


def test_cli_checks_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"compression": {"algorithm": "quantization"}}')
    bad.write_text('{"target_device": "cpu"}')
    assert main([str(good)]) == 0
    assert main([str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{good}: OK" in captured.out and "did you mean 'CPU'" in captured.err


def test_cli_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "config.md"
    subprocess.run(
        [sys.executable, "-m", "nncf_explore.config", "--write-docs", str(out)], check=True, cwd=ROOT
    )
    assert out.read_text(encoding="utf-8") == render_config_reference()
