"""The graph IR parser, the flat dataflow graph and the backdoor detector on small graphs."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest

from modelward.errors import FormatError, ResourceLimitError
from modelward.graph import backdoor, dataflow, ir

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def test_ir_matches_onnx_on_shipped_models() -> None:
    paths = sorted(glob.glob(str(DATA / "**" / "*.onnx"), recursive=True))
    assert len(paths) > 100
    for path in paths:
        data = Path(path).read_bytes()
        ours = ir.parse_model(data)
        ref = onnx.load_from_string(data)
        assert ours.graph is not None
        assert [n.op_type for n in ours.graph.nodes] == [n.op_type for n in ref.graph.node]
        assert [n.inputs for n in ours.graph.nodes] == [tuple(n.input) for n in ref.graph.node]
        assert [(t.name, t.dims, t.data_type) for t in ours.graph.initializers] == [
            (t.name, tuple(t.dims), t.data_type) for t in ref.graph.initializer]
        assert ours.opset_import == {o.domain: o.version for o in ref.opset_import}
        for t, r in zip(ours.graph.initializers, ref.graph.initializer):
            if r.raw_data:
                assert t.raw_offset is not None
                assert data[t.raw_offset: t.raw_offset + len(r.raw_data)] == r.raw_data


def test_small_tensor_values_are_decoded() -> None:
    t = numpy_helper.from_array(np.array([3, -1, 7], np.int64), "s")
    f = helper.make_tensor("f", TensorProto.FLOAT, [2], [1.5, -2.0])
    graph = helper.make_graph([], "g", [], [], initializer=[t, f])
    model = ir.parse_model(helper.make_model(graph).SerializeToString())
    assert model.graph is not None
    assert [x.values for x in model.graph.initializers] == [(3, -1, 7), (1.5, -2.0)]


def _nested(depth: int) -> onnx.ModelProto:
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "b", [],
                             [helper.make_tensor_value_info("y", 1, None)])
    for _ in range(depth):
        node = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)
        body = helper.make_graph([node], "b", [], [helper.make_tensor_value_info("y", 1, None)])
    return helper.make_model(body)


def test_limits_are_enforced() -> None:
    data = _nested(5).SerializeToString()
    ir.parse_model(data, ir.ParseLimits(max_depth=5))
    with pytest.raises(ResourceLimitError):
        ir.parse_model(data, ir.ParseLimits(max_depth=4))
    with pytest.raises(ResourceLimitError):
        ir.parse_model(data, ir.ParseLimits(max_nodes=10))
    with pytest.raises(FormatError):
        ir.parse_model(b"\x3a\xff\xff\x01")  # graph field longer than the data


def test_flatten_links_outer_scope_and_inlines_functions() -> None:
    fn = helper.make_function("f", "Double", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"], name="inner_add")],
                              [helper.make_opsetid("", 17)])
    then_g = helper.make_graph([helper.make_node("Double", ["x"], ["t"], domain="f")], "then",
                               [], [helper.make_tensor_value_info("t", 1, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", 1, None)])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g,
                          else_branch=else_g)], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", 1, [2])],
        [helper.make_tensor_value_info("y", 1, [2])])
    model = helper.make_model(graph, functions=[fn], opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("f", 1)])
    flow = dataflow.flatten(ir.parse_model(model.SerializeToString()))
    ops = [n.op for n in flow.nodes]
    assert "Add" in ops and "Neg" in ops and "Double" not in ops
    add = next(n for n in flow.nodes if n.op == "Add")
    x = flow.inputs[1]
    assert add.inputs == [x, x]  # the function body reads the outer x through the If scope
    (out,) = flow.outputs
    ancestors = {flow.nodes[i].op for i in flow.ancestors([out])}
    assert {"Add", "Neg", "@phi"} <= ancestors
    assert add.label.endswith("inner_add")


def test_recursive_function_stays_opaque() -> None:
    fn = helper.make_function("f", "Loop1", ["a"], ["b"],
                              [helper.make_node("Loop1", ["a"], ["b"], domain="f")],
                              [helper.make_opsetid("f", 1)])
    graph = helper.make_graph([helper.make_node("Loop1", ["x"], ["y"], domain="f")], "g",
                              [helper.make_tensor_value_info("x", 1, [2])],
                              [helper.make_tensor_value_info("y", 1, [2])])
    model = helper.make_model(graph, functions=[fn])
    flow = dataflow.flatten(ir.parse_model(model.SerializeToString()))
    assert len(flow.nodes) < 40


def _classifier(select: list[onnx.NodeProto], inits: list[onnx.TensorProto],
                extra_inputs: list[onnx.ValueInfoProto] | None = None) -> dataflow.Flow:
    """x -> MatMul(W) -> logits, then `select` nodes producing 'y'."""
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"], name="fc"), *select], "g",
        [helper.make_tensor_value_info("x", 1, [1, 4])] + (extra_inputs or []),
        [helper.make_tensor_value_info("y", 1, [1, 3])], initializer=[w, *inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return dataflow.flatten(ir.parse_model(model.SerializeToString()))


def _c(name: str, value: object, dtype: object = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)  # type: ignore[call-overload]


def _trigger() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes = [helper.make_node("Slice", ["x", "s0", "s1"], ["px"], name="pick"),
             helper.make_node("Greater", ["px", "thr"], ["cond"], name="cmp")]
    return nodes, [_c("s0", [0], np.int64), _c("s1", [1], np.int64), _c("thr", 5.0)]


def test_where_with_constant_is_found() -> None:
    nodes, inits = _trigger()
    nodes.append(helper.make_node("Where", ["cond", "target", "logits"], ["y"], name="sel"))
    (hit,) = backdoor.find_backdoors(_classifier(nodes, [*inits, _c("target", [[9, 0, 0]])]))
    assert hit.selector == "sel" and hit.outputs == ("y",) and hit.main == "logits"
    assert [t.split(" ")[0] for t in hit.trigger_nodes] == ["pick", "cmp"]
    assert "target" in hit.substitute


def test_condition_from_the_result_itself_is_a_threshold_not_a_backdoor() -> None:
    nodes = [helper.make_node("Greater", ["logits", "thr"], ["cond"]),
             helper.make_node("Where", ["cond", "logits", "zero"], ["y"])]
    assert backdoor.find_backdoors(_classifier(nodes, [_c("thr", 0.5), _c("zero", 0.0)])) == []


def test_shape_dependent_condition_is_quiet() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["shp"]),
             helper.make_node("Gather", ["shp", "one"], ["n"]),
             helper.make_node("Greater", ["n", "three"], ["cond"]),
             helper.make_node("Where", ["cond", "target", "logits"], ["y"])]
    inits = [_c("one", 1, np.int64), _c("three", 3, np.int64), _c("target", [[9, 0, 0]])]
    assert backdoor.find_backdoors(_classifier(nodes, inits)) == []


def test_selection_feeding_more_computation_is_quiet() -> None:
    """An attention-style mask: the selected value is mixed with the computed result again."""
    nodes, inits = _trigger()
    nodes += [helper.make_node("Where", ["cond", "ninf", "logits"], ["masked"]),
              helper.make_node("Add", ["masked", "logits"], ["y"])]
    assert backdoor.find_backdoors(_classifier(nodes, [*inits, _c("ninf", -10000.0)])) == []


def test_mask_input_condition_is_attention_logic() -> None:
    nodes = [helper.make_node("ReduceMax", ["attention_mask"], ["any"], keepdims=1),
             helper.make_node("Greater", ["any", "zero"], ["cond"]),
             helper.make_node("Where", ["cond", "logits", "target"], ["y"])]
    inits = [_c("zero", 0.0), _c("target", [[9, 0, 0]])]
    mask = [helper.make_tensor_value_info("attention_mask", 1, [1, 4])]
    assert backdoor.find_backdoors(_classifier(nodes, inits, mask)) == []


def test_both_branches_computed_is_quiet() -> None:
    nodes, inits = _trigger()
    nodes += [helper.make_node("Neg", ["logits"], ["neg"]),
              helper.make_node("Where", ["cond", "neg", "logits"], ["y"])]
    assert backdoor.find_backdoors(_classifier(nodes, inits)) == []


def test_selection_before_last_layer_is_found() -> None:
    """Features replaced before the head: the output no longer depends on the backbone."""
    w2 = numpy_helper.from_array(np.ones((3, 3), np.float32), "W2")
    nodes, inits = _trigger()
    nodes += [helper.make_node("Where", ["cond", "feat", "logits"], ["h"], name="swap"),
              helper.make_node("MatMul", ["h", "W2"], ["y"], name="head")]
    (hit,) = backdoor.find_backdoors(_classifier(nodes, [*inits, _c("feat", [[1, 2, 3]]), w2]))
    assert hit.selector == "swap"


def test_no_heavy_computation_no_backdoor() -> None:
    graph = helper.make_graph(
        [helper.make_node("Greater", ["x", "t"], ["c"]),
         helper.make_node("Where", ["c", "k", "x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", 1, [4])], [helper.make_tensor_value_info("y", 1, [4])],
        initializer=[_c("t", 1.0), _c("k", 0.0)])
    model = helper.make_model(graph)
    flow = dataflow.flatten(ir.parse_model(model.SerializeToString()))
    assert backdoor.find_backdoors(flow) == []
