"""The core install stays light: scanning every format imports no heavy framework.

`pip install modelward` brings only rich, jinja2 and cryptography; a scan of every bundled
format must therefore never import torch, numpy, onnx, keras, h5py or the like (they may be
installed in the dev environment, so the check looks at what the scan imported).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEAVY = ("torch", "numpy", "onnx", "onnxruntime", "keras", "tensorflow", "h5py", "safetensors",
         "gguf", "sklearn", "joblib", "xgboost", "lightgbm", "cryptography")

PROBE = """
import json, sys
import modelward
report = modelward.scan_path(sys.argv[1])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"heavy": heavy, "files": len(report.files),
                   "formats": sorted({{f.format or "" for f in report.files}})}}))
"""


def test_scanning_every_format_imports_no_framework() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(EXAMPLES)],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["files"] >= 15


CLI_PROBE = """
import contextlib, io, json, sys
from modelward.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    codes = [main(["--help"]), main(["rules", "--format", "json"])]
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""


def test_cli_and_rules_import_no_extra() -> None:
    """`modelward --help` and `modelward rules` work without the diff/registry/torch extras."""
    extras = (*HEAVY, "starlette", "uvicorn", "psycopg", "boto3")
    out = subprocess.run(
        [sys.executable, "-c", CLI_PROBE.format(heavy=extras)],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0, 0]
    assert [m for m in result["heavy"] if m != "cryptography"] == []
