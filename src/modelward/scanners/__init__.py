"""Format scanners, one module per format, gathered into an immutable `ScannerSet`.

Each module defines ``SCANNER: Final = SomeScanner()``. `discover()` imports every module
of this package on first use (never at import of modelward) plus any third-party scanner
registered under the ``modelward.scanners`` entry-point group.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

from modelward.findings import Rule
from modelward.scanners.base import Artifact, Nested, Scanner

__all__ = ["Artifact", "Nested", "Scanner", "ScannerSet", "discover"]


class ScannerSet:
    """An immutable, priority-ordered set of scanners."""

    __slots__ = ("_by_name", "_ordered")

    def __init__(self, scanners: Iterable[Scanner]) -> None:
        items = list(scanners)
        by_name: dict[str, Scanner] = {}
        for scanner in items:
            if scanner.name in by_name:
                raise ValueError(f"two scanners named {scanner.name!r}")
            by_name[scanner.name] = scanner
        self._by_name = by_name
        self._ordered = tuple(sorted(items, key=lambda s: (-s.priority, s.name)))

    def __iter__(self) -> Iterator[Scanner]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def get(self, name: str) -> Scanner | None:
        """The scanner called `name`, if any."""
        return self._by_name.get(name)

    def identify(self, artifact: Artifact) -> Scanner | None:
        """The highest-priority scanner that claims the artifact's content."""
        for scanner in self._ordered:
            if scanner.claims(artifact):
                return scanner
        return None

    def owners_of_suffix(self, suffix: str) -> list[Scanner]:
        """Scanners whose format usually carries this extension."""
        return [s for s in self._ordered if suffix in s.suffixes]

    def rules(self) -> list[Rule]:
        """Every rule of every scanner, sorted by id."""
        unique = {r.id: r for s in self._ordered for r in s.rules}
        return sorted(unique.values(), key=lambda r: r.id)


def _builtin_scanners() -> Iterator[Scanner]:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        scanner = getattr(module, "SCANNER", None)
        if isinstance(scanner, Scanner):
            yield scanner


@functools.cache
def discover() -> ScannerSet:
    """Built-in scanners plus ``modelward.scanners`` entry points (loaded once)."""
    scanners = list(_builtin_scanners())
    for ep in entry_points(group="modelward.scanners"):
        obj = ep.load()
        scanner = obj() if isinstance(obj, type) else obj
        if not isinstance(scanner, Scanner):
            raise TypeError(f"entry point {ep.name} does not provide a Scanner")
        scanners.append(scanner)
    return ScannerSet(scanners)
