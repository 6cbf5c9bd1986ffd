"""Parser differentials between modelward's pickle machine and the real unpicklers.

Red-team round 2 (2026-11): every sample here was confirmed to run its payload under
CPython's ``pickle.load`` (the C unpickler, Modules/_pickle.c) while the scanner reported
nothing above INFO, before the fix named in each docstring. They follow the class of bugs
behind picklescan's and fickling's parser advisories (a scanner that stops or skips where
the loader goes on; https://github.com/mmaitre314/picklescan/security,
https://github.com/trailofbits/fickling/security), found by reading ``_pickle.c``.

Payloads only ever touch the `marker_command` file.
"""

from __future__ import annotations

import struct

import pytest
from _regression_asserts import assert_flagged

from modelward import scan_bytes
from modelward.findings import Severity


def scan(data: bytes, name: str = "model.pkl"):  # type: ignore[no-untyped-def]
    return scan_bytes(data, name, raise_internal=True)


def proto0_payload(marker_command: str) -> bytes:
    """``os.system(cmd)`` in protocol 0 text opcodes, ending in STOP."""
    return b"cos\nsystem\n(S'" + marker_command.encode() + b"'\ntR."


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"I010\n0", id="int-octal-strtol"),
        pytest.param(b"I5\x00junk\n0", id="int-nul-terminated"),
        pytest.param(b"I\x00\n0", id="int-empty-before-nul"),
        pytest.param(b"L5\x00junk\n0", id="long-nul-terminated"),
        pytest.param(b"F1.0\x00junk\n0", id="float-nul-terminated"),
        pytest.param(b"I1\np0\x00x\n0g0\x00y\n0", id="put-get-nul-terminated"),
    ],
)
def test_c_unpickler_number_parsing(prefix: bytes, marker_command: str) -> None:
    """The C unpickler parses INT with ``strtol(s, &end, 0)`` (``010`` is octal 8, a NUL ends
    the number) and LONG/GET/PUT/FLOAT with C-string parsers that stop at a NUL; Python's
    ``int()`` rejects both, so the machine stopped (LOW malformed finding, and the sniff did
    not even claim the file) while ``pickle.load`` went on to the payload.

    Fix: `values.c_strtol_int` / `values.c_long` accept what either unpickler accepts.
    Source: Modules/_pickle.c ``load_int``, ``load_long``, ``load_float``, ``load_get``.
    """
    assert_flagged(scan(prefix + proto0_payload(marker_command)), "system")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"S'" + b"A" * ((1 << 20) - 3) + b"\\x41'\n", id="string-hex-escape-cut"),
        pytest.param(b"S'" + b"A" * ((1 << 20) - 1) + b"\\\\'\n", id="string-backslash-cut"),
        pytest.param(b"V" + b"A" * ((1 << 20) - 3) + b"\\u0041\n", id="unicode-escape-cut"),
        pytest.param(b"S'" + b"A" * 100_000 + b"'\n", id="first-line-longer-than-head"),
    ],
)
def test_long_text_argument_before_payload(line: bytes, marker_command: str) -> None:
    """An over-long STRING/UNICODE line is kept as a 1 MiB prefix; when the cut fell inside
    an escape (``\\x4|1``) the prefix failed to decode and the machine stopped there. A first
    line longer than the 64 KiB head also made the sniff give up (file not claimed).

    Fix: decode the prefix up to the cut escape; the sniff re-reads the whole stream when
    its head trial is cut off before deciding.
    """
    result = scan(line + b"0" + proto0_payload(marker_command))
    assert_flagged(result, "system")


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(b"\x88", id="NEWTRUE"),
        pytest.param(b"\x89", id="NEWFALSE"),
        pytest.param(b"\x8c\x01a", id="SHORT_BINUNICODE"),
        pytest.param(b"\x8a\x01\x01", id="LONG1"),
        pytest.param(b"\x8f", id="EMPTY_SET"),
        pytest.param(b"\x96" + struct.pack("<Q", 1) + b"a", id="BYTEARRAY8"),
    ],
)
def test_protocol2_opcode_without_proto_header(first: bytes, marker_command: str) -> None:
    """The unpicklers run protocol 2+ opcodes in any stream, PROTO or not; the content sniff
    only knew protocol 0/1 start opcodes, so a pickle starting with NEWTRUE was not claimed
    by any scanner ("content matches no known format", INFO).

    Fix: `sniff.START_OPCODES` includes every value-pushing opcode.
    """
    assert_flagged(scan(first + b"0" + proto0_payload(marker_command)), "system")


