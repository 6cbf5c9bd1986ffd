"""Red-team regressions: places a TensorFlow graph can name an op without a NodeDef op field.

TensorFlow instantiates a *primitive op* when a function name is not defined by the graph's
library (FunctionLibraryRuntime::Instantiate falls back to the op registry), so every name
that reaches the runtime as "a function" is an op in disguise unless the library defines it:
function-valued attributes (``f`` of PartitionedCall, ``then_branch`` of If, ``body`` of
While, nested NameAttrList attrs, ``list(func)``), ``FunctionDef.attr``/``arg_attr``,
``GradientDef``/``RegisteredGradient`` entries, and the SavedModel object graph's concrete
functions. Fixtures are protobuf bytes with the field numbers of attr_value.proto,
function.proto and saved_object_graph.proto.
"""

from __future__ import annotations

from test_tensorflow import attr, fld, function, graph, node, saved_model

from modelward import Severity, scan_bytes


def _func(name: str, *nested: bytes) -> bytes:
    """AttrValue{func: NameAttrList{name, attr: nested map entries}}."""
    return fld(10, fld(1, name) + b"".join(nested))


def _nested_attr(key: str, value: bytes) -> bytes:
    """A NameAttrList.attr map entry (field 2)."""
    return fld(2, fld(1, key) + fld(2, value))


def _hits(data: bytes) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in scan_bytes(data, "saved_model.pb", raise_internal=True).findings:
        if f.severity >= Severity.MEDIUM:
            out.setdefault(f.rule.id, set()).add(f.evidence or "")
    return out


def test_partitioned_call_f_naming_a_primitive_op() -> None:
    """PartitionedCall(f=ReadFile): no node has op ReadFile, yet the runtime instantiates
    the primitive op when no library function has that name."""
    g = graph(node("p", "Const", attrs=attr("value", fld(8, fld(1, 7) + fld(8, "/etc/passwd")))),
              node("call", "StatefulPartitionedCall", "p", attrs=attr("f", _func("ReadFile"))))
    assert "ReadFile" in _hits(saved_model(g)).get("MW-TF-001", set())


def test_while_body_nested_name_attr_list() -> None:
    """While(body=NameAttrList{name=lib_fn, attr={inner: func PyFunc}}): the dangerous name
    sits one NameAttrList deeper, inside the attrs of a legitimate function reference."""
    lib = function("body_fn", node("i", "Identity", "x"))
    g = graph(node("w", "While", attrs=attr("body", _func(
        "body_fn", _nested_attr("inner", _func("EagerPyFunc"))))), library=lib)
    assert "EagerPyFunc" in _hits(saved_model(g)).get("MW-TF-002", set())


def test_list_func_attr() -> None:
    """Case(branches=list(func)) names one branch as a network op."""
    g = graph(node("case", "Case", attrs=attr("branches", fld(1, fld(9, fld(1, "RpcCall"))))))
    assert "RpcCall" in _hits(saved_model(g)).get("MW-TF-003", set())


def test_function_def_attr_and_arg_attr() -> None:
    """FunctionDef.attr (field 5) and arg_attr (field 7 -> ArgAttrs.attr) carry func attrs."""
    fdef_attr = fld(5, fld(1, "_implements") + fld(2, _func("WriteFile")))
    arg_attr = fld(7, fld(1, 0) + fld(2, fld(1, fld(1, "_cb") + fld(2, _func("PyFunc")))))
    lib = fld(1, fld(1, fld(1, "f")) + fld(3, node("i", "Identity", "x")) + fdef_attr + arg_attr)
    hits = _hits(saved_model(graph(node("c", "f"), library=lib)))
    assert "WriteFile" in hits.get("MW-TF-001", set())
    assert "PyFunc" in hits.get("MW-TF-002", set())


def test_gradient_def_names_an_op() -> None:
    """GradientDef{function_name, gradient_func} (library field 2) with a gradient that is a
    primitive file op rather than a library function."""
    lib = function("f", node("i", "Identity", "x")) + fld(2, fld(1, "f") + fld(2, "MatchingFiles"))
    hits = _hits(saved_model(graph(node("c", "f"), library=lib)))
    assert "MatchingFiles" in hits.get("MW-TF-001", set())


def test_object_graph_concrete_function_names_an_op() -> None:
    """SavedObjectGraph: a SavedFunction (SavedObject field 6) and a bare concrete function
    (field 8) whose concrete function names are ops, not library functions."""
    saved_fn = fld(1, fld(6, fld(1, "WriteFile")))
    bare = fld(1, fld(8, fld(1, "EagerPyFunc")))
    meta = (fld(1, fld(4, "serve")) + fld(2, graph(node("x", "Placeholder")))
            + fld(7, saved_fn + bare))
    hits = _hits(fld(1, 1) + fld(2, meta))
    assert "WriteFile" in hits.get("MW-TF-001", set())
    assert "EagerPyFunc" in hits.get("MW-TF-002", set())


def test_undefined_function_reference_is_medium() -> None:
    """A func attr naming neither a library function nor a standard op needs a kernel
    library or fails to load: unverified, MEDIUM."""
    g = graph(node("call", "PartitionedCall", attrs=attr("f", _func("__inference_gone_7"))))
    assert "__inference_gone_7" in _hits(saved_model(g)).get("MW-TF-004", set())


def test_library_function_named_like_a_dangerous_op() -> None:
    """A library function named ReadFile used to make every ReadFile node look like a call;
    TensorFlow refuses such a library, and the node is still judged as the op."""
    lib = function("ReadFile", node("i", "Identity", "x"))
    g = graph(node("r", "ReadFile", "p"), library=lib)
    assert "ReadFile" in _hits(saved_model(g)).get("MW-TF-001", set())


def test_benign_function_references_stay_clean() -> None:
    """Real SavedModels: PartitionedCall/While/If referencing library functions, gradients
    of library functions, object-graph concrete functions defined in the library, and
    SymbolicGradient(f=MatMul) over a standard op."""
    lib = (function("__inference_call_1", node("mm", "MatMul", "a", "b"))
           + function("cond_fn", node("l", "Less", "a", "b"))
           + function("grad_fn", node("i", "Identity", "x"))
           + fld(2, fld(1, "__inference_call_1") + fld(2, "grad_fn")))
    g = graph(node("c", "StatefulPartitionedCall", attrs=attr("f", _func("__inference_call_1"))),
              node("w", "While", attrs=attr("cond", _func("cond_fn"))
                   + attr("body", _func("__inference_call_1"))),
              node("sg", "SymbolicGradient", attrs=attr("f", _func("MatMul"))),
              library=lib)
    meta = (fld(1, fld(4, "serve")) + fld(2, g)
            + fld(7, fld(1, fld(6, fld(1, "__inference_call_1")))
                  + fld(2, fld(1, "__inference_call_1") + fld(2, b""))))
    assert _hits(fld(1, 1) + fld(2, meta)) == {}


def test_deeply_nested_name_attr_lists_are_bounded() -> None:
    """NameAttrList nesting deeper than the limit is a resource finding, not a recursion."""
    value = _func("Identity")
    for _ in range(50):
        value = _func("Identity", _nested_attr("x", value))
    g = graph(node("c", "PartitionedCall", attrs=attr("f", value)))
    result = scan_bytes(saved_model(g), "saved_model.pb", raise_internal=True)
    assert any(f.severity >= Severity.MEDIUM for f in result.findings)
