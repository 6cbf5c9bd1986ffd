"""NumPy ``.npy`` arrays and ``.npz`` archives.

A ``.npy`` file is ``\\x93NUMPY``, a version, a header length and a Python dict literal
(``descr``, ``fortran_order``, ``shape``) that ``numpy.lib.format`` reads with
``ast.literal_eval``, then raw array bytes. When the dtype holds objects (``|O``, or a
structured dtype with an object field) the payload is a pickle, which
``np.load(allow_pickle=True)`` unpickles: that is analysed with the pickle machine. Bytes
beyond what the shape and dtype need are ignored by NumPy and are a place to hide a second
payload; they are reported and handed back to the engine.

``numpy.load`` treats any file starting with ``PK\\x03\\x04`` or ``PK\\x05\\x06`` as an
``.npz`` (read with ``zipfile``); its members are handed back to the engine (the archive
checks of `modelward.scanners.zip`, rules MW-ZIP-*, apply).

Rules:
    MW-NPY-001 object-array (LOW): object dtype; np.load(allow_pickle=True) unpickles it.
    MW-NPY-002 size-mismatch (LOW): the payload is shorter or longer than shape and dtype say.
    MW-NPY-003 header-anomaly (LOW): header over NumPy's default limit, or unknown dtype.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.zipread import ZipEntry
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.pickle_analysis.rules import PICKLE_RULES
from modelward.scanners.base import Artifact, Nested, Scanner, ScanOutput
from modelward.scanners.pytorch import pickle_findings
from modelward.scanners.zip import (
    ZIP_RULES,
    archive_findings,
    crc_findings,
    member_nested,
    open_archive,
    readable_members,
)

__all__ = ["NumpyScanner", "parse_npy_header"]

_NPY_REF: Final = "https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html"

OBJECT_ARRAY: Final = Rule(
    RuleId("MW-NPY-001"),
    "object-array",
    Severity.LOW,
    "The array's dtype holds Python objects, so its payload is a pickle that "
    "np.load(allow_pickle=True) unpickles; the pickle was analysed (see MW-PKL findings).",
    "Store numeric arrays without object dtype; never pass allow_pickle=True for untrusted files.",
    (_NPY_REF,),
)
SIZE_MISMATCH: Final = Rule(
    RuleId("MW-NPY-002"),
    "size-mismatch",
    Severity.LOW,
    "The payload is shorter or longer than the shape and dtype declare; NumPy ignores extra "
    "bytes, which can hide a second payload for another loader.",
    "Re-save the array with numpy.save from trusted data.",
    (_NPY_REF,),
)
HEADER_ANOMALY: Final = Rule(
    RuleId("MW-NPY-003"),
    "header-anomaly",
    Severity.LOW,
    "The header is larger than NumPy's default max_header_size (loaders then need "
    "allow_pickle=True or a raised limit), or its dtype is not one modelward recognises.",
    "Re-save the array with numpy.save from trusted data.",
    (_NPY_REF,),
)

NPY_RULES: Final[tuple[Rule, ...]] = (OBJECT_ARRAY, SIZE_MISMATCH, HEADER_ANOMALY)

MAGIC: Final = b"\x93NUMPY"
NUMPY_MAX_HEADER: Final = 10000
_KEYS: Final = frozenset({"descr", "fortran_order", "shape"})
_SIMPLE: Final = re.compile(r"^[<>|=]?([?bBhHiIlLqQpPefdgFDGSaUVmMc])(\d*)(\[[A-Za-z0-9]+\])?$")
_FIXED: Final = {
    "?": 1,
    "b": 1,
    "B": 1,
    "h": 2,
    "H": 2,
    "i": 4,
    "I": 4,
    "l": 8,
    "L": 8,
    "q": 8,
    "Q": 8,
    "p": 8,
    "P": 8,
    "e": 2,
    "f": 4,
    "d": 8,
    "g": 16,
    "F": 8,
    "D": 16,
    "G": 32,
}


def parse_npy_header(data: memoryview, max_bytes: int) -> tuple[dict[str, object], int, int]:
    """Parse a ``.npy`` header as ``numpy.lib.format`` does.

    Returns:
        The header dict, the offset of the array payload, and the header's length.

    Raises:
        FormatError: anything NumPy would refuse.
        ResourceLimitError: header longer than `max_bytes`.
    """
    if len(data) < 10 or bytes(data[:6]) != MAGIC:
        raise FormatError("not a .npy file (bad magic)")
    major, minor = data[6], data[7]
    if (major, minor) == (1, 0):
        (length,) = struct.unpack_from("<H", data, 8)
        start = 10
    elif (major, minor) in ((2, 0), (3, 0)):
        if len(data) < 12:
            raise FormatError("truncated .npy header")
        (length,) = struct.unpack_from("<I", data, 8)
        start = 12
    else:
        raise FormatError(f"unsupported .npy format version {major}.{minor}", offset=6)
    if length > max_bytes:
        raise ResourceLimitError(
            f".npy header of {length} bytes exceeds the limit {max_bytes}", offset=8
        )
    if start + length > len(data):
        raise FormatError("truncated .npy header", offset=start)
    raw = bytes(data[start : start + length])
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (
        ValueError,
        SyntaxError,
        TypeError,
        MemoryError,
        RecursionError,
        UnicodeDecodeError,
    ) as err:
        raise FormatError(f"cannot parse .npy header: {type(err).__name__}", offset=start) from None
    if not isinstance(header, dict) or set(header) != _KEYS:
        raise FormatError(
            "the .npy header is not a dict of exactly descr, fortran_order and shape", offset=start
        )
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise FormatError(f"bad .npy shape {shape!r:.80}", offset=start)
    if not isinstance(header["fortran_order"], bool):
        raise FormatError("bad .npy fortran_order", offset=start)
    return header, start + length, length


def _own_object_check(descr: object, depth: int = 0) -> bool | None:
    """Whether a descr holds objects: True/False, None when not recognised."""
    if depth > 32:
        return None
    if isinstance(descr, str):
        pieces = [p.strip() for p in descr.split(",")] if "," in descr else [descr.strip()]
        verdict: bool | None = False
        for piece in pieces:
            piece = re.sub(r"^\(\s*[\d\s,]*\)\s*", "", piece)
            core = piece.lstrip("<>|=!")
            if core[:1] == "O" or core.lower().startswith("object"):
                return True
            if not _SIMPLE.match(piece):
                verdict = None
        return verdict
    if isinstance(descr, tuple) and len(descr) == 2:
        return _own_object_check(descr[0], depth + 1)
    if isinstance(descr, list):
        verdict = False
        for item in descr:
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                return None
            sub = _own_object_check(item[1], depth + 1)
            if sub:
                return True
            if sub is None:
                verdict = None
        return verdict
    return None


def _numpy_view(descr: object) -> tuple[bool, int] | None:
    """(hasobject, itemsize) as NumPy itself decides, when NumPy is installed."""
    try:
        from numpy.lib.format import descr_to_dtype
    except ImportError:
        return None
    try:
        dtype = descr_to_dtype(descr)  # type: ignore[arg-type]
    except Exception:  # any refusal means np.load refuses the file too
        return None
    return bool(dtype.hasobject), int(dtype.itemsize)


def _itemsize(descr: object) -> int | None:
    if not isinstance(descr, str):
        return None
    match = _SIMPLE.match(descr)
    if not match:
        return None
    code, digits = match.group(1), match.group(2)
    if digits:
        return int(digits) * (4 if code == "U" else 1)
    return _FIXED.get(code)


class NumpyScanner(Scanner):
    """``.npy`` arrays (object payloads analysed as pickles) and ``.npz`` archives."""

    name: ClassVar[str] = "numpy"
    suffixes: ClassVar[frozenset[str]] = frozenset({".npy", ".npz"})
    rules: ClassVar[tuple[Rule, ...]] = NPY_RULES + ZIP_RULES + PICKLE_RULES
    priority: ClassVar[int] = 20
    executes_code: ClassVar[bool] = True

    @override
    def claims(self, artifact: Artifact) -> bool:
        head = artifact.head
        if head.startswith(MAGIC):
            return True
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            return False
        try:
            archive = open_archive(artifact)
        except FormatError:
            return False
        return any(e.zipfile_name.endswith(".npy") for e in archive.entries)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        if artifact.head.startswith(MAGIC):
            yield from self._scan_npy(artifact)
            return
        artifact.format_detail = "npz"
        archive = open_archive(artifact)
        yield from archive_findings(artifact, archive)
        bad: list[ZipEntry] = []
        # numpy.load reads with zipfile, but every reader's view is analysed (fail closed).
        for entry in readable_members(archive):
            expect = "numpy" if entry.zipfile_name.endswith(".npy") else None
            yield member_nested(artifact, archive, entry, expect=expect, crc_sink=bad)
            yield from crc_findings(artifact, bad)

    def _scan_npy(self, artifact: Artifact) -> Iterator[ScanOutput]:
        header, start, length = parse_npy_header(artifact.data, artifact.limits.max_header_bytes)
        if length > NUMPY_MAX_HEADER:
            yield artifact.finding(
                HEADER_ANOMALY,
                f"header of {length} bytes exceeds NumPy's default "
                f"max_header_size ({NUMPY_MAX_HEADER}); only allow_pickle=True loads it",
                offset=8,
            )
        descr = header["descr"]
        own = _own_object_check(descr)
        numpy_says = _numpy_view(descr)
        has_object = bool(own) or (numpy_says is not None and numpy_says[0])
        if own is None and numpy_says is None:
            # Fail closed: an unrecognised dtype may be an object dtype in disguise.
            yield artifact.finding(
                HEADER_ANOMALY,
                "dtype not recognised; analysing the payload "
                "as a pickle in case NumPy reads it as objects",
                offset=start,
                evidence=repr(descr)[:200],
                severity=Severity.MEDIUM,
            )
            has_object = True
        if has_object:
            artifact.format_detail = "npy-object"
            yield artifact.finding(
                OBJECT_ARRAY,
                "object array: np.load(allow_pickle=True) unpickles the payload",
                offset=start,
                evidence=repr(descr)[:200],
            )
            if start >= artifact.size:
                yield artifact.finding(SIZE_MISMATCH, "object array without payload", offset=start)
                return
            findings, _, _, _ = pickle_findings(artifact, start)
            yield from findings
            return
        itemsize = numpy_says[1] if numpy_says is not None else _itemsize(descr)
        if itemsize is None:
            return
        shape = header["shape"]
        assert isinstance(shape, tuple)
        expected = math.prod(shape) * itemsize
        actual = artifact.size - start
        if actual < expected:
            yield artifact.finding(
                SIZE_MISMATCH,
                f"payload has {actual} bytes but shape and dtype "
                f"need {expected}; NumPy refuses to load it",
                offset=start,
            )
        elif actual > expected:
            yield artifact.finding(
                SIZE_MISMATCH,
                f"{actual - expected} bytes follow the array "
                "data; NumPy ignores them, other loaders may not",
                offset=start + expected,
            )
            yield Nested("<after array>", artifact.view(start + expected), offset=start + expected)


SCANNER: Final = NumpyScanner()
