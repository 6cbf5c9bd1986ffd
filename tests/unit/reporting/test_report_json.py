"""The JSON report: valid against docs/report-schema.json, complete, stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from mw_reporting_helpers import file_result, finding, make_report

from modelward.findings import Severity
from modelward.reporting import render
from modelward.reporting.json import SCHEMA_VERSION
from modelward.results import Status

SCHEMA_PATH = Path(__file__).parents[3] / "docs" / "report-schema.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_document_validates_and_carries_everything(validator: Draft202012Validator) -> None:
    report = make_report(
        file_result("a.pt", finding(Severity.CRITICAL, "a.pt", ("x/data.pkl",), 7),
                    finding(Severity.INFO, "a.pt", node="conv1", evidence=None), suppressed=2),
        file_result("b.onnx", status=Status.FAILED),
    )
    data = json.loads(render(report, "json"))
    validator.validate(data)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["exit_code"] == 1 and data["verdict"] == "critical" and data["complete"] is False
    assert data["policy"]["digest"] == report.policy.digest()
    assert data["summary"]["findings"] == {"critical": 1, "high": 0, "medium": 0, "low": 0,
                                           "info": 1}
    assert data["summary"] == {**data["summary"], "files": 2, "failed": 1, "suppressed": 2,
                               "total_findings": 2}
    first = data["files"][0]["findings"][0]
    assert first["location"] == {"path": "a.pt", "members": ["x/data.pkl"],
                                 "member": "x/data.pkl", "offset": 7, "node": None}
    assert first["remediation"] == "Do the safe thing."
    assert first["help_uri"].endswith("docs/rules.md#mw-test-001")
    assert data["files"][1]["status"] == "failed"


def test_schema_rejects_drift(validator: Draft202012Validator) -> None:
    data = json.loads(render(make_report(file_result("a", finding())), "json"))
    data["files"][0]["findings"][0]["surprise"] = 1
    assert not validator.is_valid(data)
    data = json.loads(render(make_report(file_result("a", finding())), "json"))
    data["files"][0]["findings"][0]["severity"] = "severe"
    assert not validator.is_valid(data)


def test_clean_report(validator: Draft202012Validator) -> None:
    data = json.loads(render(make_report(file_result("a")), "json"))
    validator.validate(data)
    assert data["verdict"] is None and data["exit_code"] == 0 and data["complete"] is True


def test_fail_on_drives_exit_code() -> None:
    report = make_report(file_result("a", finding(Severity.MEDIUM)), fail_on=Severity.MEDIUM)
    assert json.loads(render(report, "json"))["exit_code"] == 1


def test_schema_documents_every_field_the_renderer_writes() -> None:
    # The TypedDicts are the renderer's contract; the schema must require each of their keys.
    from modelward.reporting import json as json_module

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    pairs = {"ReportJson": schema, "FileJson": schema["$defs"]["file"],
             "FindingJson": schema["$defs"]["finding"],
             "LocationJson": schema["$defs"]["location"],
             "SummaryJson": schema["$defs"]["summary"], "MemberJson": schema["$defs"]["member"]}
    for name, part in pairs.items():
        keys = set(getattr(json_module, name).__annotations__)
        assert keys == set(part["required"]) == set(part["properties"]), name
