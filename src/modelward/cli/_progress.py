"""The progress bar of ``modelward scan``: on a terminal, for long scans, on stderr only.

It appears only when stderr is a terminal and the scan is worth watching (more than
`MIN_FILES` files or more than `MIN_BYTES` bytes), so piped or redirected output never
carries escape sequences, and a quick scan does not flicker. The totals are known from the
first `ProgressEvent` (the engine walks every target before scanning), so the decision is
taken then. File names shown come from the scanned tree and pass through `printable`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from modelward.reporting.base import printable
from modelward.scan import ProgressEvent

__all__ = ["MIN_BYTES", "MIN_FILES", "ScanProgress"]

MIN_FILES: Final = 20
MIN_BYTES: Final = 200 * 1000 * 1000


class ScanProgress:
    """A callable for ``scan_path(progress=...)``; use it as a context manager.

    Args:
        stream: where the bar goes (stderr).
        enabled: false for ``--quiet``/``--no-progress`` or when `stream` is no terminal.
    """

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._shown = False

    @staticmethod
    def worth_showing(files_total: int, bytes_total: int) -> bool:
        """Whether a scan of this size gets a bar."""
        return files_total > MIN_FILES or bytes_total > MIN_BYTES

    @property
    def was_shown(self) -> bool:
        """Whether the bar appeared during this scan."""
        return self._shown

    def __call__(self, event: ProgressEvent) -> None:
        if not self._enabled:
            return
        if self._progress is None:
            if not self.worth_showing(event.files_total, event.bytes_total):
                self._enabled = False
                return
            console = Console(file=self._stream, markup=False, highlight=False, emoji=False)
            self._progress = Progress(
                TextColumn("scanning"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[path]}", markup=False),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._shown = True
            self._task = self._progress.add_task("scan", total=max(event.bytes_total, 1),
                                                 files="", path="")
        assert self._task is not None
        path = printable(event.path)
        if len(path) > 40:
            path = "…" + path[-39:]
        self._progress.update(
            self._task, completed=event.bytes_done,
            files=f"{event.files_done}/{event.files_total} files", path=path,
        )

    def close(self) -> None:
        """Stop and erase the bar (it is transient)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ScanProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
