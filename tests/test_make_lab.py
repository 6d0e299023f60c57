"""``make lab`` opens the notebook that it names, at the URL that it prints.

The target runs for real on a free port, with Jupyter's config, data, runtime and workspace folders
in a temporary directory.  It is started only when its set-up steps have nothing left to do (the venv
stamp is current, graphviz and a C compiler are present), so the test never runs apt-get or pip.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"JupyterLab: (http://\S+?/lab/tree/(\S+?)\?token=(\S+))")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_env() -> dict[str, str]:
    # Flags of an outer make (`make test` runs this suite) are not for this one: no jobserver, no -n.
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    return {k: v for k, v in os.environ.items() if k not in outer}


def _make_lab_or_skip(venv: Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running inside a venv made by `make setup`")
    missing = [cmd for cmd in ("dot", "cc") if shutil.which(cmd) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: `make lab` would run apt-get; run `make setup` first")
    stale = subprocess.run([make, "-s", "-q", f"VENV={venv}", "venv"], cwd=REPO, env=_own_env(), check=False)
    if stale.returncode != 0:
        pytest.skip(
            f"the venv stamp in {venv} is not current: `make lab` would run pip; run `make setup` first"
        )
    return make


def _printed_url(log: Path, server: subprocess.Popen[bytes], timeout: float = 60) -> re.Match[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = URL_LINE.search(log.read_text())
        if found:
            return found
        if server.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"`make lab` printed no JupyterLab URL:\n{log.read_text()[-3000:]}")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def _wait_for_server(base: str, token: str, log: Path, server: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"`make lab` exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _get(f"{base}/api/status?token={token}")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer within 120 s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    # make, the shell it execs jupyter from, and any kernel share the session started for them.
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def test_make_lab_opens_the_notebook_at_the_url_it_prints(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    make = _make_lab_or_skip(venv)
    port, token = _free_port(), secrets.token_hex(8)
    env = dict(
        _own_env(),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    command = [
        make,
        "-s",
        "lab",
        f"VENV={venv}",
        f"LAB_PORT={port}",
        f"LAB_TOKEN={token}",
        "LAB_ARGS=--no-browser",
    ]
    log = tmp_path / "make-lab.log"
    with log.open("wb") as out:
        started = time.time()
        server = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            printed = _printed_url(log, server)
            # The set-up steps were up to date, so the URL comes at once (no apt-get, no pip).
            assert time.time() - started < 30, f"`make lab` took {time.time() - started:.0f} s to start"
            url, path, printed_token = printed.groups()
            assert printed_token == token and url.startswith(f"http://127.0.0.1:{port}/")
            base = url.split("/lab/tree/")[0]
            _wait_for_server(base, token, log, server)

            status, _ = _get(url)
            assert status == 200, f"the printed URL {url} answered {status}"
            status, body = _get(f"{base}/api/contents/{path}?token={token}&content=0")
            assert status == 200, f"JupyterLab cannot find {path!r} (HTTP {status}): {body[:300]!r}"
            model = json.loads(body)
            assert model["type"] == "notebook" and model["path"] == path
            assert (REPO / path).is_file()
        finally:
            _stop(server)
