"""One test per publicly reported way a malicious pickle slipped past a scanner.

Sources: picklescan's advisories (https://github.com/mmaitre314/picklescan/security),
fickling's (https://github.com/trailofbits/fickling/security) and issues, ModelAudit's
research on both, JFrog's and Trail of Bits' write-ups. Every sample is built opcode by
opcode in the test; its payload only ever touches the `marker_command` file, and the
autouse guard in tests/conftest.py fails the test if that file appears.
"""

from __future__ import annotations

import struct

import pytest
from _regression_asserts import assert_flagged
from _regression_pickles import (
    PROTO2,
    PROTO4,
    args,
    bbytes,
    call,
    glob,
    stack_glob,
    ustr,
)

from modelward import scan_bytes
from modelward.findings import Severity


def scan(data: bytes, name: str = "model.pkl"):  # type: ignore[no-untyped-def]
    return scan_bytes(data, name, raise_internal=True)


def test_reduce_os_system_baseline(marker_command: str) -> None:
    """The classic payload: GLOBAL os.system + REDUCE.

    https://blog.trailofbits.com/2021/03/15/never-a-dill-moment-exploiting-machine-learning-pickle-files/
    """
    assert_flagged(scan(call("os", "system", marker_command, proto4=False)), "system")


def test_posix_alias_of_os(marker_command: str) -> None:
    """``posix.system`` is what ``pickle.dumps(os.system)`` writes on Linux; denylists keyed on
    ``os`` miss it (picklescan added ``posix``/``nt`` after reports).

    https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py
    """
    assert_flagged(scan(call("posix", "system", marker_command)), "system")


def test_protocol0_obj_pty_spawn(marker_command: str) -> None:
    """Protocol 0 text pickle with OBJ: ``(cpty\\nspawn\\nS"..."\\no.`` (fickling PR #108).

    https://github.com/trailofbits/fickling/pull/108
    """
    payload = b"(cpty\nspawn\nS'" + marker_command.encode() + b"'\no."
    assert_flagged(scan(payload), "pty")


def test_protocol0_inst_subprocess(marker_command: str) -> None:
    """INST opcode (import and call in one text opcode), no PROTO header at all.

    https://github.com/python/cpython/blob/main/Lib/pickletools.py (INST)
    """
    payload = b"(S'" + marker_command.encode() + b"'\nisubprocess\ngetoutput\n."
    assert_flagged(scan(payload), "subprocess")


def test_python2_builtin_module_name(marker_command: str) -> None:
    """``__builtin__.eval`` is mapped to ``builtins.eval`` by fix_imports (protocol < 3).

    https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py (__builtin__)
    """
    code = f"__import__('os').system({marker_command!r})"
    assert_flagged(scan(PROTO2 + glob("__builtin__", "eval") + args(code) + b"R."), "eval")


def test_stack_global_names_from_memo(marker_command: str) -> None:
    """STACK_GLOBAL whose strings come from the memo at non-sequential indexes; picklescan
    paired the wrong memo entries (imaginaryCTF "Safe Pickle", picklescan issue #22).

    https://github.com/mmaitre314/picklescan/issues/22
    """
    payload = (
        PROTO4
        + ustr("os") + b"q\x07" + b"0"  # BINPUT 7, POP
        + ustr("collections") + b"q\x03" + b"0"
        + ustr("system") + b"q\x05" + b"0"
        + b"h\x07" + b"h\x05" + b"\x93"  # BINGET 7, BINGET 5, STACK_GLOBAL -> os.system
        + args(marker_command) + b"R."
    )
    assert_flagged(scan(payload), "system")


def test_stack_global_memo_slot_overwritten(marker_command: str) -> None:
    """A memo slot first holds a harmless name and is overwritten before use; scanners that
    remember the first value see ``collections.OrderedDict``.

    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-9gvj-pp9x-gcfr
    """
    payload = (
        PROTO4
        + ustr("OrderedDict") + b"q\x01" + b"0"
        + ustr("system") + b"q\x01" + b"0"  # same slot, new value
        + ustr("os") + b"h\x01" + b"\x93"
        + args(marker_command) + b"R."
    )
    assert_flagged(scan(payload), "system")


