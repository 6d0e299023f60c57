"""Every notebook in ``notebooks/`` runs top to bottom in a fresh kernel and prints sensible numbers.

Each notebook runs on a copy in a temporary directory, which is also the kernel's working directory (as
in JupyterLab), so files a notebook writes never land in the repository; the test then checks that it
wrote nothing beyond what it is allowed to leave behind.  The terminal summary lists execution times.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_mixed_precision", "03_training_loop", "04_custom_inputs"]
CELL_TIMEOUT_S = 300
FLOAT = r"([0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)"

# The first cell of each executed copy: proves the kernel runs this interpreter (the venv), not
# whatever `python3` kernelspec happens to be first on the Jupyter path.
_PREFIX_PROBE = "import sys; print('KERNEL_PREFIX=' + sys.prefix)"


def _spec_runs_this_python(argv: list[str]) -> bool:
    # jupyter_client starts specs whose argv[0] is a bare "python"/"python3"/"python3.X" with its own
    # sys.executable; any other argv[0] must be this interpreter.
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if argv[0] in bare:
        return True
    found = shutil.which(argv[0])
    return found is not None and Path(found).resolve() == Path(sys.executable).resolve()


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python3`` when it starts this interpreter; else a kernelspec for it, on a private Jupyter path."""
    try:
        if _spec_runs_this_python(KernelSpecManager().get_kernel_spec("python3").argv):
            yield "python3"
            return
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="nncf-explore-test", prefix=str(prefix))
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"), previous]))
    try:
        yield "nncf-explore-test"
    finally:
        if previous is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = previous


class _DurationReport:
    """A plugin printing how long each notebook took, in the terminal summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.seconds:
            return
        terminalreporter.section("notebook execution times")
        for name, seconds in self.seconds.items():
            terminalreporter.write_line(f"{name:24} {seconds:6.1f} s")
        terminalreporter.write_line(f"{'total':24} {sum(self.seconds.values()):6.1f} s")


@pytest.fixture(scope="session")
def durations(request: pytest.FixtureRequest) -> dict[str, float]:
    report = _DurationReport()
    request.config.pluginmanager.register(report, "notebook-durations")
    return report.seconds


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


def _number(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match, f"the notebook did not print a line matching {pattern!r}; its stdout was:\n{text}"
    return float(match.group(1))


def _byte_count(text: str, pattern: str) -> int:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"the notebook did not print a line matching {pattern!r}; its stdout was:\n{text}"
    return int(match.group(1).replace(",", ""))


def _accuracy(text: str, pattern: str) -> float:
    value = _number(text, pattern)
    assert 0.0 <= value <= 1.0, f"{pattern!r}: {value} is not an accuracy"
    return value


def _has_widget(nb: nbformat.NotebookNode) -> bool:
    return any(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def _check_quickstart(out: str, nb: nbformat.NotebookNode, workdir: Path) -> None:
    fp32 = _accuracy(out, rf"FP32 accuracy: {FLOAT}")
    edited = _accuracy(out, rf"edited accuracy {FLOAT}")
    reproduced = _accuracy(out, rf"reproduced accuracy {FLOAT}")
    assert fp32 > 0.9, "the CNN did not learn the digits"
    assert reproduced == edited
    assert "same quantizers as in the Explorer: True" in out
    assert "same outputs on every test image: True" in out
    assert "replayed outputs identical: True" in out
    assert "ReplayStatus(state='on'" in out
    int8_bytes = _byte_count(out, r"^INT8 +accuracy [0-9.]+ +weights +([0-9,]+) bytes")
    edited_bytes = _byte_count(out, r"^edited accuracy [0-9.]+ +weights +([0-9,]+) bytes")
    assert edited_bytes < int8_bytes, "4-bit weights should take less memory than 8-bit ones"
    config = json.loads((workdir / "edited.json").read_text())
    assert config["target_device"] == "TRIAL"
    assert config["compression"]["weights"]["ignored_scopes"] == ["DigitsCNN/Linear[fc2]/linear_0"]
    assert _has_widget(nb), "the Explorer was not displayed"


def _bar_values(nb: nbformat.NotebookNode) -> list[float]:
    """The x values of every horizontal bar trace in the notebook's plotly outputs."""
    values: list[float] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            figure = output.get("data", {}).get("application/vnd.plotly.v1+json")
            for trace in (figure or {}).get("data", []):
                if trace.get("type") == "bar" and trace.get("orientation") == "h":
                    values += [float(v) for v in trace["x"]]
    return values


