"""7z archives read with the optional ``py7zr`` library, in memory only.

py7zr's public extraction (``extract``/``extractall``) checks member names against the
current directory on disk and, without a writer factory, writes files, directories and
symbolic links. This module never takes that path: it opens the archive over a zero-copy
view of the bytes, lists the members from the parsed header, and decompresses one member
at a time through py7zr's extraction worker with an in-memory writer registered for that
member alone (the worker only touches the filesystem for targets that are paths, which we
never give it). Member names are therefore never resolved, joined or sanitised: a name
with ``../`` is reported by the scanner and its bytes are still analysed.

py7zr is imported lazily and treated as untyped (``Any``); without it `load_py7zr`
returns ``None`` and the scanner falls back to recognising the format.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelward.errors import FormatError, ResourceLimitError

__all__ = ["SevenZipListing", "SevenZipMember", "extract_member", "list_archive", "load_py7zr"]

def load_py7zr() -> Any | None:
    """The ``py7zr`` module, or None when it is not installed."""
    try:
        return importlib.import_module("py7zr")
    except ImportError:
        return None


class _ViewReader(io.RawIOBase):
    """A seekable, read-only file over a memoryview (nothing is copied up front)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        buffer[:n] = chunk
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


@dataclass(frozen=True, slots=True)
class SevenZipMember:
    """One member as the archive header declares it.

    Attributes:
        index: position in the header (py7zr's file id).
        name: the name exactly as stored.
        size: declared uncompressed size.
        is_dir: a directory entry.
        is_link: a symbolic link (or Windows junction).
        empty: no data stream (zero-length file or directory).
        methods: coder names of its folder (``LZMA2``, ``BCJ``...), or unknown method ids.
        unsupported: why py7zr cannot decode it (encrypted, unknown coder), or None.
    """

    index: int
    name: str
    size: int
    is_dir: bool
    is_link: bool
    empty: bool
    methods: tuple[str, ...]
    unsupported: str | None


@dataclass(frozen=True, slots=True)
class SevenZipListing:
    """The members of an archive and whether its header says it needs a password."""

    members: tuple[SevenZipMember, ...]
    encrypted: bool


def _open(py7zr: Any, data: memoryview) -> Any:
    return py7zr.SevenZipFile(io.BufferedReader(_ViewReader(data)), mode="r")


def _coder_info(py7zr: Any, folder: Any) -> tuple[tuple[str, ...], str | None]:
    methods_cls = py7zr.compressor.SupportedMethods
    names: list[str] = []
    why: str | None = None
    for coder in getattr(folder, "coders", None) or ():
        filter_id = methods_cls.get_filter_id(coder)
        if filter_id is None:
            names.append(f"0x{bytes(coder.get('method', b'')).hex()}")
            why = why or "an unknown coder"
            continue
        name = str(methods_cls.get_method_name_id(filter_id))
        names.append(name)
        if methods_cls.is_crypto_id(filter_id):
            why = "encrypted (7zAES)"
    return tuple(names), why


def list_archive(py7zr: Any, data: memoryview, max_members: int) -> SevenZipListing:
    """Parse the archive header and list its members.

    Raises:
        FormatError: py7zr cannot read the header (corrupt, encrypted header, unknown).
        ResourceLimitError: more members than `max_members`.
    """
    try:
        with _open(py7zr, data) as archive:
            files = list(archive.files)
            if len(files) > max_members:
                raise ResourceLimitError(
                    f"7z archive declares {len(files)} members (limit {max_members})"
                )
            members = []
            for f in files:
                folder = None if f.emptystream else f.folder
                methods, why = _coder_info(py7zr, folder) if folder is not None else ((), None)
                members.append(
                    SevenZipMember(
                        index=int(f.id),
                        name=str(f.filename),
                        size=int(f.uncompressed or 0),
                        is_dir=bool(f.is_directory),
                        is_link=bool(f.is_symlink) or bool(getattr(f, "is_junction", False)),
                        empty=bool(f.emptystream),
                        methods=methods,
                        unsupported=why,
                    )
                )
            return SevenZipListing(tuple(members), bool(archive.needs_password()))
    except ResourceLimitError:
        raise
    except py7zr.exceptions.PasswordRequired as err:
        raise FormatError("the archive header is encrypted (7zAES)") from err
    except Exception as err:  # py7zr raises many types on hostile headers
        raise FormatError(
            f"py7zr cannot read the archive header: {type(err).__name__}: {err}"
        ) from err


class _Sink:
    """In-memory destination for one member, with hard caps checked on every write."""

    def __init__(self, cap: int, on_write: Callable[[int], None]) -> None:
        self.buffer = bytearray()
        self._cap = cap
        self._on_write = on_write

    def write(self, s: bytes | bytearray) -> int:
        if len(self.buffer) + len(s) > self._cap:
            raise ResourceLimitError(
                f"7z member inflates beyond {self._cap} bytes",
                hint="raise [tool.modelward.limits] max-member-bytes if the archive is trusted",
            )
        self._on_write(len(s))
        self.buffer += s
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return len(self.buffer)

    def close(self) -> None:
        return None


class _Factory:
    """py7zr writer factory that only ever hands out in-memory sinks."""

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def create(self, filename: str) -> _Sink:
        return self._sink


def extract_member(
    py7zr: Any,
    data: memoryview,
    member: SevenZipMember,
    *,
    cap: int,
    work_budget: int,
    on_write: Callable[[int], None],
    on_extra_work: Callable[[int], None],
) -> tuple[bytes, bool]:
    """Decompress one member into memory.

    Args:
        py7zr: the module.
        data: the archive bytes.
        member: the member to decompress.
        cap: most bytes the member may produce.
        work_budget: most bytes decompressed in all (members of a solid block before this
            one are decompressed and discarded).
        on_write: called with each chunk size written (budget, deadline).
        on_extra_work: called once with the bytes decompressed for other members.

    Returns:
        The bytes, and whether their CRC matched (False: 7-Zip warns but extracts).

    Raises:
        FormatError: the member cannot be decoded.
        ResourceLimitError: a cap or budget is exceeded.
    """
    sink = _Sink(cap, on_write)
    crc_ok = True
    try:
        with _open(py7zr, data) as archive:
            worker = archive.worker
            target = next(f for f in archive.files if int(f.id) == member.index)
            # Only this member gets a destination, and it is an in-memory MemIO: the worker
            # touches the filesystem solely for destinations that are paths.
            worker.register_filelike(target.id, py7zr.io.MemIO(member.name, _Factory(sink)))
            worker.max_extract_size = max(work_budget, 0)
            try:
                worker.extract(archive.fp, None, parallel=False)
            except py7zr.exceptions.CrcError:
                if len(sink.buffer) != member.size:
                    raise
                crc_ok = False
            extra = int(getattr(worker, "_total_extracted", 0)) - len(sink.buffer)
            if extra > 0:
                on_extra_work(extra)
    except ResourceLimitError:
        raise
    except py7zr.exceptions.DecompressionBombError as err:
        raise ResourceLimitError(
            f"decompressing the 7z block holding this member exceeds the budget ({err})",
            hint="raise [tool.modelward.limits] max-total-bytes if the archive is trusted",
        ) from err
    except Exception as err:  # hostile coder streams raise many types inside py7zr
        raise FormatError(f"7z member not analysed: {type(err).__name__}: {err}") from err
    return bytes(sink.buffer), crc_ok
