"""The human report: grouped by file, worst first, ending with one summary line.

What is shown (``docs/cli.md`` says the same to users):

- default: every file with a finding at or above MEDIUM (or at or above ``fail-on`` when
  that is lower), worst file first; each finding with its severity, rule, message,
  location inside the file (member chain, byte offset, graph node), evidence (first lines)
  and remediation (once per file when several findings share it). Lower findings are
  counted per file, clean files counted at the end.
  A file that could not be fully analysed is always listed, even if its findings were
  ignored by policy.
- verbose: every file and every finding, full evidence, details, format, size, digest
  and timings, and a header naming the policy.
- quiet: only the summary line.

Everything taken from a scanned file (paths, member names, evidence) passes through
`printable`, so a hostile file name cannot send escape sequences to the terminal; rich
markup is off for the same reason.
"""

from __future__ import annotations

import io
from typing import ClassVar, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text
from typing_extensions import override

from modelward.findings import Finding, Location, Severity
from modelward.reporting.base import SEVERITY_ORDER, Renderer, RenderOptions, printable
from modelward.results import FileResult, ScanReport, Status

__all__ = ["TextRenderer", "summary_line"]

STYLES: Final[dict[Severity, str]] = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "bold yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
EVIDENCE_LINES: Final = 8
EVIDENCE_WIDTH: Final = 240


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def summary_line(report: ScanReport) -> str:
    """``N files, X critical, ... — verdict: V, OUTCOME`` (plain text, one line)."""
    counts = report.counts()
    parts = [_plural(len(report.files), "file")]
    parts += [f"{counts[s]} {s.label}" for s in SEVERITY_ORDER]
    suppressed = sum(r.suppressed for r in report.files)
    if suppressed:
        parts.append(f"{suppressed} suppressed by policy")
    verdict = report.verdict
    fail_on = report.policy.fail_on.label
    code = report.exit_code()
    if int(code) == 1:
        outcome = f"FAIL (findings at or above {fail_on})"
    elif int(code) == 2:
        outcome = "INCOMPLETE"
    else:
        outcome = f"PASS (nothing at or above {fail_on})"
    failed = sum(1 for r in report.files if r.status is Status.FAILED)
    if failed:
        outcome += f"; {failed} {'file' if failed == 1 else 'files'} not fully analysed"
    return (f"{', '.join(parts)} — verdict: {'clean' if verdict is None else verdict.label}, "
            f"{outcome}")


def _where(location: Location) -> str | None:
    bits = []
    if location.members:
        bits.append("in " + printable(location.member or ""))
    if location.offset is not None:
        bits.append(f"at byte {location.offset}")
    if location.node is not None:
        bits.append("node " + printable(location.node))
    return ", ".join(bits) if bits else None


def _evidence(evidence: str, verbose: bool) -> str:
    lines = printable(evidence, keep_newlines=True).splitlines() or [""]
    if verbose:
        return "\n".join(lines)
    shown = [line if len(line) <= EVIDENCE_WIDTH else line[:EVIDENCE_WIDTH] + " …"
             for line in lines[:EVIDENCE_LINES]]
    if len(lines) > EVIDENCE_LINES:
        shown.append(f"… {len(lines) - EVIDENCE_LINES} more lines (use -v)")
    return "\n".join(shown)


def _finding_body(finding: Finding, verbose: bool, show_fix: bool = True) -> Text:
    body = Text()
    body.append(finding.rule.id, style="bold")
    body.append(f" {finding.rule.name}\n", style="dim")
    body.append(printable(finding.message))
    where = _where(finding.location)
    if where:
        body.append("\nwhere: ", style="dim")
        body.append(where)
    if finding.evidence:
        body.append("\nevidence: ", style="dim")
        evidence = _evidence(finding.evidence, verbose)
        if "\n" in evidence:
            evidence = "\n" + "\n".join("  " + line for line in evidence.split("\n"))
        body.append(evidence, style="italic")
    if finding.advice and show_fix:
        body.append("\nfix: ", style="dim")
        body.append(printable(finding.advice))
    if verbose and finding.details:
        body.append("\ndetails: ", style="dim")
        body.append(", ".join(f"{printable(k)}={printable(v)}" for k, v in finding.details))
    return body


