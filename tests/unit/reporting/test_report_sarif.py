"""SARIF 2.1.0: valid against the official schema, GitHub code-scanning conventions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mw_reporting_helpers import RULE, file_result, finding, make_report

from modelward.findings import Rule, RuleId, Severity
from modelward.reporting import render
from modelward.reporting.sarif import SECURITY_SEVERITY, level_of
from modelward.results import ScanReport, Status

SCHEMA = Path(__file__).parents[2] / "assets" / "schemas" / "sarif-schema-2.1.0.json"
LOW_RULE = Rule(RuleId("MW-TEST-002"), "low-rule", Severity.LOW, "Odd.", "")


@pytest.fixture(scope="module")
def validator() -> Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = validator_for(schema)  # Draft 4, as the schema declares
    cls.check_schema(schema)
    return cls(schema, format_checker=FormatChecker())


def sarif(report: ScanReport, validator: Validator) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render(report, "sarif"))
    validator.validate(data)
    return data


def test_one_result_per_finding_with_levels(validator: Validator) -> None:
    report = make_report(file_result(
        "models/a.pt",
        *(finding(s, "models/a.pt", message=f"sev {s.label}") for s in Severity),
    ))
    run = sarif(report, validator)["runs"][0]
    levels = {r["properties"]["severity"]: r["level"] for r in run["results"]}
    assert levels == {"critical": "error", "high": "error", "medium": "warning", "low": "note",
                      "info": "note"}
    assert len(run["results"]) == len(Severity)
    assert {level_of(s) for s in Severity} == {"error", "warning", "note"}


def test_location_is_the_file_member_and_offset_in_message_and_properties(
        validator: Validator) -> None:
    report = make_report(file_result(
        "dir/model v1.pt", finding(path="dir/model v1.pt", members=("a.zip", "data.pkl"),
                                   offset=42, evidence="os.system('x')")))
    (result,) = sarif(report, validator)["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "dir/model%20v1.pt", "uriBaseId": "SRCROOT"}
    assert "byteOffset" not in physical["region"]  # the offset is inside the member
    assert "a.zip!data.pkl" in result["message"]["text"]
    assert "byte offset 42" in result["message"]["text"]
    assert "os.system('x')" in result["message"]["text"]
    assert result["properties"]["member"] == "a.zip!data.pkl"
    assert result["properties"]["members"] == ["a.zip", "data.pkl"]
    assert result["properties"]["offset"] == 42
    assert result["locations"][0]["logicalLocations"][0]["name"] == "data.pkl"


def test_offset_in_file_itself_is_a_byte_region(validator: Validator) -> None:
    report = make_report(file_result("a.pkl", finding(path="a.pkl", offset=9)))
    (result,) = sarif(report, validator)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 1,
                                                                    "byteOffset": 9}


def test_absolute_paths_become_file_uris(validator: Validator) -> None:
    report = make_report(file_result("/tmp/x y.pkl", finding(path="/tmp/x y.pkl")))
    (result,) = sarif(report, validator)["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "file:///tmp/x%20y.pkl"}


def test_rules_metadata(validator: Validator) -> None:
    report = make_report(file_result("a", finding(path="a", rule=RULE),
                                     finding(Severity.LOW, path="a", rule=LOW_RULE),
                                     finding(path="a", rule=RULE, offset=3)))
    run = sarif(report, validator)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["MW-TEST-001", "MW-TEST-002"]
    high = rules[0]
    assert high["shortDescription"]["text"] == "Something dangerous."
    assert high["fullDescription"]["text"] == RULE.description
    assert high["help"]["text"] == "Do the safe thing."
    assert "https://example.org/ref" in high["help"]["markdown"]
    assert high["helpUri"].endswith("docs/rules.md#mw-test-001")
    assert urlsplit(high["helpUri"]).scheme == "https"
    assert high["defaultConfiguration"] == {"level": "error"}
    assert high["properties"]["security-severity"] == "8.0"
    assert "security" in high["properties"]["tags"]
    assert "help" not in rules[1]  # no remediation text: no empty help
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert {float(v) for v in SECURITY_SEVERITY.values()} == {9.5, 8.0, 5.5, 3.0, 0.0}


def test_fingerprints_are_stable_and_distinct(validator: Validator) -> None:
    def fingerprints(report: ScanReport) -> list[str]:
        return [r["partialFingerprints"]["modelwardFinding/v1"]
                for r in sarif(report, validator)["runs"][0]["results"]]

    one = make_report(file_result("a", finding(path="a", offset=1), finding(path="a", offset=2)))
    again = make_report(file_result("a", finding(path="a", offset=1, message="reworded"),
                                    finding(path="a", offset=2)))
    first = fingerprints(one)
    assert first == fingerprints(again)
    assert len(set(first)) == 2


def test_incomplete_scan_is_not_successful(validator: Validator) -> None:
    failed = file_result("big.onnx", finding(Severity.MEDIUM, "big.onnx"), status=Status.FAILED)
    run = sarif(make_report(failed), validator)["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 2
    (note,) = invocation["toolExecutionNotifications"]
    assert "big.onnx was not fully analysed" in note["message"]["text"]
    assert note["level"] == "error"


def test_failed_file_is_never_silent_even_when_its_finding_is_ignored(
        validator: Validator) -> None:
    failed = file_result("big.onnx", status=Status.FAILED, suppressed=1)
    run = sarif(make_report(failed), validator)["runs"][0]
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is False
    assert run["invocations"][0]["toolExecutionNotifications"]


def test_clean_run(validator: Validator) -> None:
    run = sarif(make_report(file_result("a")), validator)["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["invocations"][0]["startTimeUtc"] == "2026-11-25T10:00:00Z"


def test_schema_catches_a_broken_document(validator: Validator) -> None:
    data = json.loads(render(make_report(file_result("a", finding(path="a"))), "sarif"))
    data["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(data)


def test_long_evidence_is_cut_in_the_message_only(validator: Validator) -> None:
    evidence = "x" * 5000
    report = make_report(file_result("a", finding(path="a", evidence=evidence)))
    (result,) = sarif(report, validator)["runs"][0]["results"]
    assert len(result["message"]["text"]) < 1500
    assert "5000 characters in properties.evidence" in result["message"]["text"]
    assert result["properties"]["evidence"] == evidence


def test_message_text_is_escaped_but_evidence_property_is_raw(validator: Validator) -> None:
    hostile = "os.system('x')\x1b[2J\u202e"
    report = make_report(file_result("a", finding(path="a", evidence=hostile)))
    (result,) = sarif(report, validator)["runs"][0]["results"]
    assert "\x1b" not in result["message"]["text"] and "\u202e" not in result["message"]["text"]
    assert "\\x1b[2J\\u202e" in result["message"]["text"]
    assert result["properties"]["evidence"] == hostile
