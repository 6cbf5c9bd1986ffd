"""Hand-built zip archives for parser-faithfulness tests (struct, no zipfile).

Every field that readers may treat differently can be set per member: flags, CRC, local
header name and method, data descriptors, ZIP64 extra fields, unix modes, prepended and
appended bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


@dataclass
class Member:
    name: bytes
    data: bytes
    method: int = 0
    flags: int = 0
    crc: int | None = None
    local_name: bytes | None = None
    local_method: int | None = None
    external_attr: int = 0
    create_system: int = 0
    descriptor: bool = False
    zip64: bool = False


def _payload(member: Member) -> bytes:
    if member.method == 8:
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        return comp.compress(member.data) + comp.flush()
    return member.data


def build_zip(
    members: list[Member],
    *,
    prepend: bytes = b"",
    comment: bytes = b"",
    append: bytes = b"",
    comment_len: int | None = None,
) -> bytes:
    """A zip with the given members; offsets are relative to the start of the zip proper."""
    body = bytearray()
    central = bytearray()
    for member in members:
        payload = _payload(member)
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        flags = member.flags | (0x8 if member.descriptor else 0)
        lname = member.name if member.local_name is None else member.local_name
        lmethod = member.method if member.local_method is None else member.local_method
        offset = len(body)
        if member.descriptor:
            lcrc, lcsize, lusize = 0, 0, 0
        else:
            lcrc, lcsize, lusize = crc, len(payload), len(member.data)
        body += (
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                flags,
                lmethod,
                0,
                0x21,
                lcrc,
                lcsize,
                lusize,
                len(lname),
                0,
            )
            + lname
            + payload
        )
        if member.descriptor:
            body += struct.pack("<4sIII", b"PK\x07\x08", crc, len(payload), len(member.data))
        extra = b""
        csize, usize, lho = len(payload), len(member.data), offset
        if member.zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, lho)
            csize = usize = lho = 0xFFFFFFFF
        central += (
            struct.pack(
                "<4sBBHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                member.create_system,
                20,
                flags,
                member.method,
                0,
                0x21,
                crc,
                csize,
                usize,
                len(member.name),
                len(extra),
                0,
                0,
                0,
                member.external_attr,
                lho,
            )
            + member.name
            + extra
        )
    eocd = struct.pack(
        "<4sHHHHIIH",
        b"PK\x05\x06",
        0,
        0,
        len(members),
        len(members),
        len(central),
        len(body),
        len(comment) if comment_len is None else comment_len,
    )
    return prepend + bytes(body) + bytes(central) + eocd + comment + append


def torch_like(
    pickle_bytes: bytes,
    folder: bytes = b"archive",
    extra: list[Member] | None = None,
    **overrides: object,
) -> bytes:
    """A checkpoint shaped like torch.save's: data.pkl first, then version and byteorder."""
    data_pkl = Member(folder + b"/data.pkl", pickle_bytes, **overrides)  # type: ignore[arg-type]
    members = [
        data_pkl,
        Member(folder + b"/byteorder", b"little"),
        Member(folder + b"/version", b"3\n"),
        *(extra or []),
    ]
    return build_zip(members)
