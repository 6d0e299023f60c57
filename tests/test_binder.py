"""The Binder environment installs and runs the quickstart notebook.

repo2docker is not available offline, so the slow test replays its steps: a fresh venv without system
site-packages, ``pip install -r binder/requirements.txt`` and ``binder/postBuild`` in a copy of the repo,
then the quickstart notebook executed by nbclient inside that venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
NOTEBOOK = Path("notebooks") / "01_quickstart.ipynb"
KERNEL_NAME = "binder-test"

# Copying these would only cost time, and a venv or egg-info from the host would hide install mistakes.
_SKIP_AT_ROOT = {".git", "site", "artifacts", "build", "dist"}
_SKIP_ANYWHERE = ("__pycache__", ".venv*", "*.egg-info", ".*_cache", ".hypothesis")

_EXECUTE_NOTEBOOK = """
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

path, kernel_name = Path(sys.argv[1]), sys.argv[2]
nb = nbformat.read(path, as_version=4)
resources = {"metadata": {"path": str(path.parent)}}  # the kernel's cwd, as in JupyterLab
NotebookClient(nb, kernel_name=kernel_name, timeout=600, resources=resources).execute()
"""


def _requirement_names(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith(("#", "-"))]
    return {canonicalize_name(r.name): r for r in reqs}


def test_binder_requirements_cover_the_package_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = _requirement_names(project["dependencies"] + project["optional-dependencies"]["widgets"])
    listed = _requirement_names((BINDER / "requirements.txt").read_text().splitlines())
    missing = sorted(set(needed) - set(listed))
    # postBuild installs the package with --no-deps, so anything missing here is missing on Binder.
    assert not missing, f"add {missing} to binder/requirements.txt (pyproject.toml needs them)"


def test_binder_pins_the_same_cpu_torch_as_the_makefile() -> None:
    match = re.search(r"^TORCH_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile no longer defines `TORCH_VERSION ?= ...`"
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    assert lines[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert str(_requirement_names(lines)["torch"].specifier) == f"=={match.group(1)}"


def test_binder_scripts_are_executable() -> None:
    for script in (BINDER / "postBuild", REPO / ".ci" / "run"):
        assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(REPO)}"


@pytest.mark.slow
def test_binder_environment_runs_the_quickstart_notebook(tmp_path: Path) -> None:
    if not (REPO / NOTEBOOK).exists():
        pytest.fail(f"{NOTEBOOK} does not exist; the README's Binder badge opens it, so it must be added")
    repo = _copy_repo(tmp_path / "repo")
    prefix = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(prefix)])
    python = str(prefix / "bin" / "python")
    env = _isolated_env(prefix, tmp_path / "jupyter")

    _run([python, "-m", "pip", "install", "-r", "binder/requirements.txt"], cwd=repo, env=env)
    _run(["binder/postBuild"], cwd=repo, env={**env, "NB_PYTHON_PREFIX": str(prefix)})
    _run([python, "-m", "pip", "check"], env=env)
    # From outside the copy, so that only the installed package can be imported.
    imported_from = _run([python, "-c", "import nncf_explore; print(nncf_explore.__file__)"], tmp_path, env)
    assert Path(imported_from.strip()).is_relative_to(repo), imported_from
    _assert_news_toast_disabled(prefix, env)

    _run([python, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL_NAME], env=env)
    _run([python, "-c", _EXECUTE_NOTEBOOK, str(repo / NOTEBOOK), KERNEL_NAME], cwd=repo, env=env)
    shutil.rmtree(prefix)  # 1.5 GB; pytest keeps the last three tmp dirs, so drop it once it has passed


def _copy_repo(dst: Path) -> Path:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(shutil.ignore_patterns(*_SKIP_ANYWHERE)(directory, names))
        if Path(directory) == REPO:
            skipped |= _SKIP_AT_ROOT & set(names)
        return skipped

    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    return dst


def _isolated_env(prefix: Path, jupyter_dir: Path) -> dict[str, str]:
    """The environment of a Binder user: the new venv first on PATH, nothing from this test's venv or home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
    host_prefix = Path(sys.prefix)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).is_relative_to(host_prefix)]
    return {
        **env,
        "PATH": os.pathsep.join([str(prefix / "bin"), *path]),
        "PYTHONNOUSERSITE": "1",
        "JUPYTER_CONFIG_DIR": str(jupyter_dir / "config"),
        "JUPYTER_DATA_DIR": str(jupyter_dir / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter_dir / "runtime"),
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # requirements.txt puts the PyTorch index on every lookup, as repo2docker needs; where that host
        # is unreachable, each of ~100 lookups would wait through 5 retries. pip then falls back to the
        # other configured indexes, which is what this test needs.
        "PIP_RETRIES": "0",
    }


def _assert_news_toast_disabled(prefix: Path, env: dict[str, str]) -> None:
    # Ask JupyterLab where it reads overrides.json from rather than trusting postBuild's path.
    paths = _run([str(prefix / "bin" / "jupyter"), "lab", "path"], env=env)
    app_dir = re.search(r"^Application directory:\s*(\S+)", paths, re.MULTILINE)
    assert app_dir, paths
    overrides = json.loads((Path(app_dir.group(1)) / "settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"`{' '.join(cmd)}` exited with {proc.returncode}\n"
            f"--- stdout (tail) ---\n{proc.stdout[-6000:]}\n--- stderr (tail) ---\n{proc.stderr[-6000:]}"
        )
    return proc.stdout
