"""``diff_models`` and ``diff_backends``: the library behind ``modelward diff``.

`diff_models` loads a source and a converted target (each on its own backend and device),
diffs their graphs, runs both on random and user-supplied inputs, synthesises an input for
every input-dependent switch that only the target has, searches for the inputs where they
disagree most, and returns a `DiffReport`. `diff_backends` runs one model on several
backends or devices against the first one. Models are loaded *for execution*: the user
asks diff to run them (trusted input by contract, unlike ``modelward scan``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelward.diff.backends import LoadedModel, TensorSpec, backend_for
from modelward.diff.compare import compare_outputs
from modelward.diff.inputs import Feeds, load_inputs, random_inputs
from modelward.diff.report import (
    ADDED_CONDITIONAL,
    BACKEND_FALLBACK,
    OUTPUT_DIVERGENCE,
    TRIGGER_DEMONSTRATED,
    BackendRun,
    DiffFinding,
    DiffReport,
    OutputComparison,
    SearchResult,
    TriggerResult,
)
from modelward.diff.search import evolution_search, gradient_search, supports_gradient
from modelward.diff.structural import GraphSide, graph_side, structural_diff
from modelward.diff.tolerance import PROFILES, Tolerance, detect_precision, looser
from modelward.diff.triggers import synthesise
from modelward.errors import InputError

__all__ = ["DiffOptions", "diff_backends", "diff_models"]


@dataclass(slots=True)
class DiffOptions:
    """Settings of one diff (CLI flags map onto these one to one).

    Attributes:
        samples: random inputs to run.
        seed: seed of the random inputs and the search.
        inputs: folder of user samples (.npy/.npz/images), added to the random ones.
        precision: ``auto`` or a key of `PROFILES`.
        dims: sizes for symbolic input dimensions, by name.
        evidence_dir: where triggering inputs are saved (``.npz``); None keeps them unsaved.
        search_budget: target runs for the divergence search (0: no search).
        search_method: ``auto`` (gradient when the source is PyTorch and inputs are float,
            else ``es``), ``es`` or ``gradient`` (see `modelward.diff.search`).
        synthesise: whether to synthesise triggers.
        allow_pickle: let the torch backend unpickle whole-module checkpoints.
    """

    samples: int = 16
    seed: int = 0
    inputs: Path | None = None
    precision: str = "auto"
    rtol: float | None = None
    min_top1: float | None = None
    min_cosine: float | None = None
    source_device: str = "cpu"
    target_device: str = "cpu"
    source_backend: str | None = None
    target_backend: str | None = None
    dims: dict[str, int] = field(default_factory=dict)
    evidence_dir: Path | None = None
    search_budget: int = 48
    search_method: str = "auto"
    synthesise: bool = True
    allow_pickle: bool = False


def _onnx_bytes(model: LoadedModel) -> bytes | None:
    if model.backend != "onnxruntime":
        return None
    return model.path.read_bytes()


def _feeds_for(model: LoadedModel, feeds: Feeds) -> Feeds:
    """`feeds` renamed positionally to `model`'s input names (when it declares them)."""
    names = [s.name for s in model.inputs]
    if not names or list(feeds) == names:
        return feeds
    return dict(zip(names, feeds.values(), strict=False))


def _specs(*models: LoadedModel) -> list[TensorSpec]:
    for m in models:
        if m.inputs:
            return m.inputs
    raise InputError("no model declares its inputs",
                     hint="use an ONNX or torch.export model on one side, or --inputs")


def _run_record(role: str, model: LoadedModel, feeds: Feeds) -> tuple[BackendRun, list[str]]:
    placed = model.placement(_feeds_for(model, feeds))
    providers = Counter(placed.values())
    requested = getattr(model, "provider", None)
    fallback = sorted(n for n, p in placed.items() if requested and p != requested)
    run = BackendRun(role, str(model.path), model.backend, model.device, model.load_seconds,
                     model.run_seconds, model.runs, dict(providers), fallback[:50],
                     list(model.notes))
    return run, fallback


