"""A self-contained HTML page for a `DiffReport`: inline SVG plots, no scripts, no CDN.

Plots: per output, the error of every input on a log scale against the tolerance line
(error distribution); an agreement strip over inputs (green agrees, red diverges); and the
graph difference as paired bars of operator counts (source vs target) for operators whose
count changed. All text is escaped.
"""

from __future__ import annotations

import html
import math

from modelward.diff.report import DiffReport, OutputComparison

__all__ = ["render_html"]

_W = 640


def _errors_svg(out: OutputComparison, rtol: float) -> str:
    vals = [r if math.isfinite(r) else 1e6 for r in out.rel_errors] or [0.0]
    lo, hi = -9.0, max(1.0, math.log10(max(max(vals), rtol) * 10))
    h = 160

    def y(v: float) -> float:
        return h - 20 - (math.log10(max(v, 1e-9)) - lo) / (hi - lo) * (h - 40)

    bw = max(2.0, (_W - 60) / len(vals))
    bars = "".join(
        f'<rect x="{50 + i * bw:.1f}" y="{y(v):.1f}" width="{bw * 0.8:.1f}" '
        f'height="{h - 20 - y(v):.1f}" fill="{"#2a9d4b" if ok else "#d62828"}"/>'
        for i, (v, ok) in enumerate(zip(vals, out.agree or [True] * len(vals), strict=False)))
    ty = y(rtol)
    label = html.escape(out.name)
    return (f'<svg width="{_W}" height="{h}" role="img" aria-label="errors of {label}">'
            f'<line x1="50" y1="{h - 20}" x2="{_W}" y2="{h - 20}" stroke="#888"/>{bars}'
            f'<line x1="50" y1="{ty:.1f}" x2="{_W}" y2="{ty:.1f}" stroke="#e9a000" '
            f'stroke-dasharray="4"/><text x="52" y="{ty - 3:.1f}" font-size="10">tolerance '
            f'{rtol:g}</text><text x="2" y="14" font-size="10">rel. error (log)</text>'
            f'<text x="50" y="{h - 4}" font-size="10">inputs</text></svg>')


def _ops_svg(source: dict[str, int], target: dict[str, int]) -> str:
    ops = sorted(op for op in set(source) | set(target) if source.get(op) != target.get(op))[:40]
    if not ops:
        return "<p>Operator counts are identical.</p>"
    top = max(max(source.get(o, 0), target.get(o, 0)) for o in ops) or 1
    row = 16
    parts = []
    for i, op in enumerate(ops):
        yy = 10 + i * row
        for j, (side, colour) in enumerate(((source, "#457b9d"), (target, "#e76f51"))):
            w = side.get(op, 0) / top * (_W - 220)
            parts.append(f'<rect x="170" y="{yy + j * 7}" width="{w:.1f}" height="6" '
                         f'fill="{colour}"/>')
        parts.append(f'<text x="0" y="{yy + 11}" font-size="11">{html.escape(op)} '
                     f'({source.get(op, 0)} → {target.get(op, 0)})</text>')
    return (f'<svg width="{_W}" height="{20 + len(ops) * row}" role="img" '
            f'aria-label="operator counts">{"".join(parts)}</svg>'
            '<p><span style="color:#457b9d">■ source</span> '
            '<span style="color:#e76f51">■ target</span></p>')


def render_html(report: DiffReport) -> str:
    """The report as one HTML document."""
    e = html.escape
    colour = {"faithful": "#2a9d4b", "suspicious": "#e9a000", "divergent": "#d62828"}[
        report.verdict]
    rtol = float(report.tolerance.get("rtol", 1e-4))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>modelward diff</title>",
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}"
        "td,th{padding:2px 8px;text-align:left}code{font-size:90%}</style></head><body>",
        f"<h1>modelward diff: <span style='color:{colour}'>{e(report.verdict)}</span></h1>",
        f"<p>source <code>{e(report.source)}</code><br>target <code>{e(report.target)}</code>"
        f"<br>precision {e(report.precision)}; inputs: "
        f"{e(', '.join(f'{v} {k}' for k, v in report.inputs.items()))}</p>",
    ]
    if report.findings:
        parts.append("<h2>Findings</h2><table><tr><th>severity</th><th>rule</th>"
                     "<th>node</th><th>what</th></tr>")
        for f in sorted(report.findings, key=lambda f: -f.severity):
            parts.append(f"<tr><td>{e(f.severity.name)}</td><td>{e(f.rule.id)}</td>"
                         f"<td><code>{e(f.node or '')}</code></td><td>{e(f.message)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Outputs: error over inputs</h2>")
    for out in report.outputs:
        stats = f"max rel. error {out.rel_error:.3g}"
        if out.top1 is not None:
            stats += f", top-1 agreement {out.top1:.3f}"
        if out.cosine_min is not None:
            stats += f", min cosine {out.cosine_min:.6f}"
        parts.append(f"<h3>{e(out.name)} ({e(out.kind)}) — {'ok' if out.passed else 'FAIL'}"
                     f"</h3><p>{e(stats)}</p>{_errors_svg(out, rtol)}")
    if report.triggers:
        parts.append("<h2>Synthesised triggers</h2><table><tr><th>selector</th><th>status</th>"
                     "<th>top-1 source → target</th><th>input</th></tr>")
        for t in report.triggers:
            parts.append(f"<tr><td><code>{e(t.selector)}</code></td><td>{e(t.status)}</td>"
                         f"<td>{e(str(t.source_top1))} → {e(str(t.target_top1))}</td>"
                         f"<td>{e(t.input_file or t.detail)}</td></tr>")
        parts.append("</table>")
    if report.graph.get("source_ops") or report.graph.get("target_ops"):
        parts.append("<h2>Graph difference</h2>")
        parts.append(_ops_svg(report.graph.get("source_ops", {}),
                              report.graph.get("target_ops", {})))
    parts.append("<h2>Backends</h2><table><tr><th>role</th><th>backend</th><th>load s</th>"
                 "<th>run s</th><th>nodes per provider</th></tr>")
    for r in report.runs:
        parts.append(f"<tr><td>{e(r.role)}</td><td>{e(r.backend)}/{e(r.device)}</td>"
                     f"<td>{r.load_seconds:.3f}</td><td>{r.run_seconds:.3f}</td>"
                     f"<td>{e(', '.join(f'{k}: {v}' for k, v in r.providers.items()))}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)
