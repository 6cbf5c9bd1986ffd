"""Zip reader differentials left open by an earlier red team: ZIP64 records, entry counts,
overlapping members, TorchScript side folders.

Every crafted file is checked against the readers that matter, never by loading it:
PyTorch's own reader (``torch._C.PyTorchFileReader(path).get_record(name)``, miniz,
returns bytes and unpickles nothing) and ``zipfile`` (``numpy.load`` for ``.npz``, generic
loaders). The scanner must analyse the bytes each reader returns.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from _regression_asserts import assert_flagged, describe
from _regression_pickles import call

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.policy import Limits, Policy

GOOD = b"\x80\x02}q\x00."
PLACEHOLDER = b"\x00" * 512

torch = pytest.importorskip("torch")


def payload(marker_command: str) -> bytes:
    return call("os", "system", marker_command)


def decoy(length: int) -> bytes:
    """A harmless pickle padded to `length` bytes (same size as the payload)."""
    return GOOD + b"\x00" * (length - len(GOOD))


def local(name: bytes, data: bytes) -> bytes:
    return (
        struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
            len(data), len(name), 0,
        )
        + name
        + data
    )


def central(name: bytes, data: bytes, offset: int) -> bytes:
    return (
        struct.pack(
            "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0x21, zlib.crc32(data),
            len(data), len(data), len(name), 0, 0, 0, 0, 0, offset,
        )
        + name
    )


def members_and_directory(
    out: bytearray, members: Sequence[tuple[bytes, bytes]]
) -> tuple[int, int, int]:
    """Append local headers, then their central directory; (count, cd size, cd offset)."""
    offsets = []
    for name, data in members:
        offsets.append(len(out))
        out += local(name, data)
    start = len(out)
    for (name, data), offset in zip(members, offsets, strict=True):
        out += central(name, data, offset)
    return len(members), len(out) - start, start


def zip64_record(count: int, size: int, offset: int) -> bytes:
    return struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset
    )


def zip64_tail(record_at: int) -> bytes:
    """Locator pointing at `record_at`, then a classic end record deferring to ZIP64."""
    return struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1) + struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
    )


def torch_members(pkl: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"archive/data.pkl", pkl), (b"archive/version", b"3\n")]


def readers(tmp_path: Path, data: bytes, name: str = "archive/data.pkl") -> tuple[object, object]:
    """(what PyTorch's reader returns, what zipfile returns) for one record; errors as text."""
    path = tmp_path / "probe.pt"
    path.write_bytes(data)
    try:
        by_torch: object = bytes(
            torch._C.PyTorchFileReader(str(path)).get_record(name.split("/", 1)[1])
        )
    except RuntimeError as err:
        by_torch = f"refused: {str(err).splitlines()[0]}"
    try:
        by_zipfile: object = zipfile.ZipFile(io.BytesIO(data)).read(name)
    except (zipfile.BadZipFile, KeyError) as err:
        by_zipfile = f"refused: {err}"
    return by_torch, by_zipfile


def displaced_locator(miniz_pkl: bytes, zipfile_pkl: bytes) -> bytes:
    """Two directories with a ZIP64 record each; the locator points at the first one."""
    out = bytearray()
    first = members_and_directory(out, torch_members(miniz_pkl))
    pointed = len(out)
    out += zip64_record(*first)
    second = members_and_directory(out, torch_members(zipfile_pkl))
    out += zip64_record(*second)
    out += zip64_tail(pointed)
    return bytes(out)


@pytest.mark.parametrize("payload_for", ["miniz", "zipfile"])
def test_zip64_locator_pointing_away_from_adjacent_record(
    tmp_path: Path, marker_command: str, payload_for: str
) -> None:
    """The ZIP64 locator names a ZIP64 record other than the one right before it: miniz
    (torch.load) follows the pointer, zipfile (numpy .npz, generic loaders) reads the
    adjacent record, so each reads its own central directory. Earlier versions followed
    miniz only and flagged the rest MEDIUM; both directories must be analysed. Source:
    red-team gap list (ZIP64 locator confusion, cf. APPNOTE 4.3.15 and zip parser
    differential research).
    """
    evil, good = payload(marker_command), decoy(len(payload(marker_command)))
    if payload_for == "miniz":
        data = displaced_locator(evil, good)
        assert readers(tmp_path, data) == (evil, good)
    else:
        data = displaced_locator(good, evil)
        assert readers(tmp_path, data) == (good, evil)
    for name in ("model.pt", "archive.zip"):
        result = scan_bytes(data, name, raise_internal=True)
        assert_flagged(result, "system")
        assert any(dict(f.details).get("kind") == "zip64-locator" for f in result.findings), (
            describe(result)
        )


def lying_count(declared: int, *, zip64: bool) -> bytes:
    """Three records (version, data.pkl decoy, data.pkl payload); the count says `declared`."""
    out = bytearray()
    _, size, start = members_and_directory(
        out,
        [
            (b"archive/version", b"3\n"),
            (b"archive/data.pkl", decoy(len(PLACEHOLDER))),
            (b"archive/data.pkl", PLACEHOLDER),  # replaced below by the caller
        ],
    )
    if zip64:
        record = len(out)
        out += zip64_record(declared, size, start)
        out += zip64_tail(record)
    else:
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, declared, declared, size, start, 0)
    return bytes(out)


