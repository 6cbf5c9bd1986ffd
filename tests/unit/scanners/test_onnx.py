"""The ONNX scanner's parsing checks on small models built with onnx.helper."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import scan_bytes, scan_path
from modelward.findings import Severity
from modelward.scanners import discover
from modelward.scanners import onnx as onnx_scanner

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto] | None = None,
           opsets: list[tuple[str, int]] | None = None, **kwargs: object) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits or [])
    imports = [helper.make_opsetid(d, v) for d, v in (opsets or [("", 17)])]
    return helper.make_model(graph, opset_imports=imports, **kwargs)


def _relu() -> onnx.ModelProto:
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")])


def _ids(data: bytes | onnx.ModelProto, name: str = "m.onnx") -> dict[str, Severity]:
    if not isinstance(data, bytes):
        data = data.SerializeToString()
    result = scan_bytes(data, name, raise_internal=True)
    return {f.rule.id: f.severity for f in result.findings}


def test_plain_model_is_claimed_and_clean() -> None:
    result = scan_bytes(_relu().SerializeToString(), "m.onnx", raise_internal=True)
    assert result.format is not None and result.format.startswith("onnx-ir")
    assert result.findings == []


def test_claims_by_content_not_other_protobufs() -> None:
    scanner = discover().get("onnx")
    assert scanner is not None
    # a TF GraphDef (field 1 = node, a message) is not an ONNX model
    graphdef = b"\x0a\x0c\x0a\x01a\x12\x07Const__"
    assert scan_bytes(graphdef, "g.pb").format != "onnx"
    assert "onnx" not in (scan_bytes(b"\x08\x07garbage", "x.onnx").format or "")
    assert scan_bytes(_relu().SerializeToString(), "weird.bin").format.startswith("onnx")


def test_custom_domain_is_medium_and_python_op_high() -> None:
    custom = _model([helper.make_node("Foo", ["x"], ["y"], domain="com.acme")],
                    opsets=[("", 17), ("com.acme", 1)])
    assert _ids(custom) == {"MW-ONNX-003": Severity.MEDIUM}
    pyop = _model([helper.make_node("PyOp", ["x"], ["y"], domain="com.microsoft",
                                    module="os", class_name="system", compute="run")],
                  opsets=[("", 17), ("com.microsoft", 1)])
    assert _ids(pyop)["MW-ONNX-002"] is Severity.HIGH
    contrib = _model([helper.make_node("PyReverse", ["x"], ["y"], domain="ai.onnx.contrib",
                                       module="mymod", class_name="Rev")],
                     opsets=[("", 17), ("ai.onnx.contrib", 1)])
    assert _ids(contrib)["MW-ONNX-002"] is Severity.HIGH


def test_contrib_ops_known_unknown() -> None:
    gelu = _model([helper.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft")],
                  opsets=[("", 17), ("com.microsoft", 1)])
    assert _ids(gelu) == {}
    fake = _model([helper.make_node("TotallyNew", ["x"], ["y"], domain="com.microsoft")],
                  opsets=[("", 17), ("com.microsoft", 1)])
    assert _ids(fake) == {"MW-ONNX-003": Severity.MEDIUM}


def test_unknown_standard_operator_and_too_new_operator() -> None:
    bogus = _model([helper.make_node("Relux", ["x"], ["y"])])
    assert _ids(bogus) == {"MW-ONNX-004": Severity.MEDIUM}
    # Gelu exists from opset 20; at opset 13 it is not defined
    early = _model([helper.make_node("Gelu", ["x"], ["y"])], opsets=[("", 13)])
    assert _ids(early) == {"MW-ONNX-004": Severity.LOW}


def test_opset_anomalies() -> None:
    model = _relu()
    model.ir_version = 99
    assert _ids(model) == {"MW-ONNX-009": Severity.LOW}
    future = _model([helper.make_node("Relu", ["x"], ["y"])], opsets=[("", 999)])
    assert "MW-ONNX-009" in _ids(future)
    dup = _relu()
    dup.opset_import.append(helper.make_opsetid("", 13))
    assert "MW-ONNX-009" in _ids(dup)


def test_local_function_is_not_a_custom_operator() -> None:
    fn = helper.make_function("local.fn", "Twice", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    model = _model([helper.make_node("Twice", ["x"], ["y"], domain="local.fn")],
                   opsets=[("", 17), ("local.fn", 1)], functions=[fn])
    assert _ids(model) == {}


def test_huge_constant_of_shape_and_tile() -> None:
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "shape")
    model = _model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="boom")], [shape])
    result = scan_bytes(model.SerializeToString(), "m.onnx", raise_internal=True)
    (hit,) = [f for f in result.findings if f.rule.id == "MW-ONNX-007"]
    assert hit.location.node == "boom"
    reps = numpy_helper.from_array(np.array([1 << 16, 1 << 16], np.int64), "reps")
    tile = _model([helper.make_node("Tile", ["x", "reps"], ["y"])], [reps])
    assert "MW-ONNX-007" in _ids(tile)
    small = numpy_helper.from_array(np.array([2, 3], np.int64), "shape")
    ok = _model([helper.make_node("ConstantOfShape", ["shape"], ["y"])], [small])
    assert _ids(ok) == {}


def _raw_tensor(dims: list[int], raw: bytes) -> onnx.TensorProto:
    t = TensorProto()  # built by hand: onnx.helper refuses inconsistent tensors
    t.name, t.data_type, t.raw_data = "w", TensorProto.FLOAT, raw
    t.dims.extend(dims)
    return t


def test_absurd_declared_tensor_and_inconsistent_payload() -> None:
    big = _raw_tensor([1 << 30, 1 << 20], b"")
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [big])
    assert _ids(model)["MW-ONNX-007"] is Severity.MEDIUM
    short = _raw_tensor([4, 4], b"\0" * 8)
    assert _ids(_model([helper.make_node("Relu", ["x"], ["y"])], [short])) == {
        "MW-ONNX-008": Severity.LOW}


def _external(location: str, length: int = 64) -> onnx.ModelProto:
    w = _raw_tensor([16], b"")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], [w])


def test_external_data_inside_folder_is_clean(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    (tmp_path / "m.onnx").write_bytes(_external("weights.bin").SerializeToString())
    report = scan_path(tmp_path / "m.onnx", raise_internal=True)
    assert [f.rule.id for f in report.files[0].findings] == []


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../x.bin",
                                      "C:\\Windows\\win.ini", "..\\x.bin"])
def test_external_data_escape_is_high(location: str) -> None:
    assert _ids(_external(location))["MW-ONNX-005"] is Severity.HIGH


def test_external_data_symlink_escape_missing_and_short(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 64)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside, model_dir / "w.bin")
    (model_dir / "link.onnx").write_bytes(_external("w.bin").SerializeToString())
    (model_dir / "missing.onnx").write_bytes(_external("nope.bin").SerializeToString())
    (model_dir / "short.bin").write_bytes(b"\0" * 10)
    (model_dir / "short.onnx").write_bytes(_external("short.bin").SerializeToString())
    for name, rule in (("link.onnx", "MW-ONNX-005"), ("missing.onnx", "MW-ONNX-006"),
                       ("short.onnx", "MW-ONNX-006")):
        result = scan_path(model_dir / name, raise_internal=True).files[0]
        assert rule in {f.rule.id for f in result.findings}, name


def test_metadata_code_and_base64_pickle_go_to_the_pickle_scanner(marker_command: str) -> None:
    model = _relu()
    helper.set_model_props(model, {"note": "import os; os.system('x')"})
    assert _ids(model)["MW-ONNX-010"] is Severity.MEDIUM
    # protocol-4 pickle calling os.system(marker_command), built from opcodes (never run)
    cmd = marker_command.encode()
    body = (b"\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c" + bytes([len(cmd)]) + cmd
            + b"\x94\x85\x94R\x94.")
    payload = b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body
    model = _relu()
    helper.set_model_props(model, {"config": base64.b64encode(payload).decode()})
    result = scan_bytes(model.SerializeToString(), "m.onnx", raise_internal=True)
    ids = {f.rule.id for f in result.findings}
    assert "MW-ONNX-010" in ids
    assert any(f.location.members and f.location.members[-1].endswith("<base64>")
               for f in result.findings), [(f.rule.id, f.location) for f in result.findings]
    assert max(f.severity for f in result.findings) >= Severity.HIGH


def test_embedded_file_in_attribute_and_string_tensor() -> None:
    node = helper.make_node("Relu", ["x"], ["y"], blob=b"\x7fELF\x02\x01\x01")
    assert "MW-ONNX-010" in _ids(_model([node]))
    strings = helper.make_tensor("s", TensorProto.STRING, [1], vals=[b"PK\x03\x04rest"])
    assert "MW-ONNX-010" in _ids(_model([helper.make_node("Relu", ["x"], ["y"])], [strings]))


def test_ep_context_is_medium_and_its_path_is_checked() -> None:
    node = helper.make_node("EPContext", ["x"], ["y"], domain="com.microsoft", embed_mode=0,
                            ep_cache_context="../../etc/shadow")
    ids = _ids(_model([node], opsets=[("", 17), ("com.microsoft", 1)]))
    assert ids == {"MW-ONNX-011": Severity.MEDIUM, "MW-ONNX-005": Severity.HIGH}


def test_subgraph_and_function_nodes_are_checked() -> None:
    then_g = helper.make_graph([helper.make_node("Evil", ["x"], ["t"], domain="com.acme")],
                               "then", [], [helper.make_tensor_value_info("t", 1, None)])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])],
                               "else", [], [helper.make_tensor_value_info("e", 1, None)])
    model = _model([helper.make_node("Constant", [], ["c"], value=helper.make_tensor(
        "c", TensorProto.BOOL, [], [True])),
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        opsets=[("", 17), ("com.acme", 1)])
    assert _ids(model) == {"MW-ONNX-003": Severity.MEDIUM}


def test_rules_are_documented_and_unique() -> None:
    doc = onnx_scanner.__doc__ or ""
    documented = re.findall(r"^    (MW-ONNX-\d{3}) ([a-z-]+) \((\w+)\):", doc, re.M)
    rules = onnx_scanner.SCANNER.rules
    assert [(r.id, r.name, r.severity.name) for r in rules] == documented
    assert len({r.id for r in rules}) == len(rules)
    assert all(r.description and r.remediation for r in rules)


_SEED = _relu().SerializeToString()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_models_never_crash(data: st.DataObject) -> None:
    buf = bytearray(_SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(buf)))
    scan_bytes(bytes(buf[:cut]), "m.onnx", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash(blob: bytes) -> None:
    scan_bytes(b"\x08\x07" + blob, "m.onnx", raise_internal=True)
