"""Catalogue of dangerous capabilities a pickle can import, and why each one is dangerous.

The allowlist (`allowlist.py`) decides what is SAFE; this catalogue only decides which
imports are worse than *unknown*: it turns a MEDIUM "not on the allowlist" into a
CRITICAL "this imports process execution". Every entry names the capability a user is
shown, so a finding explains itself.

Entries are dotted *prefixes* matched on segment boundaries against
``module.qualname``: ``"os"`` covers ``os.system`` and ``os.path.join``; ``"numpy.load"``
covers only ``numpy.load`` (and attributes reached through it). Prefixes stand for whole
modules where nothing in the module is needed by real checkpoints (``subprocess``,
``pdb``), and for exact callables inside libraries whose other parts are legitimate
(``torch.hub``, ``numpy.load``, ``joblib.load``): ML libraries carry their own gadgets.

Sources, besides the standard library documentation: the unsafe-globals lists and
advisories of picklescan (https://github.com/mmaitre314/picklescan/security), fickling
(https://github.com/trailofbits/fickling/security) and ModelAudit; JFrog's PickleScan
zero-day write-up (https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BROWSER",
    "CODE",
    "DANGEROUS_NAMES",
    "DANGEROUS_PREFIXES",
    "DESERIALIZE",
    "FFI",
    "FILE",
    "IMPORT",
    "INDIRECT",
    "INSTALL",
    "MODULE_ALIASES",
    "NETWORK",
    "PROCESS",
    "REFLECTION",
    "STATE",
    "lookup",
]

# Capabilities: short phrases completed by "gives ..." in a finding's message.
PROCESS: Final = "process execution"
FILE: Final = "file system access"
NETWORK: Final = "network access"
IMPORT: Final = "import of arbitrary modules"
CODE: Final = "evaluation of arbitrary Python code"
FFI: Final = "native code execution through a foreign-function interface"
DESERIALIZE: Final = "nested deserialization (a second, unchecked load)"
REFLECTION: Final = "reflection: reaching arbitrary attributes by name"
INDIRECT: Final = "call indirection used to hide calls from scanners"
STATE: Final = "modification of interpreter-wide state"
INSTALL: Final = "installation of packages (runs their code)"
BROWSER: Final = "launching a web browser or external viewer"

# Modules that are other names for a catalogued module (C accelerators, platform
# implementations, conventional import aliases reached through attribute traversal).
MODULE_ALIASES: Final[dict[str, str]] = {
    "posix": "os",
    "nt": "os",
    "_io": "io",
    "_pyio": "io",
    "_operator": "operator",
    "_functools": "functools",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "_socket": "socket",
    "_ssl": "ssl",
    "_ctypes": "ctypes",
    "_imp": "importlib",
    "_frozen_importlib": "importlib",
    "_frozen_importlib_external": "importlib",
    "__builtin__": "builtins",
    "_subprocess": "subprocess",
    "_os": "os",
    "_sys": "sys",
    "np": "numpy",
    "pd": "pandas",
}

_D = dict[str, str]

_PROCESS: Final[_D] = {p: PROCESS for p in (
    "os", "subprocess", "_posixsubprocess", "pty", "commands", "popen2", "platform",
    "multiprocessing", "_multiprocessing", "concurrent.futures.process", "asyncio",
    "_winapi", "_xxsubinterpreters", "_interpreters", "_xxinterpchannels",
    "concurrent.interpreters",
    "distutils.spawn", "distutils.util.execute", "setuptools", "pkg_resources", "pipes", "mailcap",
    "uuid._get_command_stdout", "uuid._popen", "test.support", "test.libregrtest",
    "torch.utils.collect_env", "torch.utils.bottleneck", "torch.multiprocessing",
    "torch.testing._internal", "torch.distributed", "torch._inductor", "torch.utils.cpp_extension",
    "numpy.distutils", "numpy.testing", "pydoc", "webbrowser", "antigravity", "turtledemo",
    "sklearn.utils._show_versions", "sklearn._build_utils", "sklearn.utils._testing",
    "sklearn.utils.estimator_checks", "xgboost.testing", "lightgbm.libpath",
    "joblib._parallel_backends",
    "joblib.externals.loky", "joblib.pool", "joblib.parallel",
    # private helpers that run compilers / system tools (Hide and Seek, arXiv 2508.19774)
    "_osx_support", "_aix_support", "concurrent.futures.ProcessPoolExecutor",
)}

_FILE: Final[_D] = {p: FILE for p in (
    "builtins.open", "builtins.file", "io.open", "io.open_code", "io.FileIO", "codecs.open",
    "shutil", "tempfile", "glob", "fileinput", "filecmp", "zipfile", "tarfile", "gzip.open",
    "bz2.open", "lzma.open", "linecache", "mmap", "fcntl", "dbm", "sqlite3", "_sqlite3",
    "logging.FileHandler", "logging.handlers", "logging.config", "distutils.file_util",
    "distutils.dir_util", "distutils.archive_util",
    "pathlib.Path.", "pathlib.PosixPath.", "pathlib.WindowsPath.",  # methods, see _PATH_METHODS
    "numpy.save", "numpy.savez", "numpy.savez_compressed", "numpy.savetxt", "numpy.fromfile",
    "numpy.memmap", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromregex", "numpy.recfromcsv",
    "numpy.recfromtxt", "numpy.ndarray.tofile", "numpy.ndarray.dump", "numpy.rec.fromfile",
    "numpy.core.records.fromfile",
    "numpy._core.records.fromfile", "numpy.core.memmap", "numpy._core.memmap",
    "torch.save", "torch.serialization.save", "torch.from_file", "torch.UntypedStorage.from_file",
    "torch.storage.UntypedStorage.from_file", "torch.utils.tensorboard",
    "torch.utils.data.datapipes",
    "torch.utils.data.datasets", "torch.utils.model_zoo",
    "joblib.dump", "joblib.numpy_pickle.dump", "joblib.Memory", "joblib.memory",
    "xgboost.core.Booster.save_model", "xgboost.core.Booster.load_model",
    "lightgbm.basic.Booster.save_model", "pandas.io", "h5py", "tensorflow.io",
    "tensorflow.python.lib.io", "tensorflow.raw_ops.ReadFile", "tensorflow.raw_ops.WriteFile",
    # file sinks inside otherwise allowed libraries (nltk GHSA-c59x-vh6j-3w8v follow-ups)
    "scipy.sparse.load_npz", "scipy.sparse.save_npz", "scipy.sparse._matrix_io", "scipy.io",
    "torch.onnx", "torch.profiler", "torch.autograd.profiler", "torch.cuda.memory._dump_snapshot",
    "torch.serialization._open_file", "torch.serialization._open_zipfile_reader",
    "torch.serialization._open_zipfile_writer", "torchvision.io", "joblib._store_backends",
    "logging.basicConfig", "mailbox", "tokenize.open",
)}

_NETWORK: Final[_D] = {p: NETWORK for p in (
    "socket", "socketserver", "ssl", "select", "selectors", "urllib", "urllib2", "urllib3",
    "http", "httplib", "httpx", "requests", "aiohttp", "ftplib", "smtplib", "smtpd", "poplib",
    "imaplib", "nntplib", "telnetlib", "xmlrpc", "xmlrpclib", "SimpleXMLRPCServer", "wsgiref",
    "huggingface_hub", "fsspec", "sklearn.datasets", "boto3", "botocore", "paramiko",
    "keras.utils.get_file",
    "keras.src.utils.file_utils", "keras.utils.data_utils", "tensorflow.keras.utils.get_file",
    "numpy.DataSource", "numpy.lib._datasource", "numpy.lib.npyio.DataSource",
    "torch.hub", "torch.utils.model_zoo", "torchvision.datasets", "torchvision.models.utils",
    "transformers.utils.hub", "datasets", "scipy.datasets",
)}

_IMPORT: Final[_D] = {p: IMPORT for p in (
    "builtins.__import__", "importlib", "imp", "runpy", "pkgutil", "zipimport", "sys",
    "site", "sysconfig", "numpy.core._ufunc_reconstruct", "numpy._core._ufunc_reconstruct",
    "numpy.lib.utils", "pydoc.locate", "torch.package", "torch.ops", "torch._ops",
    "torch.classes", "torch._classes", "transformers.dynamic_module_utils",
    "keras.src.saving.serialization_lib", "keras.saving.deserialize_keras_object",
    "keras.utils.deserialize_keras_object", "sklearn.utils.discovery",
    "sklearn.utils._estimator_html_repr", "numpy.lib._utils_impl",
    # unittest.main / TestProgram import modules by name; unittest.mock._importer too
    "unittest",
)}

_CODE: Final[_D] = {p: CODE for p in (
    "builtins.eval", "builtins.exec", "builtins.execfile", "builtins.compile",
    "builtins.input", "builtins.breakpoint", "builtins.help", "builtins.reload",
    "builtins.exit", "builtins.quit", "builtins.__build_class__",
    "code", "codeop", "pdb", "bdb", "timeit", "cProfile", "profile", "trace", "doctest",
    "cgitb", "typing._eval_type", "typing.ForwardRef", "typing.get_type_hints",
    "dataclasses._create_fn",
    "collections.namedtuple", "numpy.f2py", "numpy.testing._private.utils.runstring",
    "pandas.eval", "pandas.core.computation", "pandas.DataFrame.eval", "pandas.DataFrame.query",
    "numexpr", "sympy", "torch.fx", "torch._dynamo", "torch.jit", "torch._jit_internal",
    "torch.compile", "torch.export", "torch.utils._config_module",
    "torch.fx.experimental.symbolic_shapes", "torch.jit.unsupported_tensor_ops",
    "torch.library", "torch._library", "torch._higher_order_ops", "torch._export",
    "lib2to3", "idlelib", "jinja2", "mako", "IPython", "ipykernel", "tkinter", "_tkinter", "turtle",
    "keras.layers.Lambda", "keras.src.layers.core.lambda_layer", "tensorflow.keras.layers.Lambda",
    # test runners import and run arbitrary test modules and plugins given on their
    # command line (numpy.test(extra_argv=[...]) is pytest.main); Timer compiles its stmt
    "numpy._pytesttester", "numpy.test", "scipy.test", "scipy._lib._testutils", "pytest",
    "_pytest", "nose", "torch.utils.benchmark",
)}

_TYPES: Final[_D] = {p: CODE for p in (
    "types.CodeType", "types.FunctionType", "types.LambdaType", "types.MethodType",
    "types.ModuleType", "types.new_class", "types.prepare_class", "types.BuiltinFunctionType",
    "types.BuiltinMethodType", "types.MethodWrapperType", "types.WrapperDescriptorType",
    "types.MethodDescriptorType", "types.ClassMethodDescriptorType", "types.GetSetDescriptorType",
    "types.MemberDescriptorType", "types.DynamicClassAttribute", "types.coroutine",
    "builtins.type", "builtins.classmethod", "builtins.staticmethod", "builtins.property",
    "builtins.super", "abc.ABCMeta", "functools.singledispatch", "enum.EnumMeta", "enum.EnumType",
)}

_FFI: Final[_D] = {p: FFI for p in (
    "ctypes", "cffi", "_cffi_backend", "numpy.ctypeslib", "numpy._core._internal._ctypes",
    "numpy.core._internal._ctypes", "torch.cuda.cudart", "torch._C._jit_",
)}

_DESERIALIZE: Final[_D] = {p: DESERIALIZE for p in (
    "pickle", "marshal", "shelve", "dill", "cloudpickle",
    "jsonpickle", "yaml", "ruamel", "pickletools", "xmlrpc.client.loads", "joblib.load",
    "joblib.numpy_pickle.load", "joblib.numpy_pickle.read_array", "joblib.numpy_pickle_compat",
    "numpy.load", "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.loads",
    "numpy.core.multiarray.loads", "numpy._core.multiarray.loads",
    "torch.load", "torch.serialization.load", "torch.serialization._load",
    "torch.serialization._legacy_load", "torch.storage._load_from_bytes",
    "torch._utils._load_from_bytes", "torch.utils.data.datapipes.utils.decoder",
    "numpy.lib.format", "numpy.lib._format_impl",
    "torch.distributed.checkpoint", "pandas.read_pickle", "pandas.read_csv", "pandas.read_table",
    "pandas.read_json", "pandas.read_html", "pandas.read_xml", "pandas.read_excel",
    "pandas.read_parquet", "pandas.read_feather", "pandas.read_hdf", "pandas.read_sql",
    "pandas.read_fwf", "pandas.read_orc", "pandas.read_sas", "pandas.read_spss",
    "pandas.read_stata", "pandas.read_clipboard", "pandas.read_gbq",
    "keras.models.load_model", "keras.saving", "keras.src.saving",
    "tensorflow.keras.models.load_model",
    "tensorflow.saved_model.load", "tensorflow.keras.models", "onnx.load",
    "safetensors.torch.load_file",
    "skops.io.load", "pandas.compat.pickle_compat", "torch._weights_only_unpickler",
    "torch._C._load_for_lite_interpreter", "torch._C.import_ir_module",
    "torch._C.import_ir_module_from_buffer", "sklearn.externals", "sklearn.utils._joblib",
)}

_REFLECTION: Final[_D] = {p: REFLECTION for p in (
    "builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.hasattr",
    "builtins.vars", "builtins.globals", "builtins.locals", "builtins.dir",
    "operator", "inspect", "gc", "torch._dynamo.guards",
)}

_INDIRECT: Final[_D] = {p: INDIRECT for p in (
    "functools", "weakref", "threading", "_thread", "atexit", "contextlib", "asyncio.events",
    "sched", "concurrent.futures.thread", "concurrent.futures.ThreadPoolExecutor",
    # builtins and helpers that call a callable they are handed (list(map(f, xs)) runs f)
    "builtins.map", "builtins.filter", "builtins.iter", "builtins.next", "builtins.sorted",
    "itertools", "copy._reconstruct", "torch.cuda._lazy_call",
)}

_STATE: Final[_D] = {p: STATE for p in (
    "signal", "builtins.exit", "builtins.quit", "resource", "faulthandler",
    "copyreg.dispatch_table",
    "copyreg.add_extension", "copyreg.pickle", "copyreg.constructor", "copyreg.remove_extension",
    "copyreg.clear_extension_cache", "copyreg._extension_registry", "copyreg._inverted_registry",
    "copyreg._extension_cache", "modelward", "picklescan", "fickling", "modelscan", "modelaudit",
)}

_INSTALL: Final[_D] = {p: INSTALL for p in (
    "pip", "ensurepip", "venv", "virtualenv", "conda", "distutils",
)}

_BROWSER: Final[_D] = {p: BROWSER for p in ("webbrowser", "antigravity", "turtledemo")}

# Later tables win on duplicate keys: the most specific explanation is kept.
DANGEROUS_PREFIXES: Final[dict[str, str]] = {
    **_INSTALL, **_PROCESS, **_FILE, **_NETWORK, **_IMPORT, **_CODE, **_TYPES, **_FFI,
    **_DESERIALIZE, **_REFLECTION, **_INDIRECT, **_STATE, **_BROWSER,
}

# Attribute names that are dangerous sinks wherever they are found (last segment of the
# qualified name) when the module is not on the allowlist: a package that re-exports or
# wraps ``os.system`` under its own module path is still a process launcher.
DANGEROUS_NAMES: Final[dict[str, str]] = {
    **{n: PROCESS for n in (
        "system", "popen", "popen2", "popen3", "popen4", "Popen", "spawn", "spawnl", "spawnle",
        "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
        "posix_spawnp", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp",
        "execvpe", "check_output", "check_call", "getoutput", "getstatusoutput", "fork",
        "forkpty", "startfile", "run_command", "runcommand", "create_subprocess_exec",
        "create_subprocess_shell", "pipepager",
    )},
    **{n: CODE for n in (
        "eval", "exec", "execfile", "runcode", "runsource", "run_code", "runctx", "run_string",
        "runstring", "exec_module", "load_inline", "compile_file", "evaluate_guards_expression",
        "execWrapper",
    )},
    **{n: IMPORT for n in ("__import__", "import_module", "resolve_name", "locate", "find_class",
                           "run_path", "run_module", "load_source", "load_module")},
    **{n: DESERIALIZE for n in ("unsafe_load", "full_load", "load_pickle", "read_pickle",
                                "loads_pickle", "unpickle", "from_pretrained", "load_model")},
    **{n: FILE for n in ("save_model", "savefig", "imwrite", "write_file")},
    **{n: NETWORK for n in ("hf_hub_download", "snapshot_download", "download_url_to_file",
                            "urlretrieve", "urlopen", "load_state_dict_from_url", "get_file")},
    **{n: REFLECTION for n in ("getattr", "attrgetter", "methodcaller", "setattr", "delattr")},
}

# pathlib: constructing a path is harmless; its methods touch the file system.
_PATH_METHODS: Final[frozenset[str]] = frozenset({
    "open", "read_text", "read_bytes", "write_text", "write_bytes", "touch", "mkdir", "rmdir",
    "unlink", "rename", "replace", "chmod", "lchmod", "symlink_to", "hardlink_to", "link_to",
    "iterdir", "glob", "rglob", "walk", "exists", "stat", "owner", "group", "readlink",
    "expanduser", "home", "cwd", "resolve", "samefile", "copy", "move", "copy_into", "move_into",
})


# Exact names under a dangerous prefix that are harmless: TorchScript's pickler emits these
# identity helpers in every archive (`.debug_pkl`, `constants.pkl`), and its C++ unpickler
# treats them natively; each only returns its argument (torch/jit/_pickle.py).
EXEMPT: Final[frozenset[str]] = frozenset({
    "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensor_from_id", "torch.jit._pickle.restore_type_tag",
})


def _match(dotted: str) -> tuple[str, str] | None:
    """Longest catalogue prefix of `dotted` on a segment boundary, with its capability."""
    if dotted in EXEMPT:
        return None
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        capability = DANGEROUS_PREFIXES.get(key)
        if capability is not None:
            return key, capability
        # Entries ending in "." (pathlib classes) match their methods only.
        if end < len(parts) and key + "." in DANGEROUS_PREFIXES and parts[end] in _PATH_METHODS:
            return key + "." + parts[end], DANGEROUS_PREFIXES[key + "."]
    return None


def lookup(module: str, qualname: str) -> tuple[str, str] | None:
    """Find `module.qualname` in the catalogue.

    Module aliases are resolved first (``posix.system`` is ``os.system``), and every
    attribute traversal inside the qualified name is checked on its own, since a loader
    resolving ``torch`` / ``os.system`` reaches ``os.system`` through torch's namespace.

    Args:
        module: the module the pickle imports from (already normalised for Python 2 names).
        qualname: the attribute path inside it.

    Returns:
        ``(matched catalogue entry, capability)``, or ``None`` when not catalogued.
    """
    mod_parts = module.split(".")
    alias = MODULE_ALIASES.get(mod_parts[0])
    candidates = [f"{module}.{qualname}"]
    if alias is not None:
        candidates.append(".".join([alias, *mod_parts[1:], qualname]))
    qual_parts = qualname.split(".")
    for start in range(len(qual_parts) - 1):
        inner = qual_parts[start:]
        inner_alias = MODULE_ALIASES.get(inner[0])
        candidates.append(".".join(inner))
        if inner_alias is not None:
            candidates.append(".".join([inner_alias, *inner[1:]]))
    for dotted in candidates:
        found = _match(dotted)
        if found is not None:
            return found
    return None
