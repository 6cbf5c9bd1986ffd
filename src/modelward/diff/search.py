"""Divergence search: hunt for the inputs on which source and target disagree most.

Two strategies, both seeded (same seed, same inputs, same result) and bounded by a budget
counted in *target runs* (the converted model is the one diff treats as a black box):

- `evolution_search`: random restarts, each followed by a (1+1) evolution strategy on the
  float inputs (integer and boolean inputs keep their random values). Works for any pair.
- `gradient_search`, used when the source is a PyTorch model with a classifier output and
  the inputs are floats: from each random start, DeepFool-style steps computed with exact
  PyTorch autograd on the *source's* top-1/top-2 margin walk the input to the source's
  decision boundary, then bisection homes in on it; the target is run at every point and
  the most disagreeing point is kept. The target itself (usually ONNX Runtime) has no
  gradients and is only checked, never differentiated. This finds what random inputs
  almost never reach: conversions that differ only in a narrow band around the decision
  boundary (precision loss that flips near-ties, a converter or tampered model that
  re-decides close calls). It cannot find a trigger that is unrelated to the source's
  decision and has no effect until it fires: trigger synthesis covers those.

The score of an input is `modelward.diff.compare.disagreement` (relative error plus the
fraction of flipped top-1 decisions), whichever strategy produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from modelward.diff.backends import LoadedModel, TensorSpec
from modelward.diff.backends.torch import TorchModel
from modelward.diff.compare import disagreement
from modelward.diff.inputs import Feeds, random_feeds

__all__ = ["ES_METHOD", "GRADIENT_METHOD", "Found", "evolution_search", "gradient_search",
           "supports_gradient"]

ES_METHOD: Final = "random restarts + (1+1)-ES"
GRADIENT_METHOD: Final = "random restarts + source decision-boundary walk (torch autograd)"
_ES_ROUND: Final = 8  # evaluations per restart of the evolution strategy
_STEPS: Final = 8  # boundary steps per restart
_BISECT: Final = 8  # bisection runs per crossing
_OVERSHOOT: Final = 1.02

Run = Callable[[Feeds], tuple[list[np.ndarray], list[np.ndarray]]]


@dataclass(slots=True)
class Found:
    """What a search returns: method, restarts, target runs, best score and its input."""

    method: str
    restarts: int
    evaluations: int
    score: float
    feeds: Feeds | None


def score(outputs: tuple[list[np.ndarray], list[np.ndarray]]) -> float:
    """Disagreement of the worst output pair (0 when there is none)."""
    x, y = outputs
    return max((disagreement(p, q) for p, q in zip(x, y, strict=False)), default=0.0)


def _floats(feeds: Feeds) -> list[str]:
    return [k for k, v in feeds.items() if np.issubdtype(v.dtype, np.floating)]


def evolution_search(run: Run, specs: list[TensorSpec], budget: int, seed: int,
                     dims: dict[str, int]) -> Found:
    """Random restarts, each refined by a (1+1)-ES with a 1/5th-style step-size rule."""
    rng = np.random.default_rng(seed + 1)
    restarts = max(1, budget // _ES_ROUND)
    best, best_feeds, evals, done = -1.0, None, 0, 0
    for _ in range(restarts):
        done += 1
        feeds = random_feeds(specs, rng, dims)
        current = score(run(feeds))
        evals += 1
        sigma = 0.5
        while evals < budget and evals % _ES_ROUND:
            trial = {k: (v + rng.standard_normal(v.shape).astype(v.dtype) * sigma
                         if np.issubdtype(v.dtype, np.floating) else v) for k, v in feeds.items()}
            s = score(run(trial))
            evals += 1
            if s > current:
                feeds, current, sigma = trial, s, sigma * 1.5
            else:
                sigma *= 0.8
        if current > best:
            best, best_feeds = current, feeds
        if evals >= budget:
            break
    return Found(ES_METHOD, done, evals, max(best, 0.0), best_feeds)


def supports_gradient(source: LoadedModel, specs: list[TensorSpec]) -> bool:
    """Whether `gradient_search` applies: a PyTorch source and only float inputs."""
    return (isinstance(source, TorchModel) and bool(specs)
            and all(np.issubdtype(np.dtype(s.dtype), np.floating) for s in specs))


def _margin(logits: Any) -> Any:
    """Sum over the batch of each row's top-1 minus top-2 logit (a torch scalar)."""
    top = logits.float().topk(2, dim=-1).values
    return (top[..., 0] - top[..., 1]).sum()


