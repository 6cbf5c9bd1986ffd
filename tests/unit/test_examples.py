"""The bundled demo (`make run` scans examples/): benign files clean, each malicious one caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward import Severity, Status, scan_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "os_system.pkl": "MW-PKL-001",
    "checkpoint_with_payload.pt": "MW-PKL-001",
    "disguised.safetensors": "MW-PKL-001",
    "object_array.npy": "MW-PKL-001",
    "getattr_exec.pkl": "MW-PKL-003",
    "zip_slip.zip": "MW-ZIP-001",
    "ssti_chat_template.gguf": "MW-GGUF-002",
    "backdoored_classifier.onnx": "MW-ONNX-001",
}


def test_benign_examples_are_clean() -> None:
    report = scan_path(EXAMPLES / "benign", raise_internal=True)
    assert len(report.files) >= 7
    for result in report.files:
        assert result.status is Status.SCANNED, result.path
        worst = result.verdict
        assert worst is None or worst < Severity.MEDIUM, (result.path, result.findings)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malicious_example_is_caught(name: str) -> None:
    report = scan_path(EXAMPLES / "malicious" / name, raise_internal=True)
    (result,) = report.files
    hits = [f for f in result.findings if f.rule.id == EXPECTED[name]]
    assert hits and max(f.severity for f in hits) >= Severity.HIGH, result.findings


def test_every_malicious_example_has_an_expectation() -> None:
    assert {p.name for p in (EXAMPLES / "malicious").iterdir()} == set(EXPECTED)
