"""Every MW-PKL rule fires where it should, with readable evidence.

Malicious samples are built by ``pickle.dumps`` of objects whose ``__reduce__`` returns a
harmless marker command, or written opcode by opcode; none is ever loaded.
"""

from __future__ import annotations

import os
import pickle
import struct

import pytest
from pickle_helpers import make_artifact

from modelward.findings import Severity
from modelward.pickle_analysis import PICKLE_RULES, PickleAnalysis, analyze, analyze_stream
from modelward.policy import Limits, Policy


def G(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def S(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def B(raw: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(raw)) + raw


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


P3 = b"\x80\x03"


def run(data: bytes, policy: Policy | None = None) -> PickleAnalysis:
    return analyze(make_artifact(data, policy))


def by_rule(result: PickleAnalysis, rule_id: str) -> list:
    return [f for f in result.findings if f.rule.id == rule_id]


class Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (self.command,))


@pytest.mark.parametrize("proto", range(6))
def test_reduce_to_os_system_is_critical_with_the_call_as_evidence(
    proto: int, marker_command: str
) -> None:
    result = run(pickle.dumps({"weights": [1.0], "x": Payload(marker_command)}, protocol=proto))
    (finding,) = by_rule(result, "MW-PKL-001")
    assert finding.severity is Severity.CRITICAL
    assert f"system('{marker_command}')" in finding.evidence
    assert "process execution" in finding.message
    assert finding.location.offset is not None and finding.location.offset > 0
    assert result.complete


def test_unknown_global_is_medium_and_reported_once() -> None:
    one = G("mylib.layers", "Block") + b")\x81"
    data = P3 + b"(" + one * 50 + b"l."
    result = run(data)
    (finding,) = by_rule(result, "MW-PKL-002")
    assert finding.severity is Severity.MEDIUM
    assert "mylib.layers.Block" in finding.message
    assert max(f.severity for f in result.findings) is Severity.MEDIUM


def test_safe_globals_give_no_finding() -> None:
    data = P3 + call(G("collections", "OrderedDict")) + b"."
    assert run(data).findings == ()


def test_getattr_chain_is_reflective_and_critical(marker_command: str) -> None:
    imp = call(G("builtins", "__import__"), S("os"))
    func = call(G("builtins", "getattr"), imp, S("system"))
    result = run(P3 + call(func, S(marker_command)) + b".")
    (finding,) = by_rule(result, "MW-PKL-003")
    assert finding.severity is Severity.CRITICAL
    assert "os.system" in finding.message
    assert finding.evidence == f"getattr(__import__('os'), 'system')('{marker_command}')"


def test_stack_global_with_computed_names(marker_command: str) -> None:
    def rot13(text: str) -> bytes:
        return call(G("codecs", "decode"), S(text), S("rot13"))

    data = b"\x80\x04" + rot13("bf") + rot13("flfgrz") + b"\x93(" + S(marker_command) + b"tR."
    result = run(data)
    (finding,) = by_rule(result, "MW-PKL-003")
    assert finding.severity is Severity.CRITICAL
    assert "os.system" in finding.message
    assert "flfgrz" in finding.evidence


def test_stack_global_with_unresolvable_name_is_high() -> None:
    name = call(G("mylib", "make_name"))
    data = b"\x80\x04" + S("os") + name + b"\x93)R."
    result = run(data)
    assert any(f.rule.id == "MW-PKL-003" and f.severity >= Severity.HIGH for f in result.findings)


def test_stack_global_with_memo_names_is_a_plain_import(marker_command: str) -> None:
    data = (b"\x80\x04" + S("os") + b"\x94" + S("system") + b"\x94h\x00h\x01\x93("
            + S(marker_command) + b"tR.")
    (finding,) = by_rule(run(data), "MW-PKL-001")
    assert f"os.system('{marker_command}')" == finding.evidence


def test_build_on_a_class_is_attribute_poisoning() -> None:
    state = b"}" + S("__init__") + G("os", "system") + b"s"
    result = run(P3 + G("collections", "OrderedDict") + state + b"b.")
    (finding,) = by_rule(result, "MW-PKL-004")
    assert finding.severity is Severity.CRITICAL
    assert "collections.OrderedDict" in finding.message
    assert "__setstate__" in finding.evidence and "os.system" in finding.evidence


def test_poisoned_module_attribute_is_followed(marker_command: str) -> None:
    module = call(G("importlib", "import_module"), S("collections"))
    poison = b"}" + S("OrderedDict") + G("os", "system") + b"sb0"
    use = call(G("collections", "OrderedDict"), S(marker_command))
    result = run(P3 + module + poison + use + b".")
    assert by_rule(result, "MW-PKL-004")
    assert any(f"os.system('{marker_command}')" in (f.evidence or "")
               for f in result.findings if f.severity is Severity.CRITICAL)


def test_safe_callable_with_dangerous_argument_is_critical(marker_command: str) -> None:
    partial = call(G("functools", "partial"), G("os", "system"), S(marker_command))
    result = run(P3 + partial + b")R.")
    (finding,) = [f for f in result.findings if f.severity is Severity.CRITICAL]
    assert finding.evidence == f"functools.partial(os.system, '{marker_command}')()"


def test_methodcaller_and_attrgetter_are_resolved(marker_command: str) -> None:
    module = call(G("importlib", "import_module"), S("os"))
    caller = call(G("operator", "methodcaller"), S("system"), S(marker_command))
    result = run(P3 + caller + b"(" + module + b"tR.")
    assert any(f.rule.id == "MW-PKL-003" and "os.system" in f.message for f in result.findings)
    getter = call(G("operator", "attrgetter"), S("system"))
    result = run(P3 + call(call(getter, module), S(marker_command)) + b".")
    (finding,) = by_rule(result, "MW-PKL-003")
    assert finding.severity is Severity.CRITICAL
    assert "attrgetter('system')" in finding.evidence


def test_nested_pickle_in_loader_argument(marker_command: str) -> None:
    inner = pickle.dumps(Payload(marker_command), protocol=2)
    result = run(P3 + call(G("pickle", "loads"), B(inner)) + b".")
    nested = by_rule(result, "MW-PKL-005")
    assert nested and nested[0].severity is Severity.CRITICAL
    inner_hits = [f for f in result.findings if f.message.startswith("nested pickle passed to")]
    assert any(f"system('{marker_command}')" in (f.evidence or "") for f in inner_hits)
    # a short payload is analysed as a member of its own
    assert any(f.location.members and f.location.members[-1].startswith("<pickle@")
               for f in inner_hits)


def test_big_nested_pickle_is_located_in_the_outer_file(marker_command: str) -> None:
    inner = pickle.dumps([Payload(marker_command), "p" * 1000], protocol=4)
    outer = P3 + call(G("torch", "load"), call(G("io", "BytesIO"), B(inner))) + b"."
    result = run(outer)
    hits = [f for f in result.findings if f.message.startswith("nested pickle passed to")
            and f.rule.id == "MW-PKL-001"]
    assert hits
    start = outer.index(inner)
    assert start < hits[0].location.offset < start + len(inner)


def test_nested_pickles_are_depth_limited(marker_command: str) -> None:
    data = pickle.dumps(Payload(marker_command), protocol=2)
    for _ in range(10):
        data = P3 + call(G("pickle", "loads"), B(data)) + b"."
    result = run(data)
    assert by_rule(result, "MW-PKL-005")


def test_truncated_stream_keeps_what_ran(marker_command: str) -> None:
    data = (G("os", "system") + b"(" + b"S'" + marker_command.encode() + b"'\ntR")
    result = run(data)
    assert not result.complete
    assert by_rule(result, "MW-PKL-001")[0].severity is Severity.CRITICAL
    (broken,) = by_rule(result, "MW-PKL-006")
    assert broken.severity is Severity.LOW and broken.location.offset == len(data)


@pytest.mark.parametrize("tail", [b"\xff", b"a", b"0", b"h\x09", b"X\xff\xff\xff\x7f"])
def test_garbage_after_a_payload_is_malformed_but_still_critical(
    tail: bytes, marker_command: str
) -> None:
    data = P3 + call(G("os", "system"), S(marker_command)) + b"0" + tail
    result = run(data)
    assert by_rule(result, "MW-PKL-001")
    assert by_rule(result, "MW-PKL-006")


def test_appended_pickle_is_analysed(marker_command: str) -> None:
    data = pickle.dumps({"a": 1}, protocol=2) + pickle.dumps(Payload(marker_command), protocol=2)
    results = analyze_stream(make_artifact(data))
    rules = {f.rule.id for r in results for f in r.findings}
    assert {"MW-PKL-001", "MW-PKL-008"} <= rules


def test_computed_persistent_id() -> None:
    pid = b"(" + S("storage") + call(G("os", "getcwd")) + b"t"
    result = run(P3 + pid + b"Q.")
    (finding,) = by_rule(result, "MW-PKL-009")
    assert "persistent_load(('storage', os.getcwd()))" == finding.evidence
    plain = run(P3 + b"(" + S("storage") + G("torch", "FloatStorage") + S("0") + b"tQ.")
    assert plain.persistent_ids == (("storage", "torch.FloatStorage", "0"),)
    assert not by_rule(plain, "MW-PKL-009")


def test_opcode_budget() -> None:
    policy = Policy(limits=Limits(max_pickle_ops=100))
    result = run(pickle.dumps(list(range(1000)), protocol=0), policy)
    assert not result.complete and result.limit_hit
    assert by_rule(result, "MW-PKL-010")


def test_mark_depth_budget() -> None:
    policy = Policy(limits=Limits(max_pickle_depth=5))
    result = run(b"(" * 10 + b".", policy)
    assert by_rule(result, "MW-PKL-010")


def test_unregistered_extension_code() -> None:
    result = run(b"\x80\x02\x82\x05)R.")
    (finding,) = by_rule(result, "MW-PKL-011")
    assert "5" in finding.message
    assert result.complete


def test_ext_code_zero_is_malformed() -> None:
    assert by_rule(run(b"\x80\x02\x82\x00."), "MW-PKL-006")


def test_unknown_class_built_with_dangerous_state_is_critical() -> None:
    state = b"}" + S("hook") + G("os", "system") + b"s"
    result = run(P3 + G("mylib", "Model") + b")\x81" + state + b"b.")
    critical = [f for f in result.findings if f.severity is Severity.CRITICAL]
    assert critical and "__setstate__" in critical[0].evidence


def test_setitems_on_unknown_object_is_a_call() -> None:
    data = P3 + G("mylib", "Registry") + b")\x81(" + S("k") + G("os", "system") + b"u."
    result = run(data)
    (finding,) = by_rule(result, "MW-PKL-001")
    assert "__setitem__" in finding.evidence


def test_every_rule_is_documented() -> None:
    from modelward.pickle_analysis import rules

    ids = [r.id for r in PICKLE_RULES]
    assert len(ids) == len(set(ids))
    for rule in PICKLE_RULES:
        assert rule.description and rule.remediation
        assert f"{rule.id} {rule.name} ({rule.severity.name})" in (rules.__doc__ or "")


@pytest.mark.parametrize("proto", [0, 1, 2])
def test_nested_pickle_carried_as_latin1_text(proto: int, marker_command: str) -> None:
    # Protocols < 3 pickle bytes as _codecs.encode('<latin-1 text>', 'latin1').
    class Loads:
        def __init__(self, payload: bytes) -> None:
            self.payload = payload

        def __reduce__(self) -> tuple[object, ...]:
            import _pickle  # pickle.loads itself is patched out during tests

            return (_pickle.loads, (self.payload,))

    inner = pickle.dumps(Payload(marker_command), protocol=2) + b"\xe9" * 300
    result = run(pickle.dumps(Loads(inner), protocol=proto))
    assert by_rule(result, "MW-PKL-005")
    assert any(f.message.startswith("nested pickle passed to") and f.rule.id == "MW-PKL-001"
               and f"system('{marker_command}')" in (f.evidence or "") for f in result.findings)


def test_huge_tuples_are_bounded() -> None:
    data = b"(" + b"K\x01" * 100_000 + b"t."
    result = run(data)
    assert result.complete and result.findings == ()


def test_deadline_stops_the_analysis() -> None:
    from modelward.pickle_analysis.machine import CHECK_EVERY
    from modelward.scanners.base import Artifact, ScanBudget, ScanContext

    data = pickle.dumps(list(range(CHECK_EVERY * 2)), protocol=2)
    expired = Artifact(data, path="x.pkl", context=ScanContext(Policy(), ScanBudget(0.0)))
    result = analyze(expired)
    assert not result.complete and result.limit_hit
    assert by_rule(result, "MW-PKL-010")


def test_evidence_is_bounded(marker_command: str) -> None:
    data = P3 + call(G("os", "system"), S(marker_command + " " + "a" * 5000)) + b"."
    (finding,) = by_rule(run(data), "MW-PKL-001")
    assert len(finding.evidence) <= 400
