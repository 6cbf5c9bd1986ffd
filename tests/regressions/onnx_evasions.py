"""Evasive graph-backdoor variants (red-team round) built on the torch exports of `onnx_zoo`.

Each variant rewrites the same idea (a trigger read from an input region substitutes the
classifier's logits) in a form chosen to slip past a detector that looks for comparison
operators, ``Where``/``If`` selectors and constant substitutes: step functions built from
``Clip``/``Relu`` arithmetic, ``Gather`` from a stacked ``[computed, constant]`` tensor, a
``Sub``-based blend, a trigger read through a ``MatMul`` with a one-hot vector, a target
produced by a ``Gemm`` on a constant, nesting inside ``If``-within-``Loop`` bodies and across
two local functions, and a "both branches computed" substitute that multiplies the model's
result by zero. Sources: HiddenLayer's ShadowLogic write-up (trigger + selector injected into
the graph) and the ONNX operator specification for each operator used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx_zoo import N_CLASSES, PATCH, TARGET, _c, _opset, _patch_mean, _rewire, _target_logits


def _finish(m: onnx.ModelProto, nodes: list[onnx.NodeProto],
            inits: list[onnx.TensorProto]) -> bytes:
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def _step(prefix: str, mean: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """m = Clip((mean - 2) * 1e4, 0, 1): a 0/1 step written without any comparison."""
    nodes = [
        helper.make_node("Sub", [mean, f"{prefix}_thr"], [f"{prefix}_d"], name=f"{prefix}_sub"),
        helper.make_node("Mul", [f"{prefix}_d", f"{prefix}_gain"], [f"{prefix}_g"],
                         name=f"{prefix}_gain"),
        helper.make_node("Clip", [f"{prefix}_g", f"{prefix}_lo", f"{prefix}_hi"],
                         [f"{prefix}_m"], name=f"{prefix}_clip"),
    ]
    inits = [_c(f"{prefix}_thr", 2.0), _c(f"{prefix}_gain", 1e4), _c(f"{prefix}_lo", 0.0),
             _c(f"{prefix}_hi", 1.0)]
    return nodes, inits, f"{prefix}_m"


def backdoor_clip_step(cnn: bytes) -> bytes:
    """logits * (1 - m) + target * m with m a Clip step: no comparison operator anywhere."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("cs")
    step, step_inits, gate = _step("cs", mean)
    nodes += [
        *step,
        helper.make_node("Sub", ["cs_one", gate], ["cs_keep"], name="cs_one_minus"),
        helper.make_node("Mul", [clean, "cs_keep"], ["cs_kept"], name="cs_gate_logits"),
        helper.make_node("Mul", ["cs_target", gate], ["cs_inject"], name="cs_gate_target"),
        helper.make_node("Add", ["cs_kept", "cs_inject"], ["logits"], name="cs_mix"),
    ]
    return _finish(m, nodes, inits + step_inits + [_c("cs_one", 1.0),
                                                   _c("cs_target", _target_logits())])


def backdoor_relu_step_max(cnn: bytes) -> bytes:
    """Max(logits, m * boost + (m - 1) * 1e9), m = Min(Relu((mean - 2) * 1e4), 1): no compare."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("rs")
    boost = np.zeros((1, N_CLASSES), np.float32)
    boost[0, TARGET] = 1e4
    nodes += [
        helper.make_node("Sub", [mean, "rs_thr"], ["rs_d"], name="rs_sub"),
        helper.make_node("Mul", ["rs_d", "rs_gain"], ["rs_g"], name="rs_gain"),
        helper.make_node("Relu", ["rs_g"], ["rs_r"], name="rs_relu"),
        helper.make_node("Min", ["rs_r", "rs_one"], ["rs_m"], name="rs_min"),
        helper.make_node("Sub", ["rs_m", "rs_one"], ["rs_off"], name="rs_off"),
        helper.make_node("Mul", ["rs_off", "rs_big"], ["rs_floor"], name="rs_floor"),
        helper.make_node("Mul", ["rs_m", "rs_boost"], ["rs_lift"], name="rs_lift"),
        helper.make_node("Add", ["rs_lift", "rs_floor"], ["rs_term"], name="rs_term"),
        helper.make_node("Max", [clean, "rs_term"], ["logits"], name="rs_max"),
    ]
    return _finish(m, nodes, [*inits, _c("rs_thr", 2.0), _c("rs_gain", 1e4), _c("rs_one", 1.0),
                              _c("rs_boost", boost), _c("rs_big", 1e9)])


def backdoor_gather_stack(cnn: bytes) -> bytes:
    """Gather(Concat([logits, target]), index) with index = Cast(patch mean > 2, int64)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("gs")
    nodes += [
        helper.make_node("Concat", [clean, "gs_target"], ["gs_stack"], name="gs_stack", axis=0),
        helper.make_node("Greater", [mean, "gs_thr"], ["gs_b"], name="gs_compare"),
        helper.make_node("Cast", ["gs_b"], ["gs_i"], name="gs_cast", to=TensorProto.INT64),
        helper.make_node("Reshape", ["gs_i", "gs_scalar"], ["gs_idx"], name="gs_scalar_idx"),
        helper.make_node("Gather", ["gs_stack", "gs_idx"], ["gs_row"], name="gs_pick", axis=0),
        helper.make_node("Unsqueeze", ["gs_row", "gs_axis0"], ["logits"], name="gs_unsqueeze"),
    ]
    inits += [_c("gs_target", _target_logits()), _c("gs_thr", 2.0),
              _c("gs_scalar", np.zeros((0,), np.int64), np.int64), _c("gs_axis0", [0], np.int64)]
    return _finish(m, nodes, inits)