def test_frame_without_proto_header(marker_command: str) -> None:
    """FRAME as the very first opcode (no PROTO): ``load_frame`` never checks the protocol."""
    body = proto0_payload(marker_command)
    assert_flagged(scan(b"\x95" + struct.pack("<Q", len(body)) + body), "system")


@pytest.mark.parametrize("breaker", [b"\xff", b"0000."], ids=["invalid-opcode", "underflow"])
def test_protocol0_payload_then_deliberate_error(breaker: bytes, marker_command: str) -> None:
    """A protocol-0 payload followed by a deliberate error: the loader runs ``os.system``
    and then raises. The sniff rejected protocol-0 streams that break the VM's rules, so the
    file was not analysed at all (the protocol-2 variant was already caught).

    Fix: the sniff claims a broken stream that called something off the allowlist first.
    """
    data = proto0_payload(marker_command)[:-1] + breaker
    assert_flagged(scan(data), "system")


def test_benign_text_is_still_not_a_pickle() -> None:
    """The widened sniff must not claim ordinary text."""
    for text in (b"ID,name\n1,foo\n", b"cat\nfoo\nbar\n", b"Note: (see below)\n" * 50,
                 b"S'quoted' text\n and more\n"):
        result = scan(text, "notes.txt")
        assert all(f.severity < Severity.MEDIUM for f in result.findings), result.findings


# --------------------------------------------------------------------------- joblib


def _joblib_uint8(protocol: int) -> bytes:
    """``joblib.dump`` of a 3-byte uint8 array (benign; the bytes the variants start from)."""
    import io

    import joblib
    import numpy as np

    buf = io.BytesIO()
    joblib.dump(np.arange(3, dtype=np.uint8), buf, protocol=protocol)
    return buf.getvalue()


def test_joblib_wrapper_made_by_copyreg_newobj(marker_command: str) -> None:
    """joblib tests ``isinstance(obj, NumpyArrayWrapper)`` after BUILD, so a wrapper made by
    ``copyreg.__newobj__(NumpyArrayWrapper)`` still has its array bytes skipped by
    joblib.load. The machine only knew NEWOBJ and ``_reconstructor``: it read the array
    bytes (``\\xff``...) as opcodes, stopped (LOW) and never saw the payload after them.

    Fix: `joblib.wrapper_name` accepts every copyreg constructor.
    Source: joblib/numpy_pickle.py ``NumpyUnpickler.load_build``.
    """
    data = _joblib_uint8(2)
    newobj = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\nq\x00)\x81"
    base = data[: data.rindex(b"\x00\x01\x02.")].replace(
        newobj, b"ccopyreg\n__newobj__\n(cjoblib.numpy_pickle\nNumpyArrayWrapper\ntRq\x00")
    base = base[: base.rindex(b"ub") + 2]
    tail = b"\x05" + b"\xff" * 5 + b"\xff\xff\xff" + b"0" + proto0_payload(marker_command)
    assert_flagged(scan(base + tail, "model.joblib"), "system")


def test_joblib_frame_longer_than_data(marker_command: str) -> None:
    """A FRAME that claims more bytes than the file has: the C unpickler fails at once, but
    ``pickle._Unpickler`` (joblib's base class) runs the opcodes there are. The machine
    stopped at the FRAME with a LOW finding.
    """
    body = proto0_payload(marker_command)
    data = b"\x80\x04\x95" + struct.pack("<Q", len(body) + 1000) + body
    assert_flagged(scan(data, "model.joblib"), "system")


