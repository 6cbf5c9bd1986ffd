"""Second red-team round on the pickle machine: published gadgets and allowlist side effects.

Sources (each test names its own): modelscan issue #89, nltk's allowlist hardening
(GHSA-c59x-vh6j-3w8v and PR #3757), picklescan issue #66, "The Art of Hide and Seek"
(arXiv 2508.19774, gadgets in libraries scanners trust), PickleBall (CCS 2025, arXiv
2508.15987: loaders must only allow what loading needs). Malicious samples are built
opcode by opcode, or with ``pickle.dumps`` of an object whose ``__reduce__`` names the
gadget (dumping runs nothing); payloads only ever touch the `marker_command` file.
"""

from __future__ import annotations

import argparse
import collections
import functools
import io
import pickle
from typing import Any

import numpy as np
import pytest
import torch
from _regression_asserts import assert_flagged, describe
from _regression_pickles import PROTO4, args, call, glob, stack_glob, ustr

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.results import FileResult


def scan(data: bytes, name: str = "model.pkl") -> FileResult:
    return scan_bytes(data, name, raise_internal=True)


def worst(result: FileResult) -> Severity:
    return max((f.severity for f in result.findings), default=Severity.INFO)


def torch_saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Reduce:
    """Pickles as ``func(*arguments)`` (dumping only: nothing is called)."""

    def __init__(self, func: Any, *arguments: Any) -> None:
        self.func, self.arguments = func, arguments

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.arguments


# ----------------------------------------------------------------- published techniques


def test_dict_get_on_module_builtins_modelscan_89(marker_command: str) -> None:
    """``builtins.dict.get(numpy.__builtins__, 'exec')(code)``: a safe module's builtins dict.

    https://github.com/protectai/modelscan/issues/89
    """
    code = f"__import__('os').system({marker_command!r})"
    payload = (PROTO4 + glob("builtins", "dict.get") + glob("numpy", "__builtins__")
               + ustr("exec") + b"\x86R" + ustr(code) + b"\x85R.")
    assert_flagged(scan(payload), "__builtins__", rules={"MW-PKL-001", "MW-PKL-003"})


def test_build_slotstate_on_allowed_function_modelscan_89(marker_command: str) -> None:
    """BUILD ``(None, sys.modules)`` on ``numpy.prod`` then ``numpy.prod.os.system(cmd)``.

    https://github.com/protectai/modelscan/issues/89
    """
    payload = (PROTO4 + glob("numpy", "prod") + b"N" + glob("numpy", "core._internal.sys.modules")
               + b"\x86b0" + glob("numpy", "prod.os.system") + args(marker_command) + b"R.")
    result = scan(payload)
    assert_flagged(result, "sys.modules", rules={"MW-PKL-004"})
    assert_flagged(result, "os.system")


def test_unregistered_ext_code_warm_extension_cache() -> None:
    """EXT1 resolves through copyreg's cache without ``find_class`` in the C unpickler.

    https://github.com/nltk/nltk/pull/3757 (EXT extension opcodes)
    """
    result = scan(PROTO4 + b"\x82\xf0)R.")
    assert worst(result) >= Severity.MEDIUM, describe(result)