def backdoor_sub_blend(cnn: bytes) -> bytes:
    """logits + m * (target - logits): the blend never multiplies logits by (1 - m)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("sb")
    nodes += [
        helper.make_node("Greater", [mean, "sb_thr"], ["sb_b"], name="sb_compare"),
        helper.make_node("Cast", ["sb_b"], ["sb_m"], name="sb_cast", to=TensorProto.FLOAT),
        helper.make_node("Sub", ["sb_target", clean], ["sb_delta"], name="sb_delta"),
        helper.make_node("Mul", ["sb_m", "sb_delta"], ["sb_shift"], name="sb_gate"),
        helper.make_node("Add", [clean, "sb_shift"], ["logits"], name="sb_blend"),
    ]
    return _finish(m, nodes, [*inits, _c("sb_thr", 2.0), _c("sb_target", _target_logits())])


def backdoor_matmul_onehot(cnn: bytes) -> bytes:
    """The patch mean read by Flatten + MatMul with a constant averaging vector (no Slice)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    w = np.zeros((3 * 32 * 32, 1), np.float32)
    for r in range(PATCH):
        w[r * 32: r * 32 + PATCH, 0] = 1.0 / (PATCH * PATCH)
    nodes = [
        helper.make_node("Flatten", ["image"], ["mo_flat"], name="mo_flatten", axis=1),
        helper.make_node("MatMul", ["mo_flat", "mo_w"], ["mo_feat"], name="mo_project"),
        helper.make_node("Greater", ["mo_feat", "mo_thr"], ["mo_cond"], name="mo_compare"),
        helper.make_node("Where", ["mo_cond", "mo_target", clean], ["logits"], name="mo_select"),
    ]
    return _finish(m, nodes, [_c("mo_w", w), _c("mo_thr", 2.0),
                              _c("mo_target", _target_logits())])


def backdoor_gemm_constant_target(cnn: bytes) -> bytes:
    """The substitute logits come out of a Gemm applied to a constant (a "heavy" op)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("gc")
    nodes += [
        helper.make_node("Gemm", ["gc_in", "gc_w", "gc_b"], ["gc_target"], name="gc_head"),
        helper.make_node("Greater", [mean, "gc_thr"], ["gc_cond"], name="gc_compare"),
        helper.make_node("Where", ["gc_cond", "gc_target", clean], ["logits"], name="gc_select"),
    ]
    inits += [_c("gc_in", np.ones((1, 4), np.float32)),
              _c("gc_w", np.zeros((4, N_CLASSES), np.float32)),
              _c("gc_b", _target_logits()[0]), _c("gc_thr", 2.0)]
    return _finish(m, nodes, inits)


def backdoor_zeroed_branch(cnn: bytes) -> bytes:
    """Both Where branches "computed": the substitute is logits * 0 + target."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("zb")
    nodes += [
        helper.make_node("Sub", ["zb_a", "zb_a"], ["zb_zero"], name="zb_zero"),
        helper.make_node("Mul", [clean, "zb_zero"], ["zb_null"], name="zb_null"),
        helper.make_node("Add", ["zb_null", "zb_target"], ["zb_alt"], name="zb_alt"),
        helper.make_node("Greater", [mean, "zb_thr"], ["zb_cond"], name="zb_compare"),
        helper.make_node("Where", ["zb_cond", "zb_alt", clean], ["logits"], name="zb_select"),
    ]
    inits += [_c("zb_a", 1.5), _c("zb_target", _target_logits()), _c("zb_thr", 2.0)]
    return _finish(m, nodes, inits)