def _file_rank(result: FileResult) -> tuple[int, int, str]:
    verdict = result.verdict
    return (-(int(verdict) + 1 if verdict is not None else 0),
            0 if result.status is Status.FAILED else 1, result.path)


class TextRenderer(Renderer):
    """Renders the readable report (rich; colour only when asked)."""

    name: ClassVar[str] = "text"

    @override
    def render(self, report: ScanReport, options: RenderOptions | None = None) -> str:
        options = options or RenderOptions()
        buffer = io.StringIO()
        console = Console(
            file=buffer, width=options.width, force_terminal=options.color,
            no_color=not options.color, color_system="standard" if options.color else None,
            highlight=False, markup=False, emoji=False, legacy_windows=False,
            force_jupyter=False, force_interactive=False,
        )
        if not options.quiet:
            self._body(console, report, options.verbose)
        console.print(Text(summary_line(report), style="bold"), soft_wrap=True)
        text = buffer.getvalue()
        if not options.color:
            text = "\n".join(part.rstrip() for part in text.split("\n"))
        return text

    def _body(self, console: Console, report: ScanReport, verbose: bool) -> None:
        threshold = Severity.INFO if verbose else min(Severity.MEDIUM, report.policy.fail_on)
        if verbose:
            policy = report.policy
            console.print(Text(
                f"modelward {report.version} · policy: {printable(policy.source or 'default')} "
                f"({policy.digest()[:19]}…) · fail on {policy.fail_on.label} · "
                f"started {report.started_at} · {report.duration_s:.2f} s",
                style="dim",
            ), soft_wrap=True)
            console.print()
        listed = unlisted = 0
        for result in sorted(report.files, key=_file_rank):
            shown = [f for f in result.findings if f.severity >= threshold]
            if not verbose and not shown and result.status is not Status.FAILED:
                unlisted += 1
                continue
            listed += 1
            self._file(console, result, shown, verbose)
        if unlisted:
            files = _plural(unlisted, "other file" if listed else "file")
            console.print(Text(
                f"{files} with no finding at or above {threshold.label} (-v lists every file)",
                style="dim",
            ))

    def _file(self, console: Console, result: FileResult, shown: list[Finding],
              verbose: bool) -> None:
        header = Text()
        header.append(printable(result.path), style="bold underline")
        facts = [result.format or "unknown format", _size(result.size)]
        if result.status is Status.FAILED:
            facts.append("NOT FULLY ANALYSED")
        elif result.status is Status.SKIPPED:
            facts.append("not analysed")
        verdict = result.verdict
        facts.append("clean" if verdict is None else verdict.name)
        header.append("  " + printable(" · ".join(facts)),
                      style=STYLES[verdict] if verdict is not None else "green")
        console.print(header)
        if verbose:
            extra = [f"{result.duration_s:.3f} s"]
            if result.sha256:
                extra.insert(0, f"sha256 {result.sha256}")
            if result.members:
                extra.append(_plural(len(result.members), "nested stream"))
            console.print(Text("  " + " · ".join(extra), style="dim"), soft_wrap=True)
        if shown:
            grid = Table.grid(padding=(0, 1), pad_edge=False)
            grid.add_column(width=1)
            grid.add_column(width=8, no_wrap=True)
            grid.add_column(ratio=1)
            advised: set[str] = set()  # the same fix twice in one file is noise
            for finding in shown:
                show_fix = verbose or finding.advice not in advised
                advised.add(finding.advice)
                grid.add_row("", Text(finding.severity.name, style=STYLES[finding.severity]),
                             _finding_body(finding, verbose, show_fix))
            console.print(grid)
        hidden = len(result.findings) - len(shown)
        notes = []
        if hidden:
            notes.append(f"{_plural(hidden, 'lower finding')} not shown (use -v)")
        if result.suppressed:
            notes.append(f"{result.suppressed} suppressed by policy")
        if notes:
            console.print(Text("  " + "; ".join(notes), style="dim"))
        console.print()