def test_joblib_array_read_from_outside_the_frame(marker_command: str) -> None:
    """joblib reads an inline array from the file, not from the current frame: when the
    wrapper's BUILD is not the last opcode of its frame, the array sits after the frame and
    the opcodes after BUILD come from the frame. The machine skipped the array bytes from
    inside the frame, over the payload. (joblib.dump always ends the frame at the BUILD.)

    Fix: the machine keeps joblib's file cursor apart from the frame cursor.
    """
    data = _joblib_uint8(4)
    (size,) = struct.unpack_from("<Q", data, 3)
    frame = data[11 : 11 + size]
    assert frame.endswith(b"ub")
    inner = frame + b"0" + proto0_payload(marker_command)
    array = b"\x10" + b"\xff" * 16 + b"\x00\x01\x02"
    crafted = b"\x80\x04\x95" + struct.pack("<Q", len(inner)) + inner + array
    assert_flagged(scan(crafted, "model.joblib"), "system")


def test_joblib_array_bytes_are_opcodes_for_pickle_load(marker_command: str) -> None:
    """A joblib/pickle polyglot: ``joblib.load`` returns a clean uint8 array whose bytes are
    ``os.system(...)`` opcodes, which ``pickle.load`` (to which the wrapper is an ordinary
    object) runs. The machine followed joblib's reading only and reported nothing.

    Fix: joblib streams are also read the way ``pickle.load`` reads them.
    """
    data = _joblib_uint8(2)
    code = proto0_payload(marker_command)[:-1]
    code = b"0" + code
    base = data[: data.rindex(b"\x05\xff\xff\xff\xff\xff\x00\x01\x02.")]
    base = base.replace(b"K\x03\x85", b"K" + bytes([len(code)]) + b"\x85")
    base = base.replace(b"K\x10ub", b"Nub")  # no alignment padding byte
    assert_flagged(scan(base + code + b".", "model.joblib"), "system")


@pytest.mark.parametrize("typestr", ["uint8", "float16", "int64", "f8,i4"])
def test_joblib_dtype_name_not_a_type_string(typestr: str, marker_command: str) -> None:
    """``numpy.dtype('uint8')`` is valid, but the size guess read the first letter (``u``:
    0 bytes; ``float16``: 4 bytes), so the skip landed elsewhere than joblib's. Fix: only
    the type strings numpy's own pickles use are sized; anything else fails closed (HIGH).
    """
    data = _joblib_uint8(2)
    base = data[: data.rindex(b"\x05\xff\xff\xff\xff\xff\x00\x01\x02.")]
    raw = typestr.encode()
    base = base.replace(b"X\x02\x00\x00\x00u1", b"X" + struct.pack("<I", len(raw)) + raw)
    crafted = base + b"\x05" + b"\xff" * 5 + b"\x00" * 8 + b"0" + proto0_payload(marker_command)
    result = scan(crafted, "model.joblib")
    assert any(f.severity >= Severity.HIGH for f in result.findings), result.findings


def test_joblib_wrapper_by_class_reassignment(marker_command: str) -> None:
    """BUILD with slot state ``{'__class__': NumpyArrayWrapper}`` turns an allowlisted
    ``argparse.Namespace`` into a wrapper; joblib's ``isinstance`` check after BUILD then
    reads (skips) its array bytes. The machine did not see a wrapper and parsed the array
    bytes as opcodes (stopping at ``\\xff``), missing the payload after them.
    """
    data = _joblib_uint8(2)
    newobj = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\nq\x00)\x81"
    base = data[: data.rindex(b"ub\x05")].replace(newobj, b"cargparse\nNamespace\nq\x00)\x81")
    slots = b"}X\x09\x00\x00\x00__class__cjoblib.numpy_pickle\nNumpyArrayWrapper\ns\x86"
    crafted = base + b"u" + slots + b"b" + b"\x05" + b"\xff" * 8 + b"0" + \
        proto0_payload(marker_command)
    assert_flagged(scan(crafted, "model.joblib"), "system")