# Sinks inside libraries that allowlists trust, each published as a way around one.
# (module, qualname, source). Built as ``module.qualname(marker_command)``.
LIBRARY_SINKS: list[tuple[str, str, str]] = [
    ("scipy.sparse", "load_npz", "https://github.com/nltk/nltk/pull/3757"),
    ("scipy.sparse", "save_npz", "https://github.com/nltk/nltk/pull/3757"),
    ("scipy.datasets", "face", "https://github.com/nltk/nltk/pull/3757"),
    ("pandas.compat.pickle_compat", "loads", "https://github.com/nltk/nltk/pull/3757"),
    ("_frozen_importlib_external", "spec_from_file_location",
     "https://github.com/nltk/nltk/pull/3757"),
    ("_ctypes", "CFuncPtr", "https://github.com/nltk/nltk/pull/3757"),
    ("numpy.lib.npyio", "recfromtxt", "https://github.com/nltk/nltk/pull/3756"),
    ("numpy.lib.format", "open_memmap", "https://github.com/nltk/nltk/pull/3756"),
    ("numpy.f2py.diagnose", "run_command", "https://github.com/infiniflow/ragflow/issues/1240"),
    ("importlib.util", "module_from_spec", "https://github.com/mmaitre314/picklescan/issues/66"),
    ("torch.package", "PackageImporter", "https://github.com/pytorch/pytorch/issues/194694"),
    ("torch", "os.system", "https://github.com/trailofbits/fickling/pull/60"),
    ("numpy", "test", "https://arxiv.org/abs/2508.19774"),
    ("numpy._pytesttester", "PytestTester", "https://arxiv.org/abs/2508.19774"),
    ("pytest", "main", "https://arxiv.org/abs/2508.19774"),
    ("unittest", "main", "https://arxiv.org/abs/2508.19774"),
    ("unittest.mock", "_importer", "https://arxiv.org/abs/2508.19774"),
    ("torch.utils.benchmark", "Timer", "https://arxiv.org/abs/2508.19774"),
    ("torch.onnx", "export", "https://arxiv.org/abs/2508.19774"),
    ("torch.profiler", "profile", "https://arxiv.org/abs/2508.19774"),
    ("torch.cuda.memory", "_dump_snapshot", "https://arxiv.org/abs/2508.19774"),
    ("torch._C", "_load_for_lite_interpreter", "https://arxiv.org/abs/2508.19774"),
    ("torch._weights_only_unpickler", "load", "https://arxiv.org/abs/2508.19774"),
    ("sklearn.externals", "joblib.load", "https://arxiv.org/abs/2508.19774"),
    ("logging", "basicConfig", "https://arxiv.org/abs/2508.19774"),
    ("mailbox", "Maildir", "https://arxiv.org/abs/2508.19774"),
    ("_osx_support", "_read_output", "https://arxiv.org/abs/2508.19774"),
    ("concurrent.futures", "ProcessPoolExecutor", "https://arxiv.org/abs/2508.19774"),
    ("transformers", "AutoModel.from_pretrained", "https://arxiv.org/abs/2508.19774"),
    ("xgboost", "Booster.load_model", "https://arxiv.org/abs/2508.19774"),
    ("copy", "_reconstruct", "https://github.com/trailofbits/fickling/pull/210"),
    ("builtins", "map", "https://github.com/trailofbits/fickling/issues/205"),
    ("itertools", "starmap", "https://github.com/trailofbits/fickling/issues/205"),
]


@pytest.mark.parametrize(("module", "qualname", "source"), LIBRARY_SINKS,
                         ids=[f"{m}.{q}" for m, q, _ in LIBRARY_SINKS])
def test_library_sink(module: str, qualname: str, source: str, marker_command: str) -> None:
    """Each was only MEDIUM (not allowlisted) before; it runs code, touches files or loads."""
    assert source.startswith("https://")
    assert_flagged(scan(call(module, qualname, marker_command)), qualname.rsplit(".", 1)[-1])


# ----------------------------------------------------------------- allowlisted side effects


def test_kmeans_single_lloyd_called_at_load_corrupts_memory() -> None:
    """An allowlisted *reference* called while loading: unchecked native loops.

    ``_kmeans_single_lloyd`` is allowlisted because BisectingKMeans keeps it as an
    attribute; called by REDUCE with centers narrower than X it writes out of bounds
    (checked in a subprocess: the interpreter dies with SIGSEGV). PickleBall's point:
    allow what loading needs, https://arxiv.org/abs/2508.15987
    """
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    x, weights, centers = np.ones((8, 64)), np.ones(1), np.zeros((2, 1))
    payload = pickle.dumps(_Reduce(_kmeans_single_lloyd, x, weights, centers, 3, False, 1e-4, 1),
                           protocol=4)
    result = scan(payload)
    assert_flagged(result, "_kmeans_single_lloyd", rules={"MW-PKL-002"}, severity=Severity.MEDIUM)


def test_numpy_ufunc_called_at_load_is_not_silent() -> None:
    """``numpy.add`` is allowlisted as an estimator parameter, not as a load-time call."""
    result = scan(PROTO4 + stack_glob("numpy", "add") + b"(" + ustr("a") + ustr("b") + b"tR.")
    assert_flagged(result, "numpy.add", rules={"MW-PKL-002"}, severity=Severity.MEDIUM)


def test_bisecting_kmeans_keeps_its_reference_clean() -> None:
    """The reference itself (a GLOBAL, never called) stays SAFE."""
    from sklearn.cluster import BisectingKMeans

    model = BisectingKMeans(n_clusters=2, random_state=0).fit(np.arange(20.0).reshape(10, 2))
    result = scan(pickle.dumps(model, protocol=4))
    assert worst(result) < Severity.MEDIUM, describe(result)


def test_randomstate_ctor_calls_computed_callable(marker_command: str) -> None:
    """``__randomstate_ctor(name, ctor)`` calls ``ctor(name)`` (numpy/random/_pickle.py).

    Checked in a subprocess: ``__randomstate_ctor(cmd, os.system)`` runs the command and
    returns a working RandomState. A computed callable in that position is reflection.
    """
    computed = stack_glob("torch.nn.modules.activation", "ReLU") + b")R"
    payload = (PROTO4 + stack_glob("numpy.random._pickle", "__randomstate_ctor")
               + b"(" + ustr(marker_command) + computed + b"tR.")
    assert_flagged(scan(payload), None, rules={"MW-PKL-003"}, severity=Severity.HIGH)