def _save(evidence: Path | None, name: str, feeds: Feeds) -> str | None:
    if evidence is None:
        return None
    evidence.mkdir(parents=True, exist_ok=True)
    path = evidence / f"{name}.npz"
    arrays: dict[str, Any] = dict(feeds)  # typed Any: numpy's stub types **kwds as bool
    np.savez(path, **arrays)
    return str(path)


def _top1(outs: list[np.ndarray]) -> list[int] | None:
    if outs and outs[0].ndim == 2 and np.issubdtype(outs[0].dtype, np.floating):
        return [int(v) for v in outs[0].argmax(-1)]
    return None


def _tolerance(opts: DiffOptions, sides: Sequence[GraphSide]) -> Tolerance:
    if opts.precision != "auto":
        if opts.precision not in PROFILES:
            raise InputError(f"unknown precision {opts.precision!r}",
                             hint="one of auto, " + ", ".join(PROFILES))
        precision = opts.precision
    else:
        precision = "fp32"
        for side in sides:
            if side.model is not None:
                precision = looser(precision, detect_precision(side.model))
    return PROFILES[precision].with_overrides(rtol=opts.rtol, min_top1=opts.min_top1,
                                              min_cosine=opts.min_cosine)


class _Pair:
    """Two loaded models run on the same inputs."""

    def __init__(self, a: LoadedModel, b: LoadedModel, tol: Tolerance) -> None:
        self.a, self.b, self.tol = a, b, tol

    def run(self, feeds: Feeds) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return self.a.run(_feeds_for(self.a, feeds)), self.b.run(_feeds_for(self.b, feeds))


def _search(pair: _Pair, specs: list[TensorSpec], opts: DiffOptions) -> tuple[
        SearchResult, Feeds | None]:
    """The divergence search chosen by ``opts.search_method`` (see `modelward.diff.search`)."""
    method = opts.search_method
    if method not in ("auto", "es", "gradient"):
        raise InputError(f"unknown search method {method!r}", hint="auto, es or gradient")
    usable = supports_gradient(pair.a, specs)
    if method == "gradient" and not usable:
        raise InputError("--search gradient needs a PyTorch source and float inputs")
    if method == "gradient" or (method == "auto" and usable):
        found = gradient_search(pair.a, pair.b, specs, opts.search_budget, opts.seed,
                                opts.dims, _feeds_for)
    else:
        found = evolution_search(pair.run, specs, opts.search_budget, opts.seed, opts.dims)
    return SearchResult(found.method, found.restarts, found.evaluations, found.score), \
        found.feeds


def _judge_search(report: DiffReport, pair: _Pair, worst: Feeds | None,
                  opts: DiffOptions) -> None:
    """Compare both models on the search's worst input; beyond tolerance it is divergence."""
    if worst is None or report.search is None:
        return
    x, y = pair.run(worst)
    cmp = compare_outputs([f"o{i}" for i in range(len(x))], [x], [y], pair.tol)
    if all(all(c.agree) for c in cmp):
        return
    report.search.divergent = True
    report.search.input_file = _save(opts.evidence_dir, "search_worst", worst)
    rel = max((c.rel_error for c in cmp), default=0.0)
    report.findings.append(DiffFinding(
        OUTPUT_DIVERGENCE, OUTPUT_DIVERGENCE.severity,
        f"the divergence search ({report.search.method}) found an input where the outputs "
        f"differ beyond {pair.tol.precision} tolerance: relative error {rel:.3g}, top-1 "
        f"source {_top1(x)} vs target {_top1(y)}",
        node=report.search.method, evidence=report.search.input_file or "search input"))