def _check_mixed_precision(out: str, nb: nbformat.NotebookNode, workdir: Path) -> None:
    rows = {
        name: re.search(rf"^{re.escape(name)} +{FLOAT} +([0-9,]+) ", out, re.MULTILINE)
        for name in ("uniform INT8", "mixed 4/8", "uniform INT4")
    }
    assert all(rows.values()), f"the comparison table is missing rows:\n{out}"
    size = {name: int(m.group(2).replace(",", "")) for name, m in rows.items() if m}
    accuracy = {name: float(m.group(1)) for name, m in rows.items() if m}
    for name, value in accuracy.items():
        assert 0.9 < value <= 1.0, f"{name}: accuracy {value} out of range"
    assert size["uniform INT4"] < size["mixed 4/8"] < size["uniform INT8"]
    assert accuracy["mixed 4/8"] >= accuracy["uniform INT4"], "the search did worse than uniform INT4"
    budget = _byte_count(out, r"^proposed budget: ([0-9,]+) bytes")
    assert size["mixed 4/8"] <= budget * 1.2  # the chosen setup's searched weights fit the budget
    assert "kept at 8 bits:" in out and "lowest SQNR (dB):" in out and "overlay: SQNR (dB)" in out
    assert "manual precision" in out and "bitwidth_per_scope" in out
    bars = _bar_values(nb)
    # A drop is plotted as a positive bar (an improvement at 4 bits would be a small negative one).
    assert bars and max(bars) > 0 and max(bars) >= -min(bars), f"drops must be positive bars: {bars}"
    assert _has_widget(nb)


def _check_training_loop(out: str, nb: nbformat.NotebookNode, workdir: Path) -> None:
    _accuracy(out, rf"FP32 accuracy: {FLOAT}")
    assert "identical outputs after resume: True" in out
    assert "compressed_graph.dot" in out and "original_graph.dot" in out
    assert "Statistics of the quantization algorithm" in out
    assert _number(out, rf"median \|onnxruntime - torch\| per image: {FLOAT}") < 1e-4
    assert _number(out, rf"same prediction: {FLOAT}%") >= 99.0
    _accuracy(out, rf"onnxruntime accuracy {FLOAT}")
    assert _accuracy(out, rf"pruned \+ INT8 accuracy {FLOAT}") > 0.9
    assert 0.25 < _number(out, rf"FLOPs removed: {FLOAT}%") / 100 < 0.6
    assert "stripped model computes the same: True" in out


def _check_custom_inputs(out: str, nb: nbformat.NotebookNode, workdir: Path) -> None:
    assert _accuracy(out, rf"INT8 accuracy {FLOAT}") > 0.8
    assert "model inputs in the graph: ['/nncf_model_input_0', '/nncf_model_input_1']" in out
    assert _number(out, r"([0-9]+) projection weight quantizers") == 4  # in and out projection, 2 layers
    assert _number(out, r"([0-9]+) quantizers on attention-matmul inputs") == 2
    before = _number(out, r"activation quantizers: ([0-9]+) ->")
    assert _number(out, r"activation quantizers: [0-9]+ -> ([0-9]+)") < before
    assert _number(out, r"after undo: ([0-9]+)") == before
    assert _number(out, rf"relative output error of INT8 vs FP32: {FLOAT}%") < 20
    assert _has_widget(nb)


Check = Callable[[str, nbformat.NotebookNode, Path], None]
CHECKS: dict[str, tuple[Check, set[str]]] = {
    # notebook: (checks of its output, files it may leave in its directory)
    "01_quickstart": (_check_quickstart, {"edited.json"}),
    "02_mixed_precision": (_check_mixed_precision, set()),
    "03_training_loop": (_check_training_loop, set()),
    "04_custom_inputs": (_check_custom_inputs, set()),
}


def test_every_notebook_is_listed_and_tested() -> None:
    names = [path.stem for path in NOTEBOOKS]
    assert names == EXPECTED
    assert sorted(CHECKS) == EXPECTED
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    missing = [name for name in names if f"{name}.ipynb" not in readme]
    assert not missing, f"notebooks/README.md does not mention {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    sources = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert not re.search(r"^\s*(from|import) tests\b", sources, re.MULTILINE), (
        "notebooks must not import tests"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, kernel_name: str, durations: dict[str, float]) -> None:
    check, allowed_files = CHECKS[path.stem]
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    copy = workdir / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PREFIX_PROBE))
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name=kernel_name, resources={"metadata": {"path": str(workdir)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    durations[path.stem] = time.perf_counter() - start

    out = _stdout(nb)
    assert f"KERNEL_PREFIX={sys.prefix}\n" in out, "the notebook kernel does not run the test's interpreter"
    check(out, nb, workdir)
    left = {p.name for p in workdir.iterdir()} - {path.name}
    assert left <= allowed_files, f"{path.name} left files behind: {sorted(left - allowed_files)}"