def test_randomstate_ctor_calls_reference_only_function() -> None:
    payload = (PROTO4 + stack_glob("numpy.random._pickle", "__generator_ctor")
               + b"(" + ustr("x") + stack_glob("numpy", "add") + b"tR.")
    assert_flagged(scan(payload), "numpy.add", rules={"MW-PKL-002"}, severity=Severity.MEDIUM)


# ----------------------------------------------------------------- functools.partial


def test_partial_of_allowlisted_class_is_clean() -> None:
    """timm-style ``norm_layer=partial(nn.LayerNorm, eps=1e-6)`` kept on a whole module."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    model.norm_layer = functools.partial(torch.nn.LayerNorm, eps=1e-6)  # type: ignore[assignment]
    result = scan(torch_saved(model), "model.pt")
    assert worst(result) < Severity.MEDIUM, describe(result)


def test_partial_of_dangerous_callable_stays_critical(marker_command: str) -> None:
    """Stored, not called: still CRITICAL because of what it wraps."""
    payload = (PROTO4 + stack_glob("functools", "partial") + stack_glob("os", "system")
               + ustr(marker_command) + b"\x86R.")
    assert_flagged(scan(payload), "os.system")


def test_partial_build_state_swaps_the_function(marker_command: str) -> None:
    """``partial(nn.ReLU)`` whose BUILD state ``(os.system, (cmd,), {}, None)`` replaces it."""
    state = (b"(" + stack_glob("os", "system") + b"(" + ustr(marker_command) + b"t}Nt")
    payload = (PROTO4 + stack_glob("functools", "partial")
               + stack_glob("torch.nn.modules.activation", "ReLU") + b"\x85R" + state + b"b.")
    assert_flagged(scan(payload), "os.system")


def test_partial_called_at_load_stays_flagged() -> None:
    """Calling the partial while loading is a computed call, whatever it wraps."""
    payload = (PROTO4 + stack_glob("functools", "partial")
               + stack_glob("torch.nn.modules.activation", "ReLU") + b"\x85R)R.")
    assert_flagged(scan(payload), None, rules={"MW-PKL-003"}, severity=Severity.HIGH)


def test_partial_of_unknown_class_is_medium() -> None:
    payload = (PROTO4 + stack_glob("functools", "partial") + stack_glob("mylib.layers", "Norm")
               + b"\x85R.")
    result = scan(payload)
    assert worst(result) == Severity.MEDIUM, describe(result)


# ----------------------------------------------------------------- real checkpoints stay clean


def _lightning_like() -> dict[str, object]:
    model = torch.nn.Linear(4, 2)
    # AdamW.state_dict() after a step, written out: building an optimizer imports
    # torch._dynamo, which the test guard's pickle.Unpickler replacement breaks.
    optimizer = {
        "state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p),
                      "exp_avg_sq": torch.zeros_like(p)}
                  for i, p in enumerate(model.parameters())},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01,
                          "amsgrad": False, "maximize": False, "foreach": None,
                          "capturable": False, "differentiable": False, "fused": None,
                          "params": [0, 1]}],
    }
    scheduler = {"T_max": 10, "eta_min": 0.0, "base_lrs": [1e-3], "last_epoch": 3,
                 "_step_count": 4, "_get_lr_called_within_step": False, "_last_lr": [9e-4]}
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.5.0",
        "state_dict": model.state_dict(),
        "optimizer_states": [optimizer],
        "lr_schedulers": [scheduler],
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {
            "best_model_score": torch.tensor(0.25), "best_model_path": "epoch=3.ckpt"},
            "EMA": {"decay": 0.999, "shadow": ema}},
        "hyper_parameters": {"lr": 1e-3, "layers": [4, 2], "activation": "relu"},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 3}}}},
        "hparams_name": "kwargs",
    }


BENIGN: dict[str, Any] = {
    "lightning_checkpoint": _lightning_like,
    "peft_lora_state_dict": lambda: collections.OrderedDict(
        (f"base_model.model.layers.{i}.q_proj.lora_{ab}.weight", torch.zeros(4, 2))
        for i in range(2) for ab in "AB"),
    "argparse_namespace_args": lambda: {"args": argparse.Namespace(lr=0.1, seed=1, dirs=["a"])},
    "amp_grad_scaler_state": lambda: {"scaler": torch.amp.GradScaler("cpu").state_dict()},
    "torch_generator": lambda: torch.Generator().manual_seed(7),
    "rng_states": lambda: {"torch": torch.get_rng_state(), "numpy": np.random.get_state()},
    "numpy_random_state": lambda: np.random.RandomState(0),
    "numpy_generator": lambda: np.random.default_rng(0),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_checkpoint_is_clean(name: str) -> None:
    result = scan(torch_saved(BENIGN[name]()), "checkpoint.pt")
    assert worst(result) < Severity.MEDIUM, describe(result)