def _triggers(pair: _Pair, target_proto: Any, switches: list[Any], base: Feeds,
              opts: DiffOptions) -> tuple[list[TriggerResult], list[DiffFinding]]:
    results: list[TriggerResult] = []
    findings: list[DiffFinding] = []
    for k, b in enumerate(switches):
        res = TriggerResult(b.selector, b.kind, b.condition, list(b.trigger_nodes), "unsolved")
        if not b.condition:
            res.status, res.detail = "unsupported", "no condition value recorded"
            results.append(res)
            continue
        found = synthesise(target_proto, b.condition, _feeds_for(pair.b, base))
        res.evaluations, res.detail = found.evaluations, found.detail
        if found.feeds is None:
            res.status = "unsupported" if found.unsupported else "unsolved"
            results.append(res)
            continue
        feeds = {s: v for s, v in zip(base, found.feeds.values(), strict=False)}
        x, y = pair.run(feeds)
        cmp = compare_outputs([f"o{i}" for i in range(len(x))], [x], [y], pair.tol)
        res.source_top1, res.target_top1 = _top1(x), _top1(y)
        res.rel_error = max((c.rel_error for c in cmp), default=0.0)
        res.input_file = _save(opts.evidence_dir, f"trigger_{k}_{b.selector.replace('/', '_')}",
                               found.feeds)
        if any(not all(c.agree) for c in cmp):
            res.status = "demonstrated"
            findings.append(DiffFinding(
                TRIGGER_DEMONSTRATED, TRIGGER_DEMONSTRATED.severity,
                f"input satisfying the condition of '{b.selector}' ({found.detail}) makes the "
                f"models disagree (relative error {res.rel_error:.3g}, top-1 source "
                f"{res.source_top1} vs target {res.target_top1})",
                node=b.selector, evidence=res.input_file or found.detail))
        else:
            res.status = "no-effect"
        results.append(res)
    return results, findings


def _ordinary(outputs: list[OutputComparison], feeds_list: list[Feeds]) -> Feeds:
    """The first input on which both models agree (where a trigger search should start)."""
    for k, feeds in enumerate(feeds_list):
        if all(k < len(o.agree) and o.agree[k] for o in outputs):
            return feeds
    return feeds_list[0]


def _execute(report: DiffReport, pair: _Pair, specs: list[TensorSpec], opts: DiffOptions,
             names: list[str]) -> list[Feeds]:
    feeds_list = random_inputs(specs, opts.samples, opts.seed, opts.dims)
    report.inputs["random"] = len(feeds_list)
    if opts.inputs is not None:
        user = load_inputs(opts.inputs, specs)
        report.inputs["user"] = len(user)
        feeds_list += user
    xs, ys = zip(*(pair.run(f) for f in feeds_list), strict=True) if feeds_list else ((), ())
    report.outputs = compare_outputs(names, list(xs), list(ys), pair.tol)
    for out in report.outputs:
        if not out.passed:
            worst = int(np.argmax([r if np.isfinite(r) else 1e300 for r in out.rel_errors]))
            saved = _save(opts.evidence_dir, f"divergent_{out.name}", feeds_list[worst])
            report.findings.append(DiffFinding(
                OUTPUT_DIVERGENCE, OUTPUT_DIVERGENCE.severity,
                f"output '{out.name}' differs beyond {pair.tol.precision} tolerance: relative "
                f"error {out.rel_error:.3g}" + (f", top-1 agreement {out.top1:.3f}"
                                                if out.top1 is not None else ""),
                node=out.name, evidence=saved or f"input #{worst}"))
    return feeds_list


def diff_models(source: Path, target: Path, opts: DiffOptions | None = None) -> DiffReport:
    """Is `target` (converted from `source`) still the same model? See the module docstring.

    Raises:
        InputError: unreadable models, mismatched inputs, bad options.
        BackendUnavailableError: a needed runtime or device is not installed.
    """
    opts = opts or DiffOptions()
    start = time.perf_counter()
    src = backend_for(source, opts.source_backend).load(
        source, opts.source_device, allow_pickle=opts.allow_pickle)
    tgt = backend_for(target, opts.target_backend).load(
        target, opts.target_device, allow_pickle=opts.allow_pickle)
    src_side = graph_side(_onnx_bytes(src))
    tgt_bytes = _onnx_bytes(tgt)
    target_proto = None
    if tgt_bytes is not None:
        import onnx

        # Trusted input by contract: diff was asked to run this model.
        target_proto = onnx.load_from_string(tgt_bytes)
        if target_proto.functions:
            from onnx import inliner

            target_proto = inliner.inline_local_functions(target_proto)
            tgt_bytes = target_proto.SerializeToString()
    tgt_side = graph_side(tgt_bytes)
    tol = _tolerance(opts, (src_side, tgt_side))
    report = DiffReport("models", str(source), str(target), tol.precision,
                        {"rtol": tol.rtol, "min_top1": tol.min_top1,
                         "min_cosine": tol.min_cosine, "weight_rtol": tol.weight_rtol})
    specs = _specs(tgt, src)
    pair = _Pair(src, tgt, tol)
    feeds_list = _execute(report, pair, specs, opts, tgt.output_names)
    base = _ordinary(report.outputs, feeds_list)
    structure = structural_diff(src_side, tgt_side, src.weights(), target_proto, tol,
                                src.output_names)
    report.findings += structure.findings
    report.graph = structure.summary
    if opts.synthesise and target_proto is not None and structure.new_backdoors:
        trig, found = _triggers(pair, target_proto, structure.new_backdoors, base, opts)
        report.triggers, report.findings = trig, report.findings + found
    if opts.search_budget > 0:
        report.search, worst = _search(pair, specs, opts)
        _judge_search(report, pair, worst, opts)
    for role, model in (("source", src), ("target", tgt)):
        run, fallback = _run_record(role, model, feeds_list[0])
        report.runs.append(run)
        if fallback:
            report.findings.append(DiffFinding(
                BACKEND_FALLBACK, BACKEND_FALLBACK.severity,
                f"{len(fallback)} nodes of the {role} did not run on {model.device}",
                node=fallback[0], evidence=", ".join(fallback[:10])))
    report.seconds = time.perf_counter() - start
    return report


