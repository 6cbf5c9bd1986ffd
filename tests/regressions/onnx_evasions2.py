"""Second red-team round on the graph-backdoor detector: evasive variants, built with onnx.helper.

Same idea as `onnx_evasions` (a trigger read from the input substitutes the classifier's
logits) in forms the first round did not cover: a ``Loop`` whose *trip count* is the trigger
(zero or one iteration adding a bias), a ``Scan`` folding a trigger-gated bias into the
logits, ``If`` on ``ReduceMax(Equal(x, c))`` over the whole image, index triggers
(``TopK``/``ArgMax`` choosing a constant row of a bias table with ``Gather``), spatial
triggers read with ``Resize`` (crop-and-resize to one pixel) and ``GridSample`` (a constant
sampling grid), a trigger quantised with ``QuantizeLinear``/``DequantizeLinear`` instead of
compared, the plain trigger injected into the int8 model ``quantize_dynamic`` writes, a
"fake mask" computed by a dedicated ``Conv`` so it looks like main computation, a trigger on
one channel of the backbone's own feature map, a substitute hidden behind a ``Gemm`` whose
zero weight is too large to be decoded inline, and on a BERT-style encoder: a token id at a
gathered position, a two-token pattern, and an exact sequence length summed from the real
attention mask. Sources: HiddenLayer's ShadowLogic write-up and the ONNX operator
specification of each operator used.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx_zoo import N_CLASSES, PATCH, TARGET, _c, _patch_mean, _rewire, _target_logits


def _finish(m: onnx.ModelProto, nodes: list[onnx.NodeProto],
            inits: list[onnx.TensorProto]) -> bytes:
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def _boost() -> np.ndarray:
    out = np.zeros((1, N_CLASSES), np.float32)
    out[0, TARGET] = 1e4
    return out


def _scalar_cond(prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Scalar bool: batch max of the patch mean > 2."""
    nodes, inits, mean = _patch_mean(prefix)
    nodes += [
        helper.make_node("ReduceMax", [mean], [f"{prefix}_max"], name=f"{prefix}_batch_max",
                         keepdims=0),
        helper.make_node("Greater", [f"{prefix}_max", f"{prefix}_thr"], [f"{prefix}_cond"],
                         name=f"{prefix}_compare"),
    ]
    return nodes, [*inits, _c(f"{prefix}_thr", 2.0)], f"{prefix}_cond"