@pytest.mark.parametrize("zip64", [True, False], ids=["zip64", "classic"])
def test_entry_count_hides_records_from_miniz(
    tmp_path: Path, marker_command: str, zip64: bool
) -> None:
    """The end record (ZIP64 or classic) declares fewer members than the directory holds:
    miniz reads the declared count and loads the decoy data.pkl, zipfile reads records
    until the directory size is used up and returns the last duplicate (the payload).
    The scanner read the declared count like miniz and never saw the payload.
    """
    evil = payload(marker_command).ljust(len(PLACEHOLDER), b"\x00")
    data = _fix_crc(lying_count(2, zip64=zip64).replace(PLACEHOLDER, evil, 1), evil)
    by_torch, by_zipfile = readers(tmp_path, data)
    assert by_torch == decoy(len(PLACEHOLDER))
    assert by_zipfile == evil
    result = scan_bytes(data, "model.pt", raise_internal=True)
    assert_flagged(result, "system")
    assert any(dict(f.details).get("kind") == "entry-count" for f in result.findings)


def test_entry_count_above_records_refused_by_torch_read_by_zipfile(
    tmp_path: Path, marker_command: str
) -> None:
    """A count larger than the records present: PyTorch refuses the archive, zipfile
    ignores the count and loads the payload. Earlier versions stopped with a malformed
    file (status FAILED) without analysing what zipfile returns.
    """
    evil = payload(marker_command).ljust(len(PLACEHOLDER), b"\x00")
    data = _fix_crc(lying_count(7, zip64=True).replace(PLACEHOLDER, evil, 1), evil)
    by_torch, by_zipfile = readers(tmp_path, data)
    assert isinstance(by_torch, str) and by_torch.startswith("refused")
    assert by_zipfile == evil
    assert_flagged(scan_bytes(data, "archive.zip", raise_internal=True), "system")


def _fix_crc(data: bytes, member: bytes) -> bytes:
    """Patch the CRC of the placeholder member (local and central) to match `member`."""
    wrong = struct.pack("<I", zlib.crc32(PLACEHOLDER))
    return data.replace(wrong, struct.pack("<I", zlib.crc32(member)))


