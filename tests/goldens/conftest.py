"""Golden-file fixtures: a deterministic sample report and a `golden` comparer.

Refresh the goldens after an intended output change with
``pytest tests/goldens --update-goldens`` (or ``MODELWARD_UPDATE_GOLDENS=1 pytest ...``
when running a wider selection, where pytest does not know this directory's option).
The sample report is built from `Finding` objects directly, so the goldens depend only on
the renderers, not on any scanner; times are fixed, so nothing needs masking.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from modelward.findings import Finding, Location, Rule, RuleId, Severity
from modelward.policy import Policy
from modelward.results import FileResult, MemberInfo, ScanReport, Status
from modelward.scan import EXTENSION_MISMATCH, RESOURCE_LIMIT, SYMLINK_ESCAPE, UNKNOWN_FORMAT

GOLDENS = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/goldens/* from the current renderers")


def _updating(config: pytest.Config) -> bool:
    try:
        flag = bool(config.getoption("--update-goldens"))
    except ValueError:  # option unknown: this conftest was not loaded at start-up
        flag = False
    return flag or os.environ.get("MODELWARD_UPDATE_GOLDENS") == "1"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with ``tests/goldens/NAME`` (or rewrite it when updating)."""
    updating = _updating(request.config)

    def check(name: str, text: str) -> None:
        path = GOLDENS / name
        if updating:
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"missing golden {name}; run pytest tests/goldens --update-goldens")
        assert text == path.read_text(encoding="utf-8"), (
            f"{name} differs from the renderer output; if the change is intended, run "
            "pytest tests/goldens --update-goldens and review the diff"
        )

    return check


DANGEROUS_GLOBAL = Rule(
    RuleId("MW-TEST-001"), "dangerous-global", Severity.CRITICAL,
    "The pickle imports a callable that runs a process. Loading the file runs it.",
    "Do not load the file. Obtain the model from a trusted source, preferably as safetensors.",
    ("https://example.org/advisories/pickle-rce",),
)
UNKNOWN_GLOBAL = Rule(
    RuleId("MW-TEST-002"), "unknown-global", Severity.MEDIUM,
    "The pickle imports a callable outside the allowlist; it cannot be verified safe.",
    "If you trust the class, allow it with --allow-global or allowed-globals in the policy.",
)
GRAPH_FILE_ACCESS = Rule(
    RuleId("MW-TEST-003"), "graph-file-access", Severity.HIGH,
    "A graph operator reads files at inference time.",
    "Remove the operator or run the model in a sandbox without file access.",
)


def build_sample_report() -> ScanReport:
    """Five files covering every status, severity, location kind and an escape attempt."""
    evil = "models/evil.pt"
    pt = FileResult(evil, "pytorch", 4096, Status.SCANNED, [
        Finding(DANGEROUS_GLOBAL, Severity.CRITICAL,
                "os.system is imported and called when the file is loaded",
                Location(evil, ("archive/data.pkl",), 42),
                evidence="from os import system\nsystem('touch /tmp/marker')  # \x1b[2Jhidden",
                details=(("opcode", "REDUCE"), ("protocol", "2"))),
        Finding(UNKNOWN_GLOBAL, Severity.MEDIUM, "mylib.layers.Block is not on the allowlist",
                Location(evil, ("archive/data.pkl",), 10), evidence="mylib.layers.Block"),
        Finding(EXTENSION_MISMATCH, Severity.LOW,
                "extension .pt suggests pytorch, but the content is pickle",
                Location(evil), evidence="evil.pt"),
    ], [MemberInfo(("archive/data.pkl",), "pickle", 300),
        MemberInfo(("archive/version",), None, 2)],
        sha256="0" * 63 + "1", duration_s=0.0125, suppressed=1)
    onnx = FileResult("models/graph \u202eevil.onnx", "onnx", 5 << 20, Status.FAILED, [
        Finding(GRAPH_FILE_ACCESS, Severity.HIGH, "operator ReadFile reads a path given at runtime",
                Location("models/graph \u202eevil.onnx", (), None, "ReadFile_3")),
        Finding(RESOURCE_LIMIT, Severity.MEDIUM,
                "onnx: graph has more nodes than the limit of 2000000; the rest was not analysed",
                Location("models/graph \u202eevil.onnx", (), 1024)),
    ], duration_s=1.5)
    link = FileResult("models/weights.bin", None, 0, Status.SKIPPED, [
        Finding(SYMLINK_ESCAPE, Severity.MEDIUM,
                "symbolic link leads outside the scanned folder; its target was not scanned",
                Location("models/weights.bin"), evidence="models/weights.bin -> /etc/passwd"),
    ])
    notes = FileResult("notes.xyz", None, 12, Status.SKIPPED, [
        Finding(UNKNOWN_FORMAT, Severity.INFO, "not analysed: content matches no known format",
                Location("notes.xyz"), evidence="b'hello world!'"),
    ], duration_s=0.0001)
    clean = FileResult("models/model.safetensors", "safetensors", 1000, sha256="ab" * 32,
                       duration_s=0.002)
    policy = Policy(ignored_rules=frozenset({"MW-CORE-008"}), source="modelward.toml")
    return ScanReport(
        targets=["models", "notes.xyz"],
        files=[clean, pt, onnx, link, notes],
        policy=policy,
        started_at="2026-11-25T10:00:00+00:00",
        duration_s=1.75,
        version="0.1.0",
    )


@pytest.fixture
def sample_report() -> ScanReport:
    return build_sample_report()
