"""Importing nncf_explore changes nothing in torch, and the core needs no widget library."""

from __future__ import annotations

import subprocess
import sys

SNAPSHOT = """
import torch, torch.nn.functional as F
def snap():
    return ({k: id(v) for k, v in vars(F).items()}, {k: id(v) for k, v in vars(torch.Tensor).items()},
            {k: id(getattr(torch, k)) for k in dir(torch)}, {k: id(v) for k, v in vars(torch.nn.Module).items()})
before = snap()
import nncf_explore
from nncf_explore import (trace_model, create_compressed_model, NNCFConfig, EditSession, build_quantizer_setup,
                          config_from_setup, nncf_model_input)
after = snap()
changed = [name for b, a in zip(before, after) for name in set(b) | set(a) if b.get(name) != a.get(name)]
assert not changed, changed
assert not torch.overrides._is_torch_function_mode_enabled()
assert not torch.nn.modules.module._global_forward_hooks and not torch.nn.modules.module._global_forward_pre_hooks
import sys
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"ipywidgets", "plotly", "anywidget"})
assert not loaded, loaded
print("ok")
"""


def test_importing_the_package_patches_nothing_and_loads_no_widget_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_config_package_does_not_import_torch() -> None:
    code = "import nncf_explore.config, sys; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ipywidgets", "plotly", "anywidget"}:
            raise ImportError(f"{name} is blocked: not installed in this test")
sys.meta_path.insert(0, Block())
import warnings, torch
warnings.simplefilter("ignore")
from nncf_explore import create_compressed_model, trace_model
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
ctrl, q = create_compressed_model(net, {"input_info": {"sample_size": [1, 3, 8, 8]},
                                        "compression": {"algorithm": "quantization"}}, dump_graphs=False)
print(len(ctrl.setup), q(torch.ones(1, 3, 8, 8)).shape)
try:
    from nncf_explore import Explorer
except ImportError as exc:
    print("explorer needs the widgets extra:", "pip install" in str(exc) or "widgets" in str(exc))
"""


def test_core_works_without_the_widget_libraries_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("2 torch.Size([1, 4, 6, 6])")
    assert lines[-1] == "explorer needs the widgets extra: True"
