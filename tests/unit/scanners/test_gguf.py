"""GGUF scanner: header sanity on files written by gguf-py, and the chat-template audit."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from chat_template_corpus import BENIGN, BENIGN_FILES, PAYLOADS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes, scan_path
from modelward._internal.jinja_audit import IssueKind, audit_template

gguf = pytest.importorskip("gguf")


def _write(path: Path, template: str | None = None, *, big_endian: bool = False,
           extra: dict[str, str] | None = None) -> bytes:
    kwargs = {"endianess": gguf.GGUFEndian.BIG} if big_endian else {}
    writer = gguf.GGUFWriter(str(path), "llama", **kwargs)
    writer.add_name("tiny")
    writer.add_uint32("llama.context_length", 128)
    if template is not None:
        writer.add_chat_template(template)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    writer.add_tensor("tok_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.add_tensor("out.weight", np.ones((64,), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "model.gguf"
    return _write(path, BENIGN["meta-llama/Meta-Llama-3-8B-Instruct"])


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def test_benign_file_is_clean(benign: bytes) -> None:
    result = scan_bytes(benign, "model.gguf", raise_internal=True)
    assert result.format == "gguf-v3"
    assert result.findings == []


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_real_templates_pass(name: str) -> None:
    assert audit_template(BENIGN[name]) == []


@pytest.mark.parametrize("path", BENIGN_FILES, ids=lambda p: p.name)
def test_real_tool_use_templates_pass(path: Path) -> None:
    assert audit_template(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_ssti_payloads_are_injection(name: str) -> None:
    kinds = {issue.kind for issue in audit_template(PAYLOADS[name])}
    assert IssueKind.INJECTION in kinds


def test_cve_2024_34359_in_gguf_is_high(tmp_path: Path) -> None:
    data = _write(tmp_path / "evil.gguf", PAYLOADS["CVE-2024-34359 PoC"])
    result = scan_bytes(data, "evil.gguf", raise_internal=True)
    high = [f for f in result.findings if f.rule.id == "MW-GGUF-002"]
    assert high and all(f.severity is Severity.HIGH for f in high)
    assert high[0].location.node == "tokenizer.chat_template"
    assert any(f.evidence == ".__subclasses__" for f in high)


def test_named_template_variants_are_audited(tmp_path: Path) -> None:
    data = _write(tmp_path / "named.gguf", BENIGN["google/gemma-7b-it"],
                  extra={"tokenizer.chat_template.tool_use": PAYLOADS["lipsum globals"]})
    result = scan_bytes(data, "named.gguf", raise_internal=True)
    nodes = {f.location.node for f in result.findings if f.rule.id == "MW-GGUF-002"}
    assert nodes == {"tokenizer.chat_template.tool_use"}


def test_unparseable_template_is_medium() -> None:
    (issue,) = audit_template("{% for m in messages %}{{ m }")
    assert issue.kind is IssueKind.UNPARSEABLE


def test_unknown_filter_is_unverified() -> None:
    kinds = {i.kind for i in audit_template("{{ messages|shell_exec }}")}
    assert kinds == {IssueKind.UNVERIFIED}


def test_big_endian_is_parsed_and_flagged(tmp_path: Path) -> None:
    data = _write(tmp_path / "be.gguf", BENIGN["mlabonne/AlphaMonarch-7B"], big_endian=True)
    result = scan_bytes(data, "be.gguf", raise_internal=True)
    assert result.format == "gguf-v3-be"
    assert ids(result) == {"MW-GGUF-007"}


def test_truncated_file_reports_tensor_past_end(benign: bytes) -> None:
    result = scan_bytes(benign[:-100], "model.gguf", raise_internal=True)
    assert "MW-GGUF-005" in ids(result)


def test_impossible_kv_count(benign: bytes) -> None:
    forged = benign[:16] + struct.pack("<Q", 1 << 40) + benign[24:]
    result = scan_bytes(forged, "model.gguf", raise_internal=True)
    (finding,) = [f for f in result.findings if f.rule.id == "MW-GGUF-001"]
    assert finding.location.offset == 16


def _tensor_info_offset(data: bytes, name: bytes) -> int:
    return data.index(struct.pack("<Q", len(name)) + name)


def test_too_many_dims_is_high(benign: bytes) -> None:
    at = _tensor_info_offset(benign, b"out.weight") + 8 + len(b"out.weight")
    forged = benign[:at] + struct.pack("<I", 9) + benign[at + 4:]
    result = scan_bytes(forged, "model.gguf", raise_internal=True)
    layout = [f for f in result.findings if f.rule.id == "MW-GGUF-005"]
    assert layout and layout[0].severity is Severity.HIGH


def test_overlapping_tensors(benign: bytes) -> None:
    # out.weight: name, n_dims=1, dim, type, offset -> point it at tok_embd's bytes.
    at = _tensor_info_offset(benign, b"out.weight") + 8 + len(b"out.weight") + 4 + 8 + 4
    forged = benign[:at] + struct.pack("<Q", 0) + benign[at + 8:]
    result = scan_bytes(forged, "model.gguf", raise_internal=True)
    messages = [f.message for f in result.findings if f.rule.id == "MW-GGUF-005"]
    assert any("overlaps" in m for m in messages)


def test_misaligned_offset(benign: bytes) -> None:
    at = _tensor_info_offset(benign, b"out.weight") + 8 + len(b"out.weight") + 4 + 8 + 4
    (offset,) = struct.unpack_from("<Q", benign, at)
    forged = benign[:at] + struct.pack("<Q", offset + 2) + benign[at + 8:]
    result = scan_bytes(forged, "model.gguf", raise_internal=True)
    assert any("not aligned" in f.message for f in result.findings)


def test_duplicate_key(tmp_path: Path) -> None:
    data = _write(tmp_path / "dup.gguf", extra={"general.namx": "x"})
    forged = data.replace(b"general.namx", b"general.name")
    result = scan_bytes(forged, "dup.gguf", raise_internal=True)
    assert "MW-GGUF-006" in ids(result)


def test_unsupported_version() -> None:
    result = scan_bytes(b"GGUF" + struct.pack("<I", 99) + b"\0" * 32, "x.gguf",
                        raise_internal=True)
    assert ids(result) == {"MW-GGUF-001"}


def test_scan_path_on_disk(tmp_path: Path, benign: bytes) -> None:
    (tmp_path / "m.gguf").write_bytes(benign)
    report = scan_path(tmp_path / "m.gguf", raise_internal=True)
    assert report.files[0].findings == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_headers_never_crash(benign: bytes, data: st.DataObject) -> None:
    blob = bytearray(benign[:4096])
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(4, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(blob)))
    scan_bytes(bytes(blob[:cut]), "fuzz.gguf", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_after_magic(payload: bytes) -> None:
    scan_bytes(b"GGUF" + payload, "fuzz.gguf", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_templates_never_crash(text: str) -> None:
    audit_template(text)