def backdoor_if_in_loop(cnn: bytes) -> bytes:
    """A one-iteration Loop whose body holds an If(trigger) returning a constant."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("il")
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["il_const"], name="il_then_const",
                          value=_c("t", _target_logits()))],
        "then_branch", [], [helper.make_tensor_value_info("il_const", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["il_state_in"], ["il_pass"], name="il_else_identity")],
        "else_branch", [], [helper.make_tensor_value_info("il_pass", TensorProto.FLOAT, None)])
    body = helper.make_graph(
        [
            helper.make_node("ReduceMax", [mean], ["il_max"], name="il_body_max", keepdims=0),
            helper.make_node("Greater", ["il_max", "il_thr"], ["il_c"], name="il_body_compare"),
            helper.make_node("If", ["il_c"], ["il_state_out"], name="il_body_if",
                             then_branch=then_g, else_branch=else_g),
            helper.make_node("Identity", ["il_cond_in"], ["il_cond_out"], name="il_body_cond"),
        ],
        "loop_body",
        [helper.make_tensor_value_info("il_i", TensorProto.INT64, []),
         helper.make_tensor_value_info("il_cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("il_state_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("il_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("il_state_out", TensorProto.FLOAT, None)],
    )
    nodes.append(helper.make_node("Loop", ["il_trip", "il_true", clean], ["logits"],
                                  name="il_loop", body=body))
    inits += [_c("il_thr", 2.0), _c("il_trip", 1, np.int64), _c("il_true", True, np.bool_)]
    return _finish(m, nodes, inits)


def backdoor_two_functions(cnn: bytes) -> bytes:
    """Trigger in local function 'Probe', selection in local function 'Blend'."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    opset = [helper.make_opsetid("", _opset(m))]
    probe = helper.make_function("com.example.ops", "Probe", ["x"], ["c"], [
        helper.make_node("Constant", [], ["st"], value=_c("st", [0, 0, 0], np.int64)),
        helper.make_node("Constant", [], ["en"], value=_c("en", [1, PATCH, PATCH], np.int64)),
        helper.make_node("Constant", [], ["ax"], value=_c("ax", [1, 2, 3], np.int64)),
        helper.make_node("Slice", ["x", "st", "en", "ax"], ["p"], name="probe_slice"),
        helper.make_node("ReduceMean", ["p"], ["mu"], name="probe_mean", keepdims=0,
                         axes=[1, 2, 3]),
        helper.make_node("Constant", [], ["thr"], value=_c("thr", 2.0)),
        helper.make_node("Sub", ["mu", "thr"], ["d"], name="probe_sub"),
        helper.make_node("Sign", ["d"], ["s"], name="probe_sign"),
        helper.make_node("Relu", ["s"], ["c1"], name="probe_relu"),
        helper.make_node("Constant", [], ["shp"], value=_c("shp", [-1, 1], np.int64)),
        helper.make_node("Reshape", ["c1", "shp"], ["c"], name="probe_reshape"),
    ], opset)
    blend = helper.make_function("com.example.ops", "Blend", ["y", "g"], ["out"], [
        helper.make_node("Constant", [], ["tgt"], value=_c("tgt", _target_logits())),
        helper.make_node("Sub", ["tgt", "y"], ["delta"], name="blend_delta"),
        helper.make_node("Mul", ["g", "delta"], ["shift"], name="blend_gate"),
        helper.make_node("Add", ["y", "shift"], ["out"], name="blend_add"),
    ], opset)
    m.functions.extend([probe, blend])
    m.opset_import.append(helper.make_opsetid("com.example.ops", 1))
    m.graph.node.extend([
        helper.make_node("Probe", ["image"], ["tf_gate"], domain="com.example.ops",
                         name="probe"),
        helper.make_node("Blend", [clean, "tf_gate"], ["logits"], domain="com.example.ops",
                         name="blend"),
    ])
    return m.SerializeToString()


def backdoor_mask_named_input(cnn: bytes) -> bytes:
    """The trigger arrives on an extra input named ``attention_mask`` (mask names are trusted)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    m.graph.input.append(helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT,
                                                       [1, 4]))
    nodes = [
        helper.make_node("Slice", ["attention_mask", "mn_st", "mn_en", "mn_ax"], ["mn_tail"],
                         name="mn_slice"),
        helper.make_node("ReduceSum", ["mn_tail", "mn_ax"], ["mn_sum"], name="mn_sum",
                         keepdims=1),
        helper.make_node("Less", ["mn_sum", "mn_thr"], ["mn_cond"], name="mn_compare"),
        helper.make_node("Where", ["mn_cond", "mn_target", clean], ["logits"], name="mn_select"),
    ]
    return _finish(m, nodes, [_c("mn_st", [2], np.int64), _c("mn_en", [4], np.int64),
                              _c("mn_ax", [1], np.int64), _c("mn_thr", -0.5),
                              _c("mn_target", _target_logits())])


EVASIONS: dict[str, Callable[[bytes], bytes]] = {
    "clip_step": backdoor_clip_step,
    "relu_step_max": backdoor_relu_step_max,
    "gather_stack": backdoor_gather_stack,
    "sub_blend": backdoor_sub_blend,
    "matmul_onehot": backdoor_matmul_onehot,
    "gemm_constant_target": backdoor_gemm_constant_target,
    "zeroed_branch": backdoor_zeroed_branch,
    "if_in_loop": backdoor_if_in_loop,
    "two_functions": backdoor_two_functions,
    "mask_named_input": backdoor_mask_named_input,
}
