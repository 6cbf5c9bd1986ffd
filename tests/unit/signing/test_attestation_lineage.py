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
from modelward.signing.lineage import LineageKeys, LinkStatus, record_lineage, walk_lineage
from modelward.signing.sign import sign_model
from modelward.signing.verify import ManifestCache, verify_model


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


def _two_signers(model: Path, keys: Any, tmp_path: Path) -> Path:
    """`model` signed upstream with the P-384 key; its derivative signed with P-256."""
    sign_model(model, load_signing_key(keys["p384"].private))
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "w.bin").write_bytes(b"d")
    _derive(model, derived, keys)
    return derived


def test_lineage_source_signed_by_another_key(model: Path, keys: Any, tmp_path: Path) -> None:
    derived = _two_signers(model, keys, tmp_path)
    ours = load_verifier(keys["p256"].public)
    links = walk_lineage(derived, ours)  # one key for the whole chain: the source breaks
    assert links[1].status is LinkStatus.BROKEN and "another key" in links[1].detail
    pinned = LineageKeys({model.name: load_verifier(keys["p384"].public)})
    assert [link.ok for link in walk_lineage(derived, ours, keys=pinned)] == [True, True]
    wrong_pin = LineageKeys({model.name: load_verifier(keys["other"].public)})
    assert not walk_lineage(derived, ours, keys=wrong_pin)[1].ok
    ring = LineageKeys(keyring=(load_verifier(keys["other"].public),
                                load_verifier(keys["p384"].public)))
    links = walk_lineage(derived, ours, keys=ring)
    assert [link.ok for link in links] == [True, True]
    bad_ring = LineageKeys(keyring=(load_verifier(keys["other"].public),))
    links = walk_lineage(derived, ours, keys=bad_ring)
    assert not links[1].ok and "keyring" in links[1].detail


def test_lineage_hashes_each_model_once(model: Path, keys: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import modelward.signing.verify as verify_mod

    sign_model(model, load_signing_key(keys["p256"].private))
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "w.bin").write_bytes(b"d")
    _derive(model, derived, keys)
    calls: list[Path] = []
    real = verify_mod.build_manifest

    def counting(path: Path, *args: Any, **kw: Any) -> Any:
        calls.append(Path(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(verify_mod, "build_manifest", counting)
    cache: ManifestCache = {}
    verifier = load_verifier(keys["p256"].public)
    assert all(link.ok for link in walk_lineage(derived, verifier, cache=cache))
    verify_model(derived, verifier, cache=cache)  # what `verify --lineage` does next
    assert sorted(map(str, calls)) == sorted([str(derived), str(model)])


def test_cli_lineage_keys(model: Path, keys: Any, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from modelward.cli import main

    derived = _two_signers(model, keys, tmp_path)
    base = ["verify", str(derived), "--key", str(keys["p256"].public), "--lineage"]
    assert main(base) == 1
    assert main([*base, "--lineage-key", f"{model.name}={keys['p384'].public}"]) == 0
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(keys["p384"].public, ring / "upstream.pub")
    assert main([*base, "--lineage-keyring", str(ring)]) == 0
    assert main([*base, "--lineage-key", "no-equals-sign"]) == 2
    assert main(["verify", str(derived), "--key", str(keys["p256"].public),
                 "--lineage-keyring", str(ring)]) == 2  # needs --lineage
    capsys.readouterr()
