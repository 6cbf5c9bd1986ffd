"""Hand-built pickle streams for the regression tests.

Malicious samples are assembled opcode by opcode (never by pickling a live object whose
``__reduce__`` could run), so each test shows exactly the bytes a bypass relies on.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence

PROTO4 = b"\x80\x04"
PROTO2 = b"\x80\x02"


def ustr(text: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE for `text`."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def bbytes(data: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES for `data`."""
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def glob(module: str, name: str) -> bytes:
    """GLOBAL opcode (text form, any protocol)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two pushed strings (protocol 4)."""
    return ustr(module) + ustr(name) + b"\x93"


def args(*values: str | bytes) -> bytes:
    """A tuple of string/bytes constants (MARK ... TUPLE)."""
    body = b"".join(ustr(v) if isinstance(v, str) else bbytes(v) for v in values)
    return b"(" + body + b"t"


def call(module: str, name: str, *values: str | bytes, proto4: bool = True) -> bytes:
    """``module.name(*values)`` as a complete pickle (REDUCE)."""
    if proto4:
        return PROTO4 + stack_glob(module, name) + args(*values) + b"R."
    return PROTO2 + glob(module, name) + args(*values) + b"R."


def torch_zip(data_pkl: bytes, *, prefix: str = "archive", pkl_name: str = "data.pkl",
              extra: Sequence[tuple[str, bytes]] = (), compress: int = zipfile.ZIP_STORED) -> bytes:
    """A PyTorch-style zip (what torch.save writes) around a given data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as zf:
        zf.writestr(f"{prefix}/{pkl_name}", data_pkl)
        zf.writestr(f"{prefix}/byteorder", b"little")
        for name, payload in extra:
            zf.writestr(f"{prefix}/{name}", payload)
        zf.writestr(f"{prefix}/version", b"3\n")
        zf.writestr(f"{prefix}/.data/serialization_id", b"1234567890")
    return buf.getvalue()
