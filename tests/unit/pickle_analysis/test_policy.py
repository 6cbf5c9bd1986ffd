"""The pickle classifier: allowlist, catalogue, normalisation and the user's policy."""

from __future__ import annotations

import pytest

from modelward.pickle_analysis import catalogue
from modelward.pickle_analysis.allowlist import SAFE_GLOBALS
from modelward.pickle_analysis.policy import Verdict, classify, normalize
from modelward.policy import Policy


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "FloatStorage"),
        ("torch", "Size"),
        ("torch", "bfloat16"),
        ("torch.nn.modules.linear", "Linear"),
        ("torch.nn.modules.container", "Sequential"),
        ("torch.optim.adamw", "AdamW"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "dtype"),
        ("numpy", "log1p"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("sklearn.tree._tree", "Tree"),
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.pipeline", "Pipeline"),
        ("sklearn.neighbors._kd_tree", "KDTree"),
        ("xgboost.sklearn", "XGBClassifier"),
        ("lightgbm.basic", "Booster"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("argparse", "Namespace"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("_codecs", "encode"),
        ("builtins", "set"),
        ("pathlib", "PosixPath"),
    ],
)
def test_checkpoint_callables_are_safe(module: str, name: str) -> None:
    assert classify(module, name).verdict is Verdict.SAFE


def test_weights_only_unpickler_set_is_allowed() -> None:
    """Everything torch 2.13's weights-only unpickler accepts is on the allowlist."""
    wou = pytest.importorskip("torch._weights_only_unpickler")
    missing = {
        name for name in wou._get_allowed_globals()
        if classify(*name.rsplit(".", 1)).verdict is not Verdict.SAFE
    }
    assert not missing


@pytest.mark.parametrize(
    ("module", "name", "capability"),
    [
        ("os", "system", catalogue.PROCESS),
        ("posix", "system", catalogue.PROCESS),
        ("nt", "spawnv", catalogue.PROCESS),
        ("subprocess", "Popen", catalogue.PROCESS),
        ("_posixsubprocess", "fork_exec", catalogue.PROCESS),
        ("pty", "spawn", catalogue.PROCESS),
        ("commands", "getoutput", catalogue.PROCESS),  # Python 2 name of subprocess
        ("builtins", "eval", catalogue.CODE),
        ("__builtin__", "exec", catalogue.CODE),
        ("builtins", "open", catalogue.FILE),
        ("_io", "FileIO", catalogue.FILE),
        ("shutil", "rmtree", catalogue.FILE),
        ("socket", "create_connection", catalogue.NETWORK),
        ("urllib.request", "urlopen", catalogue.NETWORK),
        ("builtins", "__import__", catalogue.IMPORT),
        ("importlib", "import_module", catalogue.IMPORT),
        ("pkgutil", "resolve_name", catalogue.IMPORT),
        ("types", "CodeType", catalogue.CODE),
        ("marshal", "loads", catalogue.DESERIALIZE),
        ("ctypes", "CDLL", catalogue.FFI),
        ("pickle", "loads", catalogue.DESERIALIZE),
        ("_pickle", "loads", catalogue.DESERIALIZE),
        ("cPickle", "loads", catalogue.DESERIALIZE),
        ("torch.storage", "_load_from_bytes", catalogue.DESERIALIZE),
        ("torch", "load", catalogue.DESERIALIZE),
        ("numpy", "load", catalogue.DESERIALIZE),
        ("joblib", "load", catalogue.DESERIALIZE),
        ("yaml", "unsafe_load", catalogue.DESERIALIZE),
        ("builtins", "getattr", catalogue.REFLECTION),
        ("operator", "attrgetter", catalogue.REFLECTION),
        ("_operator", "methodcaller", catalogue.REFLECTION),
        ("functools", "partial", catalogue.INDIRECT),
        ("torch.hub", "load", catalogue.NETWORK),
        ("torch.utils.cpp_extension", "load_inline", catalogue.PROCESS),
        ("torch._inductor.codecache", "compile_file", catalogue.PROCESS),
        ("torch.fx.graph_module", "reduce_graph_module", catalogue.CODE),
        ("numpy.f2py.crackfortran", "getlincoef", catalogue.CODE),
        ("numpy.testing._private.utils", "runstring", catalogue.CODE),
        ("sklearn.datasets", "fetch_openml", catalogue.NETWORK),
        ("pip", "main", catalogue.INSTALL),
        ("ensurepip", "_run_pip", catalogue.INSTALL),
        ("timeit", "timeit", catalogue.CODE),
        ("cProfile", "run", catalogue.CODE),
        ("code", "InteractiveInterpreter.runcode", catalogue.CODE),
        ("asyncio.unix_events", "_UnixSubprocessTransport", catalogue.PROCESS),
        ("webbrowser", "open", catalogue.BROWSER),
        ("pathlib", "Path.write_text", catalogue.FILE),
        ("_interpreters", "run_string", catalogue.PROCESS),
    ],
)
def test_catalogue_explains_dangerous_callables(module: str, name: str, capability: str) -> None:
    result = classify(module, name)
    assert result.verdict is Verdict.DANGEROUS
    assert result.capability == capability
    assert capability in result.reason


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch", "os.system"),  # protocol 4 resolves dotted names through torch's namespace
        ("posixpath", "os.system"),
        ("builtins", "getattr.__self__"),
        ("builtins", "object.__subclasses__"),
        ("collections", "OrderedDict.__init__.__globals__"),
        ("sklearn.tree._tree", "Tree.__reduce__"),
        ("mylib", "system"),  # a sink by name in an unknown module
        ("somepkg.__main__", "main"),
        ("", "system"),
        ("os", ""),
        ("numpy", "..load"),
    ],
)
def test_traversal_and_reflection_are_dangerous(module: str, name: str) -> None:
    assert classify(module, name).verdict is Verdict.DANGEROUS