def test_dotted_qualname_traversal_through_allowed_module(marker_command: str) -> None:
    """Protocol 4 resolves dotted names attribute by attribute: ``torch.serialization`` /
    ``os.system`` reaches os.system through a module on the allowlist's side.

    https://github.com/mmaitre314/picklescan/issues/66
    """
    assert_flagged(scan(call("torch.serialization", "os.system", marker_command)), "system")


def test_builtins_subclasses_traversal() -> None:
    """``builtins`` / ``object.__subclasses__``: dunder traversal to arbitrary classes.

    https://github.com/trailofbits/fickling/security/advisories/GHSA-h4rm-mm56-xf63
    """
    payload = PROTO4 + stack_glob("builtins", "object.__subclasses__") + b")R."
    assert_flagged(scan(payload), "__subclasses__")


def test_getattr_chain_on_imported_module(marker_command: str) -> None:
    """``getattr(__import__('os'), 'system')(cmd)``: the callee of the final REDUCE is the
    result of another call, never a GLOBAL.

    https://github.com/mmaitre314/picklescan/issues/66
    """
    payload = (
        PROTO4
        + stack_glob("builtins", "getattr")
        + b"(" + stack_glob("builtins", "__import__") + ustr("os") + b"\x85R"  # __import__('os')
        + ustr("system") + b"tR"  # getattr(<os>, 'system')
        + args(marker_command) + b"R."
    )
    assert_flagged(scan(payload))


def test_operator_attrgetter(marker_command: str) -> None:
    """``operator.attrgetter('system')(<module>)`` (GHSA-m273-6v24-x4m4).

    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-m273-6v24-x4m4
    """
    payload = (
        PROTO4
        + stack_glob("operator", "attrgetter") + ustr("system") + b"\x85R"
        + b"(" + stack_glob("posixpath", "os") + b"tR"  # attrgetter('system')(<os module>)
        + args(marker_command) + b"R."
    )
    assert_flagged(scan(payload), "attrgetter")


def test_private_operator_methodcaller(marker_command: str) -> None:
    """``_operator.methodcaller`` (the C module behind operator) (GHSA-955r-x9j8-7rhh).

    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-955r-x9j8-7rhh
    """
    assert_flagged(scan(call("_operator", "methodcaller", "system", marker_command)),
                   "methodcaller")


def test_functools_partial_wrapper(marker_command: str) -> None:
    """``functools.partial(os.system, cmd)()``: the dangerous callable is an argument.

    https://github.com/trailofbits/fickling/pull/210
    """
    payload = (
        PROTO4 + stack_glob("functools", "partial")
        + b"(" + stack_glob("os", "system") + ustr(marker_command) + b"tR" + b")R."
    )
    assert_flagged(scan(payload), "partial")


def test_pop_hides_call_result(marker_command: str) -> None:
    """The call's result is POPped so the decompiled AST has no use of it; fickling
    reported LIKELY_SAFE (ModelAudit research).

    https://github.com/trailofbits/fickling/security/advisories
    """
    payload = PROTO4 + b"}" + stack_glob("os", "system") + args(marker_command) + b"R0."
    assert_flagged(scan(payload), "system")


def test_payload_before_deliberate_parse_error(marker_command: str) -> None:
    """The payload runs, then an invalid opcode makes pickletools-based scanners give up
    with no result (picklescan "parsing logic flaw").

    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-9gvj-pp9x-gcfr
    """
    payload = PROTO4 + stack_glob("os", "system") + args(marker_command) + b"R" + b"\xff\xfe"
    assert_flagged(scan(payload), "system")


def test_payload_in_second_stacked_pickle(marker_command: str) -> None:
    """A clean pickle, STOP, then a malicious one: loaders reading several objects (legacy
    torch reads five) run it; scanners stopping at the first STOP do not.

    https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py (multiple_pickles)
    """
    clean = PROTO4 + b"}."
    assert_flagged(scan(clean + call("os", "system", marker_command)), "system")


