"""Comparing two models' outputs on the same inputs, within a `Tolerance`.

Errors are measured relative to the source output's largest magnitude (logits and
embeddings have no natural absolute scale). For two-dimensional float outputs (classifier
logits) top-1 agreement is counted over *decisive* inputs only: those whose source top-2
margin exceeds twice the allowed error, since a tie broken differently by rounding is not a
change of behaviour. Cosine similarity per sample covers embeddings.
"""

from __future__ import annotations

import numpy as np

from modelward.diff.report import OutputComparison
from modelward.diff.tolerance import Tolerance

__all__ = ["compare_outputs", "disagreement", "output_kind"]


def output_kind(sample: np.ndarray) -> str:
    """``integer``, ``classifier`` (2-D float), ``embedding`` (other n-D float) or ``tensor``."""
    if not np.issubdtype(sample.dtype, np.floating):
        return "integer"
    if sample.ndim == 2 and sample.shape[-1] >= 2:
        return "classifier"
    return "embedding" if sample.ndim >= 2 else "tensor"


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        same = np.array_equal(np.isnan(a64), np.isnan(b64)) and np.allclose(
            np.nan_to_num(a64), np.nan_to_num(b64))
        return 0.0 if same else float("inf")
    scale = float(np.abs(a64).max()) if a64.size else 0.0
    return float(np.abs(a64 - b64).max() / max(scale, 1e-6)) if a64.size else 0.0


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = a.reshape(a.shape[0], -1).astype(np.float64) if a.ndim else a.reshape(1, -1)
    y = b.reshape(b.shape[0], -1).astype(np.float64) if b.ndim else b.reshape(1, -1)
    num = (x * y).sum(1)
    den = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 1.0)


def _decisive_top1(a: np.ndarray, b: np.ndarray, allowed: float) -> tuple[int, int]:
    """(decisive rows, agreeing decisive rows)."""
    srt = np.sort(a, axis=-1)
    margin = srt[..., -1] - srt[..., -2]
    decisive = margin > 2 * allowed
    same = a.argmax(-1) == b.argmax(-1)
    return int(decisive.sum()), int((decisive & same).sum())


def disagreement(a: np.ndarray, b: np.ndarray) -> float:
    """A scalar divergence score (relative error, plus 1 per flipped top-1) for searching."""
    score = _rel(a, b)
    if np.isfinite(score) and output_kind(a) == "classifier" and a.shape == b.shape:
        score += float((a.argmax(-1) != b.argmax(-1)).mean())
    return score


def compare_outputs(names: list[str], source: list[list[np.ndarray]],
                    target: list[list[np.ndarray]], tol: Tolerance) -> list[OutputComparison]:
    """Statistics per output over all inputs (`source[k][j]`: output j on input k)."""
    results = []
    for j, name in enumerate(names):
        pairs = [(s[j], t[j]) for s, t in zip(source, target, strict=True)
                 if j < len(s) and j < len(t)]
        if not pairs:
            continue
        kind = output_kind(pairs[0][0])
        rels, agree = [], []
        decisive = agreeing = 0
        cos_min: float | None = None
        max_abs = 0.0
        for a, b in pairs:
            rel = _rel(a, b)
            ok = rel <= tol.rtol if kind != "integer" else bool(
                a.shape == b.shape and np.array_equal(a, b))
            if a.shape == b.shape and a.size:
                max_abs = max(max_abs, float(np.abs(a.astype(np.float64) - b).max()))
            if kind in ("classifier", "embedding") and a.shape == b.shape and np.isfinite(rel):
                cos = float(_cosines(a, b).min())
                cos_min = cos if cos_min is None else min(cos_min, cos)
                if kind == "classifier":
                    allowed = tol.rtol * float(np.abs(a).max())
                    d, g = _decisive_top1(a, b, allowed)
                    decisive += d
                    agreeing += g
                    ok = ok or (d == g and cos >= tol.min_cosine)
                else:
                    ok = ok or cos >= tol.min_cosine
            rels.append(rel)
            agree.append(bool(ok))
        top1 = (agreeing / decisive if decisive else 1.0) if kind == "classifier" else None
        passed = all(np.isfinite(r) for r in rels)
        if kind == "classifier":
            passed = passed and top1 is not None and top1 >= tol.min_top1 and (
                cos_min is None or cos_min >= tol.min_cosine or max(rels) <= tol.rtol)
        elif kind == "embedding":
            passed = passed and (max(rels) <= tol.rtol or (
                cos_min is not None and cos_min >= tol.min_cosine))
        else:
            passed = passed and all(agree)
        results.append(OutputComparison(
            name=name, kind=kind, max_abs=max_abs, rel_error=max(rels), top1=top1,
            cosine_min=cos_min, passed=bool(passed), rel_errors=rels, agree=agree))
    return results