def test_overlapping_member_smuggles_data_pkl_inside_storage(
    tmp_path: Path, marker_command: str
) -> None:
    """Overlapping members: the directory's data.pkl points at a local header hidden inside
    the bytes of the storage record archive/data/0 (which scanners skip as tensor data),
    while a decoy data.pkl sits where a sequential walk of local headers finds it. PyTorch
    and zipfile both return the hidden payload; the scanner must read the same range.
    """
    evil = payload(marker_command)
    hidden = local(b"archive/data.pkl", evil)
    storage = b"\x00" * 16 + hidden + b"\x00" * 16
    out = bytearray()
    decoy_at = len(out)
    out += local(b"archive/data.pkl", decoy(len(evil)))
    storage_at = len(out)
    out += local(b"archive/data/0", storage)
    hidden_at = storage_at + 30 + len(b"archive/data/0") + 16
    assert out[hidden_at : hidden_at + 4] == b"PK\x03\x04"
    version_at = len(out)
    out += local(b"archive/version", b"3\n")
    start = len(out)
    out += central(b"archive/data.pkl", evil, hidden_at)
    out += central(b"archive/data/0", storage, storage_at)
    out += central(b"archive/version", b"3\n", version_at)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 3, 3, len(out) - start, start, 0)
    data = bytes(out)
    assert decoy_at == 0
    assert readers(tmp_path, data) == (evil, evil)
    result = scan_bytes(data, "model.pt", raise_internal=True)
    assert_flagged(result, "system")
    assert any(dict(f.details).get("kind") == "overlap" for f in result.findings)