def test_nested_pickle_loads(marker_command: str) -> None:
    """``pickle.loads(b'<inner payload>')``: the payload is bytes inside the pickle
    (GHSA-84r2-jw7c-4r5q). The inner pickle must be analysed too.

    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-84r2-jw7c-4r5q
    """
    inner = call("os", "system", marker_command)
    result = scan(PROTO4 + stack_glob("_pickle", "loads") + b"(" + bbytes(inner) + b"tR.")
    assert_flagged(result, "loads")
    assert_flagged(result, "system", rules={"MW-PKL-001", "MW-PKL-003", "MW-PKL-005"},
                   severity=Severity.HIGH)


def test_torch_storage_load_from_bytes_nested(marker_command: str) -> None:
    """``torch.storage._load_from_bytes`` is a torch.load(weights_only=False) of its bytes:
    what plain ``pickle.dumps(tensor)`` emits, and a nested-deserializer gadget.

    https://nvd.nist.gov/vuln/detail/CVE-2025-32434
    """
    inner = call("os", "system", marker_command, proto4=False)
    payload = PROTO2 + glob("torch.storage", "_load_from_bytes") + b"(" + bbytes(inner) + b"tR."
    assert_flagged(scan(payload), "_load_from_bytes")


def test_build_attribute_poisoning_on_class() -> None:
    """BUILD with slot state on an imported class sets attributes on the class itself,
    rewriting library code in the loading process.

    https://github.com/mmaitre314/picklescan/security/advisories
    """
    payload = (
        PROTO4 + stack_glob("collections", "OrderedDict")
        + b"N}" + ustr("fromkeys") + stack_glob("builtins", "print") + b"s\x86b."
    )
    assert_flagged(scan(payload), rules={"MW-PKL-004"}, severity=Severity.HIGH)


def test_ext_opcode_after_registering_extension(marker_command: str) -> None:
    """``copyreg.add_extension('os', 'system', 240)`` then EXT1 240: the import never
    appears as a GLOBAL.

    https://docs.python.org/3/library/copyreg.html
    """
    payload = (
        PROTO2 + glob("copyreg", "add_extension")
        + b"(" + ustr("os") + ustr("system") + b"K\xf0" + b"tR0"  # add_extension(os, system, 240)
        + b"\x82\xf0" + args(marker_command) + b"R."  # EXT1 240 -> os.system
    )
    assert_flagged(scan(payload), "add_extension")


def test_newobj_ex_on_popen(marker_command: str) -> None:
    """NEWOBJ_EX (protocol 4) constructs ``subprocess.Popen`` without REDUCE.

    https://github.com/python/cpython/blob/main/Lib/pickletools.py (NEWOBJ_EX)
    """
    payload = (
        PROTO4 + stack_glob("subprocess", "Popen")
        + b"(" + ustr("sh") + ustr("-c") + ustr(marker_command) + b"l" + b"\x85" + b"}\x92."
    )
    assert_flagged(scan(payload), "Popen")


def test_disguised_as_bin_weights(marker_command: str) -> None:
    """A raw pickle named ``pytorch_model.bin``: scanners choosing by extension skipped it
    (JFrog: malicious Hugging Face models).

    https://jfrog.com/blog/data-scientists-targeted-by-malicious-hugging-face-ml-models-with-silent-backdoor/
    """
    assert_flagged(scan(call("os", "system", marker_command), "pytorch_model.bin"), "system")


def test_disguised_as_json(marker_command: str) -> None:
    """A pickle with an extension no scanner treats as a model (modelscan extension skip).

    https://github.com/protectai/modelscan
    """
    assert_flagged(scan(call("os", "system", marker_command), "config.json"), "system")