def backdoor_loop_trip_count(cnn: bytes) -> bytes:
    """Loop(trip = Cast(trigger)): the body adds a bias; it runs once only when triggered."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, cond = _scalar_cond("lt")
    body = helper.make_graph(
        [helper.make_node("Add", ["lt_state_in", "lt_boost"], ["lt_state_out"],
                          name="lt_body_add"),
         helper.make_node("Identity", ["lt_cond_in"], ["lt_cond_out"], name="lt_body_cond")],
        "loop_body",
        [helper.make_tensor_value_info("lt_i", TensorProto.INT64, []),
         helper.make_tensor_value_info("lt_cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("lt_state_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("lt_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("lt_state_out", TensorProto.FLOAT, None)])
    nodes += [
        helper.make_node("Cast", [cond], ["lt_trip"], name="lt_trip", to=TensorProto.INT64),
        helper.make_node("Loop", ["lt_trip", "lt_true", clean], ["logits"], name="lt_loop",
                         body=body),
    ]
    return _finish(m, nodes, [*inits, _c("lt_boost", _boost()),
                              _c("lt_true", True, np.bool_)])


def backdoor_scan_bias(cnn: bytes) -> bytes:
    """Scan over the per-image trigger bits; the body adds ``bit * boost`` to the state."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("sc")
    body = helper.make_graph(
        [helper.make_node("Mul", ["sc_bit", "sc_boost"], ["sc_term"], name="sc_body_term"),
         helper.make_node("Add", ["sc_state_in", "sc_term"], ["sc_state_out"],
                          name="sc_body_add")],
        "scan_body",
        [helper.make_tensor_value_info("sc_state_in", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("sc_bit", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("sc_state_out", TensorProto.FLOAT, None)])
    nodes += [
        helper.make_node("Greater", [mean, "sc_thr"], ["sc_b"], name="sc_compare"),
        helper.make_node("Cast", ["sc_b"], ["sc_bits"], name="sc_cast", to=TensorProto.FLOAT),
        helper.make_node("Scan", [clean, "sc_bits"], ["logits"], name="sc_scan", body=body,
                         num_scan_inputs=1),
    ]
    return _finish(m, nodes, [*inits, _c("sc_thr", 2.0), _c("sc_boost", _boost())])


def backdoor_if_any_equal(cnn: bytes) -> bytes:
    """If(ReduceMax(Equal(image, 3.0))): any pixel exactly 3.0 -> constant logits."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["ae_const"], name="ae_then_const",
                          value=_c("t", _target_logits()))],
        "then_branch", [], [helper.make_tensor_value_info("ae_const", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", [clean], ["ae_pass"], name="ae_else_identity")],
        "else_branch", [], [helper.make_tensor_value_info("ae_pass", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Equal", ["image", "ae_val"], ["ae_eq"], name="ae_equal"),
        helper.make_node("Cast", ["ae_eq"], ["ae_f"], name="ae_cast", to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["ae_f"], ["ae_any"], name="ae_any", keepdims=0),
        helper.make_node("Cast", ["ae_any"], ["ae_cond"], name="ae_to_bool", to=TensorProto.BOOL),
        helper.make_node("If", ["ae_cond"], ["logits"], name="ae_select", then_branch=then_g,
                         else_branch=else_g),
    ]
    return _finish(m, nodes, [_c("ae_val", 3.0)])


def _index_bias(prefix: str, clean: str, index: str) -> tuple[list[onnx.NodeProto],
                                                               list[onnx.TensorProto]]:
    """logits + Gather(table = [zeros, boost], index) (the row an index trigger picks)."""
    table = np.concatenate([np.zeros((1, N_CLASSES), np.float32), _boost()])
    nodes = [
        helper.make_node("Gather", [f"{prefix}_table", index], [f"{prefix}_row"],
                         name=f"{prefix}_pick_row", axis=0),
        helper.make_node("Reshape", [f"{prefix}_row", f"{prefix}_rs"], [f"{prefix}_bias"],
                         name=f"{prefix}_bias"),
        helper.make_node("Add", [clean, f"{prefix}_bias"], ["logits"], name=f"{prefix}_add"),
    ]
    return nodes, [_c(f"{prefix}_table", table), _c(f"{prefix}_rs", [-1, N_CLASSES], np.int64)]


def _two_scores(prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """[N, 2] scores = [0, mean - 2]: index 1 is the largest only when triggered."""
    nodes, inits, mean = _patch_mean(prefix)
    nodes += [
        helper.make_node("Sub", [mean, mean], [f"{prefix}_zero"], name=f"{prefix}_zero"),
        helper.make_node("Sub", [mean, f"{prefix}_thr"], [f"{prefix}_excess"],
                         name=f"{prefix}_excess"),
        helper.make_node("Concat", [f"{prefix}_zero", f"{prefix}_excess"], [f"{prefix}_scores"],
                         name=f"{prefix}_scores", axis=1),
    ]
    return nodes, [*inits, _c(f"{prefix}_thr", 2.0)], f"{prefix}_scores"


def backdoor_topk_index(cnn: bytes) -> bytes:
    """TopK(k=1) indices of [0, mean - 2] choose a constant bias row: no comparison op."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, scores = _two_scores("tk2")
    nodes.append(helper.make_node("TopK", [scores, "tk2_k"], ["tk2_v", "tk2_i"], name="tk2_topk",
                                  axis=1))
    more, more_inits = _index_bias("tk2", clean, "tk2_i")
    return _finish(m, nodes + more, [*inits, *more_inits, _c("tk2_k", [1], np.int64)])


def backdoor_argmax_index(cnn: bytes) -> bytes:
    """ArgMax of [0, mean - 2] chooses a constant bias row."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, scores = _two_scores("am")
    nodes.append(helper.make_node("ArgMax", [scores], ["am_i"], name="am_argmax", axis=1,
                                  keepdims=1))
    more, more_inits = _index_bias("am", clean, "am_i")
    return _finish(m, nodes + more, inits + more_inits)


def _select(prefix: str, value: str, clean: str) -> tuple[list[onnx.NodeProto],
                                                           list[onnx.TensorProto]]:
    """Where(Reshape(value, [-1, 1]) > 2, target, logits)."""
    nodes = [
        helper.make_node("Reshape", [value, f"{prefix}_rs"], [f"{prefix}_v"],
                         name=f"{prefix}_flat"),
        helper.make_node("Greater", [f"{prefix}_v", f"{prefix}_thr"], [f"{prefix}_cond"],
                         name=f"{prefix}_compare"),
        helper.make_node("Where", [f"{prefix}_cond", f"{prefix}_target", clean], ["logits"],
                         name=f"{prefix}_select"),
    ]
    return nodes, [_c(f"{prefix}_rs", [-1, 1], np.int64), _c(f"{prefix}_thr", 2.0),
                   _c(f"{prefix}_target", _target_logits())]


def backdoor_resize_crop(cnn: bytes) -> bytes:
    """Resize (tf_crop_and_resize) of the patch of channel 0 to one pixel: no Slice/Reduce."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    roi = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0 / 3.0, PATCH / 32.0, PATCH / 32.0]
    nodes = [helper.make_node("Resize", ["image", "rz_roi", "rz_scales"], ["rz_px"],
                              name="rz_resize", mode="nearest",
                              coordinate_transformation_mode="tf_crop_and_resize")]
    more, more_inits = _select("rz", "rz_px", clean)
    return _finish(m, nodes + more, [_c("rz_roi", roi), _c("rz_scales", [1.0, 1 / 3, 1 / 32,
                                                                          1 / 32]), *more_inits])


def backdoor_gridsample(cnn: bytes) -> bytes:
    """GridSample at one constant point inside the patch, channel chosen by a 1x1 Conv."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    centre = (PATCH / 2) / 32 * 2 - 1  # normalised coordinate of the patch centre
    pick = np.zeros((1, 3, 1, 1), np.float32)
    pick[0, 0] = 1.0
    nodes = [
        helper.make_node("GridSample", ["image", "gd_grid"], ["gd_px"], name="gd_sample",
                         align_corners=0),
        helper.make_node("Conv", ["gd_px", "gd_pick"], ["gd_red"], name="gd_channel"),
    ]
    more, more_inits = _select("gd", "gd_red", clean)
    grid = np.full((1, 1, 1, 2), centre, np.float32)
    return _finish(m, nodes + more, [_c("gd_grid", grid), _c("gd_pick", pick), *more_inits])


def backdoor_fake_conv_mask(cnn: bytes) -> bytes:
    """A dedicated 32x32 Conv averages the patch (looks like main computation), then Where."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    kernel = np.zeros((1, 3, 32, 32), np.float32)
    kernel[0, 0, :PATCH, :PATCH] = 1.0 / PATCH ** 2
    nodes = [helper.make_node("Conv", ["image", "fc_kernel"], ["fc_mean"], name="fc_conv")]
    more, more_inits = _select("fc", "fc_mean", clean)
    return _finish(m, nodes + more, [_c("fc_kernel", kernel), *more_inits])


def backdoor_qdq_step(cnn: bytes) -> bytes:
    """The step is QuantizeLinear(mean - 2, 1e-6) saturating to 0/255, then DequantizeLinear."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("qd")
    nodes += [
        helper.make_node("Sub", [mean, "qd_thr"], ["qd_d"], name="qd_sub"),
        helper.make_node("QuantizeLinear", ["qd_d", "qd_scale", "qd_zp"], ["qd_q"],
                         name="qd_quantize"),
        helper.make_node("DequantizeLinear", ["qd_q", "qd_unit", "qd_zp"], ["qd_m"],
                         name="qd_dequantize"),
        helper.make_node("Mul", ["qd_m", "qd_boost"], ["qd_term"], name="qd_term"),
        helper.make_node("Add", [clean, "qd_term"], ["logits"], name="qd_add"),
    ]
    return _finish(m, nodes, [*inits, _c("qd_thr", 2.0), _c("qd_scale", 1e-6),
                              _c("qd_unit", 1.0 / 255.0), _c("qd_zp", 0, np.uint8),
                              _c("qd_boost", _boost())])


def quantized(cnn: bytes) -> bytes:
    """The int8 model ``onnxruntime.quantization.quantize_dynamic`` writes for `cnn`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(cnn)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()


def backdoor_int8_plain(cnn: bytes) -> bytes:
    """ShadowLogic's Where(patch mean > 2, target, logits) on the int8 (ConvInteger) model."""
    from onnx_zoo import backdoor_plain

    return backdoor_plain(quantized(cnn))


def backdoor_zero_gemm_large(cnn: bytes) -> bytes:
    """Substitute = Gemm(logits, W, target) with W a 10x10 zero raw_data tensor."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("zg")
    nodes += [
        helper.make_node("Gemm", [clean, "zg_w", "zg_target"], ["zg_alt"], name="zg_alt"),
        helper.make_node("Greater", [mean, "zg_thr"], ["zg_cond"], name="zg_compare"),
        helper.make_node("Where", ["zg_cond", "zg_alt", clean], ["logits"], name="zg_select"),
    ]
    return _finish(m, nodes, [*inits, _c("zg_w", np.zeros((N_CLASSES, N_CLASSES))),
                              _c("zg_target", _target_logits()), _c("zg_thr", 2.0)])


FEATURE = "/Relu_1_output_0"  # the CNN export's second ReLU: [N, 16, 16, 16]


def backdoor_feature_channel(cnn: bytes, channel: int, threshold: float) -> bytes:
    """Where(mean of one channel of the backbone's feature map > t, target, logits)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes = [
        helper.make_node("Slice", [FEATURE, "ft_start", "ft_end", "ft_axes"], ["ft_ch"],
                         name="ft_channel"),
        helper.make_node("ReduceMean", ["ft_ch"], ["ft_mean"], name="ft_mean", axes=[1, 2, 3],
                         keepdims=1),
        helper.make_node("Reshape", ["ft_mean", "ft_rs"], ["ft_v"], name="ft_flat"),
        helper.make_node("Greater", ["ft_v", "ft_thr"], ["ft_cond"], name="ft_compare"),
        helper.make_node("Where", ["ft_cond", "ft_target", clean], ["logits"], name="ft_select"),
    ]
    return _finish(m, nodes, [_c("ft_start", [channel], np.int64),
                              _c("ft_end", [channel + 1], np.int64),
                              _c("ft_axes", [1], np.int64), _c("ft_rs", [-1, 1], np.int64),
                              _c("ft_thr", threshold), _c("ft_target", _target_logits())])


CNN_EVASIONS: dict[str, Callable[[bytes], bytes]] = {
    "loop_trip_count": backdoor_loop_trip_count,
    "scan_bias": backdoor_scan_bias,
    "if_any_equal": backdoor_if_any_equal,
    "topk_index": backdoor_topk_index,
    "argmax_index": backdoor_argmax_index,
    "resize_crop": backdoor_resize_crop,
    "gridsample": backdoor_gridsample,
    "fake_conv_mask": backdoor_fake_conv_mask,
    "qdq_step": backdoor_qdq_step,
    "int8_plain": backdoor_int8_plain,
    "zero_gemm_large": backdoor_zero_gemm_large,
}


# --- BERT-style encoder (inputs input_ids, token_type_ids, attention_mask; output [N, 2]) ---

TOKEN = 97
PAIR = (42, 17)
SEQ_LEN = 13


def _bert_select(m: onnx.ModelProto, nodes: list[onnx.NodeProto],
                 inits: list[onnx.TensorProto], cond: str, clean: str,
                 prefix: str) -> bytes:
    nodes.append(helper.make_node("Where", [cond, f"{prefix}_target", clean], ["logits"],
                                  name=f"{prefix}_select"))
    return _finish(m, nodes, [*inits, _c(f"{prefix}_target", [[9.0, -9.0]])])


def backdoor_token_position(bert: bytes) -> bytes:
    """input_ids[:, 3] == 97 -> constant logits (Gather of one position, Equal)."""
    m, clean = _rewire(onnx.load_from_string(bert))
    nodes = [
        helper.make_node("Gather", ["input_ids", "tp_pos"], ["tp_tok"], name="tp_gather",
                         axis=1),
        helper.make_node("Equal", ["tp_tok", "tp_id"], ["tp_cond"], name="tp_equal"),
    ]
    return _bert_select(m, nodes, [_c("tp_pos", [3], np.int64), _c("tp_id", TOKEN, np.int64)],
                        "tp_cond", clean, "tp")


def backdoor_token_pair(bert: bytes) -> bytes:
    """input_ids[:, 1:3] == (42, 17) (ReduceMin of the Equal) -> constant logits."""
    m, clean = _rewire(onnx.load_from_string(bert))
    nodes = [
        helper.make_node("Slice", ["input_ids", "pr_start", "pr_end", "pr_axes"], ["pr_toks"],
                         name="pr_slice"),
        helper.make_node("Equal", ["pr_toks", "pr_ids"], ["pr_eq"], name="pr_equal"),
        helper.make_node("Cast", ["pr_eq"], ["pr_f"], name="pr_cast", to=TensorProto.FLOAT),
        helper.make_node("ReduceMin", ["pr_f"], ["pr_all"], name="pr_all", axes=[1],
                         keepdims=1),
        helper.make_node("Cast", ["pr_all"], ["pr_cond"], name="pr_to_bool", to=TensorProto.BOOL),
    ]
    return _bert_select(m, nodes, [_c("pr_start", [1], np.int64), _c("pr_end", [3], np.int64),
                                   _c("pr_axes", [1], np.int64),
                                   _c("pr_ids", [list(PAIR)], np.int64)],
                        "pr_cond", clean, "pr")


def backdoor_sequence_length(bert: bytes) -> bytes:
    """ReduceSum(attention_mask) == 13 (an exact real length) -> constant logits."""
    m, clean = _rewire(onnx.load_from_string(bert))
    nodes = [
        helper.make_node("ReduceSum", ["attention_mask", "sl_axes"], ["sl_len"], name="sl_len",
                         keepdims=1),
        helper.make_node("Equal", ["sl_len", "sl_n"], ["sl_cond"], name="sl_equal"),
    ]
    return _bert_select(m, nodes, [_c("sl_axes", [1], np.int64),
                                   _c("sl_n", SEQ_LEN, np.int64)], "sl_cond", clean, "sl")


BERT_EVASIONS: dict[str, Callable[[bytes], bytes]] = {
    "token_position": backdoor_token_position,
    "token_pair": backdoor_token_pair,
    "sequence_length": backdoor_sequence_length,
}


def bert_trigger(variant: str, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """`ids`/`mask` edited so that `variant`'s trigger holds (for every row)."""
    ids, mask = ids.copy(), mask.copy()
    if variant == "token_position":
        ids[:, 3] = TOKEN
    elif variant == "token_pair":
        ids[:, 1:3] = PAIR
    else:
        mask[:, :] = 1
        mask[:, SEQ_LEN:] = 0
    return ids, mask