def gradient_search(source: LoadedModel, target: LoadedModel, specs: list[TensorSpec],
                    budget: int, seed: int, dims: dict[str, int],
                    rename: Callable[[LoadedModel, Feeds], Feeds]) -> Found:
    """Walk each random start to the source's decision boundary and check the target there.

    Each step is exact torch autograd on the source's top-1/top-2 margin (a DeepFool-style
    step ``x - 1.02 * m / |grad m|^2 * grad m``); once the source's decision changes, the last
    two points are bisected so the walk ends as close to the boundary as the budget allows.
    The target is run (as a black box) at every point and the point with the highest
    disagreement is kept. Returns an evolution search when the source has no classifier
    output.

    Args:
        source: a PyTorch model (`supports_gradient` holds).
        target: any loaded model.
        specs: input specification (float inputs only).
        budget: most target runs.
        seed: seed of the starts.
        dims: sizes of symbolic dimensions.
        rename: maps feeds onto a model's own input names.
    """
    import torch

    def run(feeds: Feeds) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return source.run(rename(source, feeds)), target.run(rename(target, feeds))

    rng = np.random.default_rng(seed + 2)
    probe = random_feeds(specs, rng, dims)
    first = source.run(rename(source, probe))
    if not first or first[0].ndim != 2 or first[0].shape[-1] < 2:
        return evolution_search(run, specs, budget, seed, dims)
    if not isinstance(source, TorchModel):
        return evolution_search(run, specs, budget, seed, dims)
    forward = source.forward
    best, best_feeds, evals, restarts = -1.0, None, 0, 0

    def visit(feeds: Feeds) -> tuple[float, list[np.ndarray]]:
        nonlocal best, best_feeds, evals
        s_np, t_np = run(feeds)
        evals += 1
        current = score((s_np, t_np))
        if current > best:
            best, best_feeds = current, {k: v.copy() for k, v in feeds.items()}
        return current, s_np

    while evals < budget:
        restarts += 1
        feeds = probe if restarts == 1 else random_feeds(specs, rng, dims)
        names = list(feeds)
        _, s_np = visit(feeds)
        label = s_np[0].argmax(-1)
        previous = feeds
        for _ in range(_STEPS):
            if evals >= budget:
                break
            tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(source.device)
                       .requires_grad_(True) for n in names]
            margin = _margin(forward(tensors)[0])
            grads = torch.autograd.grad(margin, tensors, allow_unused=True)
            norm = sum(float((g.double() ** 2).sum()) for g in grads if g is not None)
            if norm == 0.0:
                break
            scale = _OVERSHOOT * float(margin.detach()) / norm
            previous = feeds
            feeds = {n: (feeds[n] - scale * g.detach().cpu().numpy()).astype(feeds[n].dtype)
                     if g is not None else feeds[n] for n, g in zip(names, grads, strict=True)}
            _, s_np = visit(feeds)
            if (s_np[0].argmax(-1) != label).any():
                lo, hi = previous, feeds
                for _ in range(_BISECT):  # home in on the boundary
                    if evals >= budget:
                        break
                    mid = {n: ((lo[n] + hi[n]) / 2).astype(lo[n].dtype) for n in names}
                    _, s_mid = visit(mid)
                    if (s_mid[0].argmax(-1) != label).any():
                        hi = mid
                    else:
                        lo = mid
                break
    return Found(GRADIENT_METHOD, restarts, evals, max(best, 0.0), best_feeds)