# Callables missing from denylists, each published as a bypass. (module, qualname,
# advisory URL). Built as ``module.qualname(marker_command)`` with protocol 4.
DENYLIST_GAPS: list[tuple[str, str, str]] = [
    ("pip", "main", "https://nvd.nist.gov/vuln/detail/CVE-2025-1716"),
    ("asyncio.unix_events", "_UnixSubprocessTransport",
     "https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcode",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-r8g5-cgf2-4m4m"),
    ("lib2to3.pgen2.grammar", "Grammar.loads",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-r8g5-cgf2-4m4m"),
    ("ctypes", "CDLL", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.utils.bottleneck.__main__", "run_cprofile",
     "https://github.com/mmaitre314/picklescan/pull/50"),
    ("numpy.f2py.crackfortran", "getlincoef", "https://github.com/trailofbits/fickling/pull/210"),
    ("numpy.testing._private.utils", "runstring",
     "https://github.com/mmaitre314/picklescan/pull/53"),
    ("pydoc", "pipepager", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("code", "InteractiveInterpreter.runcode", "https://github.com/mmaitre314/picklescan/pull/50"),
    ("runpy", "_run_code", "https://github.com/trailofbits/fickling/pull/195"),
    ("_posixsubprocess", "fork_exec", "https://github.com/trailofbits/fickling/pull/195"),
    ("cProfile", "run", "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-46h3-79wf-xr6c"),
    ("profile", "Profile.run",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-7wx9-6375-f5wh"),
    ("trace", "Trace.run", "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-4675-36f9-wf6r"),
    ("pdb", "run", "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-4675-36f9-wf6r"),
    ("bdb", "Bdb.run", "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-4675-36f9-wf6r"),
    ("timeit", "timeit", "https://github.com/advisories/GHSA-v7x6-rv5q-mhwc"),
    ("doctest", "debug_script", "https://github.com/mmaitre314/picklescan/pull/50"),
    ("pkgutil", "resolve_name",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-vvpj-8cmc-gx39"),
    ("ensurepip", "_run_pip", "https://github.com/advisories/GHSA-xp4f-hrf8-rxw7"),
    ("venv", "create", "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-vqmv-47xg-9wpr"),
    ("_interpreters", "run_string", "https://github.com/trailofbits/fickling/pull/302"),
    ("distutils.file_util", "write_file", "https://github.com/trailofbits/fickling/pull/210"),
    ("_io", "FileIO", "https://github.com/trailofbits/fickling/pull/210"),
    ("shutil", "rmtree", "https://github.com/trailofbits/fickling/pull/210"),
    ("ssl", "get_server_certificate",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-hgrh-qx5j-jfwx"),
    ("httplib", "HTTPSConnection",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-hgrh-qx5j-jfwx"),
    ("aiohttp.client", "request",
     "https://github.com/mmaitre314/picklescan/security/advisories/GHSA-hgrh-qx5j-jfwx"),
    ("requests.api", "get", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("webbrowser", "open", "https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py"),
    ("socket", "create_connection", "https://github.com/trailofbits/fickling/issues/16"),
    ("torch._inductor.codecache", "compile_file", "https://github.com/mmaitre314/picklescan/pull/50"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper",
     "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression",
     "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch._dynamo.guards", "GuardBuilder.get", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.utils._config_module", "ConfigModule.load_config",
     "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.utils.collect_env", "run", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers",
     "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.serialization", "load", "https://github.com/mmaitre314/picklescan/pull/53"),
    ("torch.hub", "load", "https://pytorch.org/docs/stable/hub.html"),
    ("torch.utils.cpp_extension", "load_inline", "https://pytorch.org/docs/stable/cpp_extension.html"),
    ("numpy", "load", "https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py"),
    ("joblib", "load", "https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py"),
    ("sklearn.datasets", "fetch_openml", "https://scikit-learn.org/stable/datasets/loading_other_datasets.html"),
    ("yaml", "unsafe_load", "https://github.com/trailofbits/fickling/pull/210"),
    ("marshal", "loads", "https://github.com/trailofbits/fickling/pull/195"),
    ("types", "FunctionType", "https://github.com/trailofbits/fickling/pull/195"),
    ("sys", "modules.get", "https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/scanner.py"),
]


@pytest.mark.parametrize(
    ("module", "qualname", "advisory"), DENYLIST_GAPS,
    ids=[f"{m}.{q}" for m, q, _ in DENYLIST_GAPS],
)
def test_denylist_gap(module: str, qualname: str, advisory: str, marker_command: str) -> None:
    """Each callable once slipped past a denylist (see `advisory`); here it is CRITICAL."""
    assert advisory.startswith("https://")
    assert_flagged(scan(call(module, qualname, marker_command)), qualname.rsplit(".", 1)[-1])


def test_struct_sizes_match_the_opcodes() -> None:
    """Sanity check of the hand-built encoders themselves (BINUNICODE for long strings)."""
    long = "x" * 300
    assert ustr(long)[:5] == b"X" + struct.pack("<I", 300)