def diff_backends(model: Path, devices: Sequence[str], opts: DiffOptions | None = None,
                  backend: str | None = None) -> DiffReport:
    """Run `model` on every device in `devices` and compare each with the first.

    Also reports input-dependent switches in the model and tries their triggers on every
    backend (a backdoor may fire on one backend only).
    """
    opts = opts or DiffOptions()
    if len(devices) < 2:
        raise InputError("--backends needs at least two devices (e.g. cpu,cuda)")
    start = time.perf_counter()
    chosen = backend_for(model, backend)
    loaded = [chosen.load(model, d, allow_pickle=opts.allow_pickle) for d in devices]
    side = graph_side(_onnx_bytes(loaded[0]))
    tol = _tolerance(opts, (side,))
    if opts.rtol is None:  # GPUs reassociate sums and may use TF32: looser than fp32 re-export
        tol = tol.with_overrides(rtol=max(tol.rtol, 1e-3))
    report = DiffReport("backends", f"{model} on {devices[0]}",
                        ", ".join(f"{model} on {d}" for d in devices[1:]), tol.precision,
                        {"rtol": tol.rtol, "min_top1": tol.min_top1,
                         "min_cosine": tol.min_cosine, "weight_rtol": tol.weight_rtol})
    specs = _specs(*loaded)
    for ref_side in side.backdoors:
        report.findings.append(DiffFinding(
            ADDED_CONDITIONAL, ADDED_CONDITIONAL.severity,
            f"model contains a {ref_side.kind} switch at '{ref_side.selector}'",
            node=ref_side.selector, evidence="trigger: " + " -> ".join(ref_side.trigger_nodes)))
    feeds_list: list[Feeds] = []
    outputs: list[OutputComparison] = []
    for other in loaded[1:]:
        pair = _Pair(loaded[0], other, tol)
        sub = DiffReport("backends", "", "", tol.precision, {})
        feeds_list = _execute(sub, pair, specs, opts, [
            f"{other.device}:{n}" for n in other.output_names])
        outputs += sub.outputs
        report.findings += sub.findings
        report.inputs = sub.inputs
        if opts.synthesise and side.backdoors:
            import onnx

            proto = onnx.load(str(model))  # trusted input by contract (executed anyway)
            trig, found = _triggers(pair, proto, side.backdoors,
                                    _ordinary(sub.outputs, feeds_list), opts)
            report.triggers += trig
            report.findings += found
    report.outputs = outputs
    for model_run in loaded:
        run, fallback = _run_record(model_run.device, model_run, feeds_list[0])
        report.runs.append(run)
        if fallback:
            report.findings.append(DiffFinding(
                BACKEND_FALLBACK, BACKEND_FALLBACK.severity,
                f"{len(fallback)} nodes did not run on {model_run.device}", node=fallback[0],
                evidence=", ".join(fallback[:10])))
    report.seconds = time.perf_counter() - start
    return report