def quoted_overlap_bomb(files: int, kernel_bytes: int) -> tuple[bytes, int]:
    """David Fifield's "better zip bomb" (quoted overlap): each member's DEFLATE data is a
    stored block quoting the next member's local header, then falls through into it, so
    every member ends in one shared compressed kernel. Returns the zip and the total
    number of bytes all members inflate to.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = comp.compress(b"a" * kernel_bytes) + comp.flush()
    names = [f"bomb/{i:03d}".encode() for i in range(files)]
    out_sizes: list[int] = [0] * files
    crcs: list[int] = [0] * files
    comp_sizes: list[int] = [0] * files
    headers: list[bytes] = [b""] * files
    tail_crc_input = b"a" * kernel_bytes
    # Build from the last member backwards: each member's output is the next member's
    # local header followed by the next member's output.
    suffix = tail_crc_input
    for i in reversed(range(files)):
        if i == files - 1:
            comp_sizes[i], out_sizes[i] = len(kernel), kernel_bytes
            crcs[i] = zlib.crc32(suffix)
        else:
            quoted = headers[i + 1]
            suffix = quoted + suffix
            comp_sizes[i] = 5 + len(quoted) + comp_sizes[i + 1]
            out_sizes[i] = len(quoted) + out_sizes[i + 1]
            crcs[i] = zlib.crc32(suffix)
        headers[i] = struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crcs[i], comp_sizes[i],
            out_sizes[i], len(names[i]), 0,
        ) + names[i]
    out = bytearray()
    offsets = []
    for i in range(files):
        offsets.append(len(out))
        out += headers[i]
        if i < files - 1:
            quoted = headers[i + 1]
            out += struct.pack("<BHH", 0, len(quoted), len(quoted) ^ 0xFFFF)
    out += kernel
    version_at = len(out)
    out += local(b"bomb/version", b"3\n")  # so that PyTorch's reader opens the archive
    start = len(out)
    for i in range(files):
        out += struct.pack(
            "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 3, 20, 0, 8, 0, 0x21, crcs[i],
            comp_sizes[i], out_sizes[i], len(names[i]), 0, 0, 0, 0, 0, offsets[i],
        ) + names[i]
    out += central(b"bomb/version", b"3\n", version_at)
    count = files + 1
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(out) - start, start, 0)
    return bytes(out), sum(out_sizes)


def test_overlapping_zip_bomb_stays_within_the_shared_budget(tmp_path: Path) -> None:
    """Fifield's overlapping zip bomb: no member is above the ratio limit on its own, but
    every member re-inflates the same kernel, so the archive as a whole expands far beyond
    the per-file budget. Each member is read as the readers return it (both readers
    agree here: checked for the first and last member), and the work is bounded by the
    shared decompression budget: the scan ends quickly, reports the bomb and the overlap.
    """
    data, total = quoted_overlap_bomb(files=60, kernel_bytes=1 << 20)
    ref = zipfile.ZipFile(io.BytesIO(data))
    first = ref.read("bomb/000")
    assert sum(len(ref.read(n)) for n in ref.namelist()) == total + 2
    path = tmp_path / "bomb.zip"
    path.write_bytes(data)
    reader = torch._C.PyTorchFileReader(str(path))
    assert bytes(reader.get_record("000")) == first
    assert bytes(reader.get_record("059")) == b"a" * (1 << 20)
    limits = Limits(max_total_bytes=8 << 20)
    assert total > 4 * limits.max_total_bytes
    started = time.monotonic()
    result = scan_bytes(data, "bomb.zip", policy=Policy(limits=limits), raise_internal=True)
    assert time.monotonic() - started < 20
    ids = {f.rule.id for f in result.findings}
    assert "MW-ZIP-003" in ids, describe(result)
    kinds = {dict(f.details).get("kind") for f in result.findings}
    assert "overlap" in kinds, describe(result)
    assert result.verdict is not None and result.verdict >= Severity.MEDIUM


@pytest.fixture(scope="module")
def torchscript_bytes() -> bytes:
    """A small TorchScript archive written by torch.jit.save (benign, our own)."""

    class AddOne(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(AddOne()), buf, _extra_files={"meta.txt": b"hello"})
    return buf.getvalue()


def _with_members(data: bytes, members: Sequence[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as z:
        for name, content in members:
            z.writestr(name, content)
    return buf.getvalue()


def test_torchscript_extra_file_holding_a_pickle(
    tmp_path: Path, torchscript_bytes: bytes, marker_command: str
) -> None:
    """torch.jit.load(_extra_files={...}) returns extra/<name> as raw bytes and never
    interprets it (checked: a pickle importing a missing module there loads fine); the
    caller may unpickle it. The member is analysed and reported as an extra file.
    """
    folder = zipfile.ZipFile(io.BytesIO(torchscript_bytes)).namelist()[0].split("/")[0]
    evil = payload(marker_command)
    data = _with_members(torchscript_bytes, [(f"{folder}/extra/config.pkl", evil)])
    assert readers(tmp_path, data, f"{folder}/extra/config.pkl") == (evil, evil)
    result = scan_bytes(data, "model.pt", raise_internal=True)
    assert_flagged(result, "system")
    extra = [f for f in result.findings if f.rule.id == "MW-PT-011"]
    assert {f.location.members[-1] for f in extra} == {
        f"{folder}/extra/meta.txt",
        f"{folder}/extra/config.pkl",
    }, describe(result)
    assert all(f.severity == Severity.INFO for f in extra)


def test_torchscript_data_folder_member_is_unexpected(
    tmp_path: Path, torchscript_bytes: bytes, marker_command: str
) -> None:
    """torch.jit.load reads nothing under .data/ but its own records (checked: an
    unreadable pickle at .data/x.pkl loads fine), so anything else there is an unexpected
    member, analysed anyway; it used to pass silently as a TorchScript folder.
    """
    folder = zipfile.ZipFile(io.BytesIO(torchscript_bytes)).namelist()[0].split("/")[0]
    evil = payload(marker_command)
    data = _with_members(torchscript_bytes, [(f"{folder}/.data/x.pkl", evil)])
    assert readers(tmp_path, data, f"{folder}/.data/x.pkl") == (evil, evil)
    result = scan_bytes(data, "model.pt", raise_internal=True)
    assert_flagged(result, "system")
    unexpected = [f for f in result.findings if f.rule.id == "MW-PT-003"]
    assert [f.location.members[-1] for f in unexpected] == [f"{folder}/.data/x.pkl"], describe(
        result
    )
