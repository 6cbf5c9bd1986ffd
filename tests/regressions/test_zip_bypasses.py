"""Archive quirks that made scanners skip a pickle the framework still loads.

PyTorch reads its zip with its own reader (miniz), which ignores CRCs and most flag
bits, finds ``<prefix>/data.pkl`` whatever the other members are called, and accepts
compressed members; Python's ``zipfile`` refuses several of these. Every quirk here was
reported against picklescan or modelscan; modelward must still find the payload.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib

import pytest
from _regression_asserts import assert_flagged, describe
from _regression_pickles import PROTO2, args, call, glob, torch_zip

from modelward import scan_bytes
from modelward.findings import Severity


def payload(marker_command: str) -> bytes:
    return call("os", "system", marker_command)


def _patch_all(data: bytes, signature: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite the field at `offset` in every local and central header of a zip."""
    out = bytearray(data)
    start = 0
    while (pos := out.find(signature, start)) != -1:
        out[pos + offset : pos + offset + len(value)] = value
        start = pos + 4
    return bytes(out)


def test_torch_zip_data_pkl(marker_command: str) -> None:
    """Baseline: the payload as ``archive/data.pkl`` of a torch.save-style zip.

    https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py
    """
    result = scan_bytes(torch_zip(payload(marker_command)), "model.pt", raise_internal=True)
    assert_flagged(result, "system")


def test_zip_member_with_bad_crc(marker_command: str) -> None:
    """CRC fields that do not match: Python's zipfile raises BadZipFile and picklescan gave
    up, while torch.load does not check CRCs (JFrog, CVE-2025-10156).

    https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    """
    data = torch_zip(payload(marker_command))
    data = _patch_all(data, b"PK\x03\x04", 14, b"\xde\xad\xbe\xef")
    data = _patch_all(data, b"PK\x01\x02", 16, b"\xde\xad\xbe\xef")
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def test_zip_encryption_flag_bit_is_never_clean(marker_command: str) -> None:
    """General-purpose flag bit 0 (encrypted) set on plain members: zipfile refuses to read
    them and picklescan reported nothing. torch's miniz reader refuses them too, so the
    payload cannot run, but a member nobody could read must not pass as clean.

    https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    """
    data = torch_zip(payload(marker_command))
    data = _patch_all(data, b"PK\x03\x04", 6, struct.pack("<H", 1))
    data = _patch_all(data, b"PK\x01\x02", 8, struct.pack("<H", 1))
    result = scan_bytes(data, "model.pt", raise_internal=True)
    assert result.verdict is not None and result.verdict >= Severity.MEDIUM, describe(result)


def test_pickle_member_without_pkl_extension(marker_command: str) -> None:
    """A pickle stored under a name without ``.pkl`` (``weights.bin``): scanners that pick
    members by extension skip it (picklescan, modelscan).

    https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    """
    clean = PROTO2 + b"}."
    data = torch_zip(clean, extra=[("weights.bin", payload(marker_command))])
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def test_data_pkl_with_unusual_prefix(marker_command: str) -> None:
    """torch finds ``*/data.pkl`` under any single top folder name, including names that
    look like data (``.data`` / ``__MACOSX``-style prefixes).

    https://github.com/pytorch/pytorch/blob/main/torch/serialization.py
    """
    data = torch_zip(payload(marker_command), prefix=".hidden")
    assert_flagged(scan_bytes(data, "model.pth", raise_internal=True), "system")


def test_duplicate_member_names(marker_command: str) -> None:
    """Two members both called ``archive/data.pkl``: zipfile's name lookup returns the last,
    other readers the first; the clean one hides the malicious one.

    https://github.com/mmaitre314/picklescan/security/advisories
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload(marker_command))
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("archive/data.pkl", PROTO2 + b"}.")
        zf.writestr("archive/version", b"3\n")
    assert_flagged(scan_bytes(buf.getvalue(), "model.pt", raise_internal=True), "system")


def test_deflated_torch_zip(marker_command: str) -> None:
    """torch.save writes stored members, but its reader also inflates deflated ones.

    https://github.com/pytorch/pytorch/blob/main/caffe2/serialize/inline_container.cc
    """
    data = torch_zip(payload(marker_command), compress=zipfile.ZIP_DEFLATED)
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def test_legacy_torch_sequential_format(marker_command: str) -> None:
    """Legacy (pre-1.6) torch.save: magic number, protocol, sys_info pickles, then the
    object pickle; the payload sits in the later pickles (fickling, picklescan).

    https://github.com/pytorch/pytorch/blob/main/torch/serialization.py (_legacy_load)
    """
    magic = PROTO2 + b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."  # LONG1 magic
    protocol = PROTO2 + b"M\xe9\x03."  # 1001
    sys_info = PROTO2 + b"}."
    data = magic + protocol + sys_info + payload(marker_command) + PROTO2 + b"]."
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def test_zip_inside_zip(marker_command: str) -> None:
    """A torch zip stored inside another zip: scanners that do not recurse miss it.

    https://github.com/protectai/modelscan
    """
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("checkpoints/model.pt", torch_zip(payload(marker_command)))
    assert_flagged(scan_bytes(outer.getvalue(), "bundle.zip", raise_internal=True), "system")


def test_tar_with_pickle(marker_command: str) -> None:
    """A pickle inside a tar (torch's oldest format is a tar of pickles).

    https://github.com/pytorch/pytorch/blob/main/torch/serialization.py (_load tar)
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        body = payload(marker_command)
        info = tarfile.TarInfo("pickle")
        info.size = len(body)
        tf.addfile(info, io.BytesIO(body))
    assert_flagged(scan_bytes(buf.getvalue(), "model.tar", raise_internal=True), "system")


def test_gzip_compressed_pickle(marker_command: str) -> None:
    """``model.pkl.gz``: a compressed pickle that scanners without decompression skip.

    https://github.com/protectai/modelscan
    """
    data = gzip.compress(payload(marker_command))
    assert_flagged(scan_bytes(data, "model.pkl.gz", raise_internal=True), "system")


def test_joblib_zlib_compressed_pickle(marker_command: str) -> None:
    """joblib's ``compress=`` output is a raw zlib stream of the pickle: scanners that only
    sniff pickle opcodes see noise.

    https://joblib.readthedocs.io/en/latest/generated/joblib.dump.html
    """
    data = zlib.compress(payload(marker_command))
    assert_flagged(scan_bytes(data, "model.joblib", raise_internal=True), "system")


def test_npy_object_array_pickle(marker_command: str) -> None:
    """An ``.npy`` with an object dtype stores a pickle after its header; numpy.load with
    allow_pickle=True runs it (picklescan's numpy path, fickling).

    https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
    """
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header = header + b" " * (-(10 + len(header) + 1) % 64) + b"\n"  # 64-byte alignment
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    data = npy + PROTO2 + glob("posix", "system") + args(marker_command) + b"R."
    assert_flagged(scan_bytes(data, "array.npy", raise_internal=True), "system")
