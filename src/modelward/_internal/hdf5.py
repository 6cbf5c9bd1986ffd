"""Just enough HDF5 to read the root group's string attributes, bounded and zero-copy.

Keras' legacy ``.h5`` files keep the model config as a JSON string attribute
(``model_config``) of the root group. Reading it with h5py would hand hostile bytes to a
large C library; this reader follows only the structures on that path: the superblock
(versions 0-3), the root object header (versions 1 and 2, with continuation blocks),
attribute messages (versions 1-3), their datatype and dataspace, fixed-length strings and
variable-length strings kept in global heap collections. Every address is checked against
the buffer, every loop is bounded, continuation blocks are visited once.

Dense attribute storage (fractal heap + v2 B-tree name index, used once an object has
many attributes) is followed by `modelward._internal.hdf5_dense`. What it does not read
(reported in `RootAttributes.problems` so callers fail closed): filtered fractal heaps,
shared (committed) datatypes and shared messages, and datatypes other than strings.

Spec: https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from modelward._internal.hdf5_dense import dense_attribute_messages
from modelward.errors import FormatError

__all__ = ["SIGNATURE", "H5Attribute", "RootAttributes", "find_superblock", "read_root_attributes"]

SIGNATURE: Final = b"\x89HDF\r\n\x1a\n"

_MSG_ATTRIBUTE: Final = 0x000C
_MSG_CONTINUATION: Final = 0x0010
_MSG_ATTRIBUTE_INFO: Final = 0x0015
_MAX_MESSAGES: Final = 100_000
_MAX_BLOCKS: Final = 4096
_MAX_ELEMENTS: Final = 1 << 20
_MAX_SUPERBLOCK_PROBE: Final = 1 << 30


@dataclass(frozen=True, slots=True)
class H5Attribute:
    """One attribute of the root group.

    Attributes:
        name: attribute name.
        values: decoded string elements (empty for non-string datatypes).
        is_string: whether the datatype is a (fixed or variable-length) string.
        offset: file offset of the attribute message.
    """

    name: str
    values: tuple[bytes, ...]
    is_string: bool
    offset: int


@dataclass(slots=True)
class RootAttributes:
    """What was read from the root group, and what could not be."""

    superblock_offset: int
    superblock_version: int
    attributes: list[H5Attribute] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> H5Attribute | None:
        """The first attribute called `name`, if any."""
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None


def find_superblock(buf: memoryview) -> int | None:
    """Offset of the HDF5 signature: 0, 512, 1024, 2048... (after a user block)."""
    pos = 0
    while pos + 8 <= len(buf) and pos <= _MAX_SUPERBLOCK_PROBE:
        if bytes(buf[pos : pos + 8]) == SIGNATURE:
            return pos
        pos = 512 if pos == 0 else pos * 2
    return None


class _Reader:
    """Bounds-checked little-endian reads over the file."""

    def __init__(self, buf: memoryview, offsets: int, lengths: int, base: int) -> None:
        self.buf = buf
        self.offsets = offsets
        self.lengths = lengths
        self.base = base
        self.undefined = (1 << (8 * offsets)) - 1
        self.heaps: dict[int, dict[int, memoryview]] = {}

    def need(self, pos: int, n: int) -> None:
        if pos < 0 or n < 0 or pos + n > len(self.buf):
            raise FormatError(f"HDF5 structure reaches past the end of the file ({n} bytes)",
                              offset=pos)

    def uint(self, pos: int, n: int) -> int:
        self.need(pos, n)
        return int.from_bytes(self.buf[pos : pos + n], "little")

    def addr(self, value: int) -> int:
        """A file address made absolute (relative to the base address)."""
        if value == self.undefined:
            raise FormatError("undefined HDF5 address where one is required")
        return self.base + value

    def global_heap_object(self, collection: int, index: int) -> memoryview:
        """Object `index` of the global heap collection at `collection` (absolute)."""
        objects = self.heaps.get(collection)
        if objects is None:
            objects = self._parse_collection(collection)
            self.heaps[collection] = objects
        try:
            return objects[index]
        except KeyError:
            raise FormatError(f"global heap object {index} missing", offset=collection) from None

    def _parse_collection(self, pos: int) -> dict[int, memoryview]:
        self.need(pos, 8 + self.lengths)
        if bytes(self.buf[pos : pos + 4]) != b"GCOL":
            raise FormatError("bad global heap signature", offset=pos)
        size = self.uint(pos + 8, self.lengths)
        end = pos + size
        self.need(pos, size)
        cursor = pos + 8 + self.lengths
        objects: dict[int, memoryview] = {}
        header = 8 + self.lengths
        while cursor + header <= end and len(objects) < _MAX_MESSAGES:
            index = self.uint(cursor, 2)
            length = self.uint(cursor + 8, self.lengths)
            if index == 0:  # free space: the rest of the collection
                break
            start = cursor + header
            if length > end - start:
                raise FormatError("global heap object overruns its collection", offset=cursor)
            objects[index] = self.buf[start : start + length]
            cursor = start + ((length + 7) & ~7)
        return objects


def _superblock(buf: memoryview, at: int) -> tuple[_Reader, int, int]:
    """Parse the superblock; return (reader, version, root object header address)."""
    if len(buf) < at + 16:
        raise FormatError("truncated HDF5 superblock", offset=at)
    version = buf[at + 8]
    if version in (0, 1):
        offsets, lengths = buf[at + 13], buf[at + 14]
        pos = at + 24 + (4 if version == 1 else 0)
    elif version in (2, 3):
        offsets, lengths = buf[at + 9], buf[at + 10]
        pos = at + 12
    else:
        raise FormatError(f"unknown HDF5 superblock version {version}", offset=at + 8)
    if offsets not in (2, 4, 8) or lengths not in (2, 4, 8):
        raise FormatError(f"bad HDF5 sizes (offsets {offsets}, lengths {lengths})", offset=at)
    probe = _Reader(buf, offsets, lengths, 0)
    base = probe.uint(pos, offsets)
    if base == probe.undefined or base > len(buf):
        raise FormatError("bad HDF5 base address", offset=pos)
    reader = _Reader(buf, offsets, lengths, base)
    if version in (0, 1):
        # base, free-space, end-of-file, driver info, then the root symbol table entry:
        # link name offset, object header address.
        root = reader.uint(pos + 5 * offsets, offsets)
    else:
        # base, superblock extension, end-of-file, root group object header.
        root = reader.uint(pos + 3 * offsets, offsets)
    return reader, version, reader.addr(root)


def _messages(r: _Reader, header: int) -> list[tuple[int, int, memoryview, int]]:
    """All messages of the object header at `header`: (type, flags, body, offset)."""
    out: list[tuple[int, int, memoryview, int]] = []
    blocks: list[tuple[int, int, int]] = []  # (start, end, version)
    r.need(header, 16)
    if bytes(r.buf[header : header + 4]) == b"OHDR":
        version = r.buf[header + 4]
        if version != 2:
            raise FormatError(f"unknown object header version {version}", offset=header)
        flags = r.buf[header + 5]
        pos = header + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = r.uint(pos, width)
        pos += width
        r.need(pos, size + 4)
        blocks.append((pos, pos + size, 2))
        creation_order = bool(flags & 0x04)
    else:
        version = r.buf[header]
        if version != 1:
            raise FormatError(f"unknown object header version {version}", offset=header)
        size = r.uint(header + 8, 4)
        r.need(header + 16, size)
        blocks.append((header + 16, header + 16 + size, 1))
        creation_order = False
    seen = {header}
    done = 0
    while done < len(blocks):
        start, end, ver = blocks[done]
        done += 1
        if done > _MAX_BLOCKS:
            raise FormatError("too many object header continuation blocks", offset=start)
        pos = start
        head = 8 if ver == 1 else 4 + (2 if creation_order else 0)
        while pos + head <= end:
            if ver == 1:
                mtype, size, mflags = r.uint(pos, 2), r.uint(pos + 2, 2), r.buf[pos + 4]
            else:
                mtype, size, mflags = r.buf[pos], r.uint(pos + 1, 2), r.buf[pos + 3]
            body = pos + head
            if size > end - body:
                raise FormatError("object header message overruns its block", offset=pos)
            out.append((mtype, mflags, r.buf[body : body + size], body))
            if len(out) > _MAX_MESSAGES:
                raise FormatError("too many object header messages", offset=pos)
            if mtype == _MSG_CONTINUATION:
                cont = r.addr(r.uint(body, r.offsets))
                length = r.uint(body + r.offsets, r.lengths)
                if cont not in seen:
                    seen.add(cont)
                    r.need(cont, length)
                    if ver == 2:
                        if bytes(r.buf[cont : cont + 4]) != b"OCHK":
                            raise FormatError("bad continuation block signature", offset=cont)
                        blocks.append((cont + 4, cont + length - 4, 2))
                    else:
                        blocks.append((cont, cont + length, 1))
            pos = body + size
    return out


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _dataspace_count(r: _Reader, ds: memoryview, at: int) -> int:
    if len(ds) < 4:
        raise FormatError("truncated dataspace", offset=at)
    version, rank, flags = ds[0], ds[1], ds[2]
    if version == 1:
        dims_at = 8
    elif version == 2:
        if ds[3] == 2:  # null dataspace
            return 0
        dims_at = 4
    else:
        raise FormatError(f"unknown dataspace version {version}", offset=at)
    del flags
    count = 1
    for i in range(rank):
        p = dims_at + i * r.lengths
        if p + r.lengths > len(ds):
            raise FormatError("truncated dataspace dimensions", offset=at)
        count *= int.from_bytes(ds[p : p + r.lengths], "little")
        if count > _MAX_ELEMENTS:
            raise FormatError(f"attribute has more than {_MAX_ELEMENTS} elements", offset=at)
    return count


def _decode_values(r: _Reader, dt: memoryview, data: memoryview, count: int, at: int,
                   max_value: int) -> tuple[bool, tuple[bytes, ...]]:
    if len(dt) < 8:
        raise FormatError("truncated datatype", offset=at)
    cls = dt[0] & 0x0F
    size = int.from_bytes(dt[4:8], "little")
    values: list[bytes] = []
    if cls == 3:  # fixed-length string
        if size * count > len(data):
            raise FormatError("attribute data shorter than its datatype says", offset=at)
        for i in range(count):
            values.append(bytes(data[i * size : i * size + min(size, max_value)]).rstrip(b"\0 "))
        return True, tuple(values)
    if cls == 9:  # variable-length: string, or sequence (of bytes)
        ref = 4 + r.offsets + 4
        if ref * count > len(data):
            raise FormatError("attribute data shorter than its references", offset=at)
        for i in range(count):
            p = i * ref
            length = int.from_bytes(data[p : p + 4], "little")
            collection = int.from_bytes(data[p + 4 : p + 4 + r.offsets], "little")
            index = int.from_bytes(data[p + 4 + r.offsets : p + ref], "little")
            if length == 0 or collection in (0, r.undefined):
                values.append(b"")
                continue
            obj = r.global_heap_object(r.addr(collection), index)
            values.append(bytes(obj[: min(length, max_value)]))
        return True, tuple(values)
    return False, ()


def _attribute(r: _Reader, body: memoryview, at: int, max_value: int) -> H5Attribute:
    if len(body) < 8:
        raise FormatError("truncated attribute message", offset=at)
    version, flags = body[0], body[1]
    name_size = int.from_bytes(body[2:4], "little")
    dt_size = int.from_bytes(body[4:6], "little")
    ds_size = int.from_bytes(body[6:8], "little")
    if version == 1:
        pos = 8
        sizes = (_pad8(name_size), _pad8(dt_size), _pad8(ds_size))
    elif version in (2, 3):
        if flags & 0x03:
            raise FormatError("attribute uses a shared datatype or dataspace", offset=at)
        pos = 8 if version == 2 else 9
        sizes = (name_size, dt_size, ds_size)
    else:
        raise FormatError(f"unknown attribute message version {version}", offset=at)
    if pos + sum(sizes) > len(body):
        raise FormatError("attribute message fields overrun it", offset=at)
    name = bytes(body[pos : pos + name_size]).split(b"\0", 1)[0].decode("utf-8", "replace")
    pos += sizes[0]
    dt = body[pos : pos + dt_size]
    pos += sizes[1]
    ds = body[pos : pos + ds_size]
    pos += sizes[2]
    count = _dataspace_count(r, ds, at)
    is_string, values = _decode_values(r, dt, body[pos:], count, at, max_value)
    return H5Attribute(name, values, is_string, at)


def read_root_attributes(buf: memoryview, *, max_value: int = 256 << 20) -> RootAttributes:
    """Read the root group's attributes.

    Args:
        buf: the whole file.
        max_value: most bytes kept of one string value.

    Returns:
        The attributes read, and the problems met (unsupported storage), if any.

    Raises:
        FormatError: no signature, or a structure on the path is malformed.
    """
    at = find_superblock(buf)
    if at is None:
        raise FormatError("no HDF5 signature")
    reader, version, root = _superblock(buf, at)
    result = RootAttributes(at, version)
    for mtype, mflags, body, offset in _messages(reader, root):
        if mtype == _MSG_ATTRIBUTE:
            if mflags & 0x02:
                result.problems.append(f"shared attribute message at offset {offset}")
                continue
            try:
                result.attributes.append(_attribute(reader, body, offset, max_value))
            except FormatError as err:
                result.problems.append(f"unreadable attribute at offset {offset}: {err.message}")
        elif mtype == _MSG_ATTRIBUTE_INFO and len(body) >= 2 + reader.offsets:
            pos = 2 + (2 if body[1] & 0x01 else 0)
            if pos + 2 * reader.offsets <= len(body):
                heap = int.from_bytes(body[pos : pos + reader.offsets], "little")
                index = int.from_bytes(body[pos + reader.offsets : pos + 2 * reader.offsets],
                                       "little")
                if heap != reader.undefined:
                    _dense(reader, heap, index, result, max_value)
    return result


def _dense(reader: _Reader, heap: int, index: int, result: RootAttributes,
           max_value: int) -> None:
    """Attributes in dense storage (fractal heap + name index); problems on failure."""
    try:
        for body, offset in dense_attribute_messages(reader, heap, index):
            try:
                result.attributes.append(_attribute(reader, body, offset, max_value))
            except FormatError as err:
                result.problems.append(f"unreadable attribute at offset {offset}: {err.message}")
    except FormatError as err:
        where = f" at offset {err.offset}" if err.offset is not None else ""
        result.problems.append(
            f"attributes in dense storage (fractal heap at {heap}) not fully read: "
            f"{err.message}{where}")

