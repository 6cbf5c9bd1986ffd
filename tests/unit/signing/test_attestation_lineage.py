"""Signed scan attestations (verify --require-clean) and lineage records (verify --lineage)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from modelward.errors import VerificationError
from modelward.findings import Severity
from modelward.policy import Policy
from modelward.scan import scan_path
from modelward.signing.attestation import attest_scan, verify_scan_attestation
from modelward.signing.keys import load_signing_key, load_verifier
from modelward.signing.lineage import LinkStatus, record_lineage, walk_lineage
from modelward.signing.sign import sign_model
from modelward.signing.verify import verify_model


def _attest(model: Path, keys: Any, policy: Policy | None = None) -> Path:
    key = load_signing_key(keys["p256"].private)
    sign_model(model, key)
    report = scan_path(model, policy=policy or Policy(), hash_files=True)
    return attest_scan(report, model, key)


def test_clean_attestation_verifies(model: Path, keys: Any) -> None:
    out = _attest(model, keys)
    assert out == model / "model.scan.sig"
    verified = verify_model(model, load_verifier(keys["p256"].public))  # sidecar ignored
    att = verify_scan_attestation(model, load_verifier(keys["p256"].public),
                                  accepted_policies={Policy().digest()},
                                  signed_manifest=verified.manifest)
    assert att.clean and att.policy_digest == Policy().digest()


def test_policy_not_accepted(model: Path, keys: Any) -> None:
    _attest(model, keys)
    with pytest.raises(VerificationError, match="not accepted"):
        verify_scan_attestation(model, load_verifier(keys["p256"].public),
                                accepted_policies={Policy(fail_on=Severity.LOW).digest()})


def test_unclean_verdict_rejected(model: Path, keys: Any) -> None:
    strict = Policy(fail_on=Severity.INFO)  # unknown-format INFO findings now count
    _attest(model, keys, strict)
    with pytest.raises(VerificationError, match="not clean"):
        verify_scan_attestation(model, load_verifier(keys["p256"].public),
                                accepted_policies={strict.digest()})


def test_attestation_bound_to_bytes(model: Path, keys: Any) -> None:
    _attest(model, keys)
    (model / "config.json").write_text("{}")
    with pytest.raises(VerificationError, match="other bytes"):
        verify_scan_attestation(model, load_verifier(keys["p256"].public),
                                accepted_policies={Policy().digest()})


def test_attestation_wrong_key_or_missing(model: Path, keys: Any) -> None:
    with pytest.raises(VerificationError, match="no scan attestation"):
        verify_scan_attestation(model, load_verifier(keys["p256"].public))
    _attest(model, keys)
    with pytest.raises(VerificationError):
        verify_scan_attestation(model, load_verifier(keys["other"].public),
                                accepted_policies={Policy().digest()})


def test_attest_refuses_files_changed_since_scan(model: Path, keys: Any) -> None:
    key = load_signing_key(keys["p256"].private)
    report = scan_path(model, hash_files=True)
    (model / "weights.bin").write_bytes(b"swapped after the scan")
    with pytest.raises(Exception, match="changed between the scan"):
        attest_scan(report, model, key)


def _derive(source: Path, target: Path, keys: Any, **kw: Any) -> None:
    key = load_signing_key(keys["p256"].private)
    result = sign_model(target, key)
    record_lineage(target, source, key, result.manifest, **kw)


def test_lineage_chain(model: Path, keys: Any, tmp_path: Path) -> None:
    key = load_signing_key(keys["p256"].private)
    sign_model(model, key)
    onnx = tmp_path / "tiny-onnx"
    onnx.mkdir()
    (onnx / "model.onnx").write_bytes(b"converted")
    _derive(model, onnx, keys, converter="torch.onnx 2.13", settings={"opset": "17"})
    quant = tmp_path / "tiny-int8"
    quant.mkdir()
    (quant / "model.onnx").write_bytes(b"quantized")
    report = tmp_path / "diff.json"
    report.write_text("{}")
    _derive(onnx, quant, keys, converter="ort-quant", diff_report=report)
    links = walk_lineage(quant, load_verifier(keys["p256"].public))
    assert [link.status for link in links] == [LinkStatus.VERIFIED, LinkStatus.VERIFIED,
                                               LinkStatus.ROOT]
    assert links[1].converter == "torch.onnx 2.13 opset=17"
    assert links[0].source == onnx and links[1].source == model


def test_lineage_detects_changed_and_missing_source(model: Path, keys: Any, tmp_path: Path) -> None:
    sign_model(model, load_signing_key(keys["p256"].private))
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "w.bin").write_bytes(b"d")
    _derive(model, derived, keys)
    (model / "weights.bin").write_bytes(b"poisoned")
    links = walk_lineage(derived, load_verifier(keys["p256"].public))
    assert links[0].status is LinkStatus.SOURCE_CHANGED and "weights.bin" in links[0].detail
    moved = tmp_path / "archive"
    moved.mkdir()
    shutil.move(str(model), moved / model.name)
    links = walk_lineage(derived, load_verifier(keys["p256"].public))
    assert links[0].status is LinkStatus.SOURCE_MISSING
    links = walk_lineage(derived, load_verifier(keys["p256"].public), search=[moved])
    assert links[0].status is LinkStatus.SOURCE_CHANGED  # found again, still poisoned


def test_lineage_unsigned_source_is_broken(model: Path, keys: Any, tmp_path: Path) -> None:
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "w.bin").write_bytes(b"d")
    _derive(model, derived, keys)  # source never signed
    links = walk_lineage(derived, load_verifier(keys["p256"].public))
    assert links[0].status is LinkStatus.VERIFIED
    assert links[1].status is LinkStatus.BROKEN and not links[1].ok