@pytest.mark.parametrize(
    ("module", "name"),
    [("__main__", "Net"), ("mylib.models", "ResNet"), ("numpy", "polyfit"), ("builtins", "print")],
)
def test_unlisted_harmless_names_are_unknown(module: str, name: str) -> None:
    result = classify(module, name)
    assert result.verdict is Verdict.UNKNOWN
    assert result.capability is None


def test_python2_names_are_judged_as_the_loader_maps_them() -> None:
    assert normalize("__builtin__", "xrange") == ("builtins", "range")
    assert normalize("copy_reg", "_reconstructor") == ("copyreg", "_reconstructor")
    assert classify("__builtin__", "set").verdict is Verdict.SAFE
    assert classify("copy_reg", "_reconstructor").verdict is Verdict.SAFE
    reduce = classify("__builtin__", "reduce")  # fix_imports maps it to functools.reduce
    assert reduce.verdict is Verdict.DANGEROUS
    assert reduce.name == "functools.reduce"


def test_policy_lifts_unknown_but_never_dangerous() -> None:
    policy = Policy(allowed_globals=frozenset({"mylib.models.ResNet", "os.system",
                                               "builtins.object.__subclasses__"}))
    assert classify("mylib.models", "ResNet", policy).verdict is Verdict.SAFE
    assert classify("mylib.models", "ResNet").verdict is Verdict.UNKNOWN
    assert classify("os", "system", policy).verdict is Verdict.DANGEROUS
    assert classify("builtins", "object.__subclasses__", policy).verdict is Verdict.DANGEROUS


def test_flags_for_the_machine() -> None:
    assert classify("copyreg", "_reconstructor").calls_arguments
    assert classify("torch._tensor", "_rebuild_from_type_v2").calls_arguments
    assert not classify("collections", "OrderedDict").calls_arguments
    assert classify("pickle", "loads").deserializes_argument
    assert classify("torch.storage", "_load_from_bytes").deserializes_argument
    assert not classify("os", "system").deserializes_argument


def test_allowlist_is_exact_and_free_of_gadgets() -> None:
    """No allowlisted name is also catalogued, and no entry covers a whole package."""
    overlap = {n for n in SAFE_GLOBALS if catalogue.lookup(*n.rsplit(".", 1)) is not None}
    assert not overlap
    assert not [n for n in SAFE_GLOBALS if n.endswith(".*") or "datasets" in n or "_testing" in n]


def test_torchscript_identity_helpers_are_safe_but_torch_jit_is_not() -> None:
    """TorchScript pickles use torch.jit._pickle.build_* helpers; torch.jit.load stays dangerous."""
    from modelward.pickle_analysis.policy import Verdict, classify

    assert classify("torch.jit._pickle", "build_intlist").verdict is Verdict.SAFE
    assert classify("torch.jit._pickle", "restore_type_tag").verdict is Verdict.SAFE
    assert classify("torch.jit", "load").verdict is Verdict.DANGEROUS
    assert classify("torch.jit._pickle", "something_else").verdict is Verdict.DANGEROUS
