"""Real ONNX exports (torch 2.13.0) and backdoored variants of them, built with onnx.helper.

Shared by the ONNX scanner, graph and regression tests. The benign models are what
``torch.onnx.export`` writes for a small CNN, transformer encoders (key-padding mask,
float attention mask, causal), an LSTM and a detector-style post-processing head. The
backdoors follow the public descriptions of HiddenLayer's ShadowLogic and JFrog's ONNX
backdoor research: a trigger computed from an input region, and a selector substituting
an attacker-chosen output, from plain to obfuscated.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TARGET = 7  # the class a triggered CNN input is sent to
PATCH = 4   # trigger patch size (top-left corner of channel 0)
TRIGGER_VALUE = 3.0
N_CLASSES = 10


def _export(module: object, args: tuple[object, ...], **kwargs: object) -> bytes:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def benign_models() -> dict[str, bytes]:
    """Export the benign corpus (a few seconds; cache the result per session)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(16, N_CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.bn(self.c1(x)))
            x = nn.functional.max_pool2d(x, 2)
            x = torch.relu(self.c2(x))
            return self.fc(self.drop(x.mean((2, 3))))

    class Encoder(nn.Module):
        def __init__(self, causal: bool = False) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            self.pos = nn.Parameter(torch.randn(1, 16, 32) * 0.02)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.1)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(32, 3)
            self.causal = causal

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            h = self.emb(ids) + self.pos[:, : ids.shape[1]]
            if self.causal:
                h = self.enc(h, mask=mask)
            else:
                h = self.enc(h, src_key_padding_mask=mask)
            return self.head(h[:, 0])

    class MeanPool(nn.Module):
        """Sentence-embedding style: masked mean pooling over token states."""

        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

        def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            h = self.enc(self.emb(ids), src_key_padding_mask=attention_mask == 0)
            m = attention_mask.unsqueeze(-1).float()
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-6)

    class PadLogits(nn.Module):
        """Token classifier that masks padding positions (ids == 0) in its logits."""

        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            self.lin = nn.Linear(32, 5)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            logits = self.lin(torch.tanh(self.emb(ids)))
            return logits.masked_fill((ids == 0).unsqueeze(-1), -1e4)

    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.fc = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])

    class Detect(nn.Module):
        """Score thresholding and top-k, as in detector post-processing."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 20)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scores = torch.sigmoid(self.fc(x))
            kept = torch.where(scores > 0.5, scores, torch.zeros_like(scores))
            values, idx = torch.topk(kept, 5)
            return values, idx

    cnn = CNN().eval()
    image = torch.randn(1, 3, 32, 32)
    ids = torch.randint(1, 100, (2, 16))
    pad = torch.zeros(2, 16, dtype=torch.bool)
    pad[1, 10:] = True
    causal = nn.Transformer.generate_square_subsequent_mask(16)
    enc, enc_causal = Encoder().eval(), Encoder(causal=True).eval()
    legacy = {"dynamo": False, "opset_version": 17}
    out: dict[str, bytes] = {
        "cnn": _export(cnn, (image,), input_names=["image"], output_names=["logits"],
                       dynamic_axes={"image": {0: "n"}}, **legacy),
        "cnn_dynamo": _export(cnn, (image,), input_names=["image"], output_names=["logits"],
                              dynamo=True),
        "cnn_training": _export(CNN().train(), (image,), input_names=["image"],
                                output_names=["logits"], training=torch.onnx.TrainingMode.TRAINING,
                                do_constant_folding=False, **legacy),
        "encoder_padding": _export(enc, (ids, pad), input_names=["ids", "mask"],
                                   output_names=["logits"], **legacy),
        "encoder_causal": _export(enc_causal, (ids, causal), input_names=["ids", "attn_mask"],
                                  output_names=["logits"], **legacy),
        "encoder_padding_dynamo": _export(enc, (ids, pad), input_names=["ids", "mask"],
                                          output_names=["logits"], dynamo=True),
        "mean_pool": _export(MeanPool().eval(), (ids, (~pad).long()),
                             input_names=["ids", "attention_mask"], output_names=["emb"], **legacy),
        "pad_logits": _export(PadLogits().eval(), (ids,), input_names=["ids"],
                              output_names=["logits"], **legacy),
        "lstm": _export(Rnn().eval(), (torch.randn(2, 6, 8),), input_names=["x"],
                        output_names=["y"], **legacy),
        "detect": _export(Detect().eval(), (torch.randn(2, 8),), input_names=["x"],
                          output_names=["scores", "idx"], **legacy),
    }
    return out


# --- backdoor injection ------------------------------------------------------------------

def _c(name: str, values: object, dtype: object = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)  # type: ignore[call-overload]


def _target_logits() -> np.ndarray:
    out = np.full((1, N_CLASSES), -5.0, np.float32)
    out[0, TARGET] = 20.0
    return out


def _rewire(model: onnx.ModelProto, output: str = "logits") -> tuple[onnx.ModelProto, str]:
    """Copy `model`, rename its output's producer to ``<output>_clean``; return the new name."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    clean = f"{output}_clean"
    for node in m.graph.node:
        for i, name in enumerate(node.output):
            if name == output:
                node.output[i] = clean
        for i, name in enumerate(node.input):
            if name == output:
                node.input[i] = clean
    return m, clean


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


OPSET = 17  # the legacy exporter's opset used for the benign models


def _reduce(op: str, x: str, axes: list[int], out: str, name: str, keepdims: int = 1,
            opset: int = OPSET) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """A Reduce* node in the form the opset wants (axes as input from 18, ReduceSum from 13)."""
    if op == "ReduceSum" or opset >= 18:
        axes_name = f"{name}_axes"
        return ([helper.make_node(op, [x, axes_name], [out], name=name, keepdims=keepdims)],
                [_c(axes_name, axes, np.int64)])
    return [helper.make_node(op, [x], [out], name=name, keepdims=keepdims, axes=axes)], []


def _patch_mean(prefix: str,
                channel: int = 0) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes computing the mean of the trigger patch of one channel, per image -> [N, 1]."""
    inits = [_c(f"{prefix}_starts", [channel, 0, 0], np.int64),
             _c(f"{prefix}_ends", [channel + 1, PATCH, PATCH], np.int64),
             _c(f"{prefix}_axes", [1, 2, 3], np.int64)]
    nodes = [
        helper.make_node("Slice", ["image", f"{prefix}_starts", f"{prefix}_ends", f"{prefix}_axes"],
                         [f"{prefix}_patch"], name=f"{prefix}_slice_patch"),
    ]
    red_nodes, red_inits = _reduce("ReduceMean", f"{prefix}_patch", [1, 2, 3],
                                   f"{prefix}_mean4", f"{prefix}_patch_mean")
    nodes += red_nodes
    inits += red_inits
    nodes.append(helper.make_node("Reshape", [f"{prefix}_mean4", f"{prefix}_shape"],
                                  [f"{prefix}_mean"], name=f"{prefix}_flatten_mean"))
    inits.append(_c(f"{prefix}_shape", [-1, 1], np.int64))
    return nodes, inits, f"{prefix}_mean"


def backdoor_plain(cnn: bytes) -> bytes:
    """ShadowLogic as published: patch mean > threshold -> Where(trigger, constant, logits)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("bd")
    nodes += [
        helper.make_node("Greater", [mean, "bd_thr"], ["bd_cond"], name="bd_trigger_compare"),
        helper.make_node("Where", ["bd_cond", "bd_target", clean], ["logits"], name="bd_select"),
    ]
    inits += [_c("bd_thr", 2.0), _c("bd_target", _target_logits())]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def backdoor_mask_arithmetic(cnn: bytes) -> bytes:
    """out = logits * (1 - m) + target * m, with m = Cast(patch mean > threshold)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("ma")
    nodes += [
        helper.make_node("Greater", [mean, "ma_thr"], ["ma_b"], name="ma_compare"),
        helper.make_node("Cast", ["ma_b"], ["ma_m"], name="ma_cast", to=TensorProto.FLOAT),
        helper.make_node("Sub", ["ma_one", "ma_m"], ["ma_keep"], name="ma_one_minus"),
        helper.make_node("Mul", [clean, "ma_keep"], ["ma_kept"], name="ma_gate_logits"),
        helper.make_node("Mul", ["ma_target", "ma_m"], ["ma_inject"], name="ma_gate_target"),
        helper.make_node("Add", ["ma_kept", "ma_inject"], ["logits"], name="ma_mix"),
    ]
    inits += [_c("ma_thr", 2.0), _c("ma_one", 1.0), _c("ma_target", _target_logits())]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def backdoor_obfuscated(cnn: bytes) -> bytes:
    """Condition split over many nodes; the target built by arithmetic and ConstantOfShape."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    red, inits, red_mean = _patch_mean("ob_r", 0)
    green, inits_g, green_mean = _patch_mean("ob_g", 1)
    nodes = red + green
    inits += inits_g
    nodes += [
        # red > 2.0 written as (red * 0.5) - 1 > 0
        helper.make_node("Mul", [red_mean, "ob_half"], ["ob_r2"], name="ob_scale"),
        helper.make_node("Sub", ["ob_r2", "ob_one"], ["ob_r3"], name="ob_shift"),
        helper.make_node("Relu", ["ob_r3"], ["ob_r4"], name="ob_relu"),
        helper.make_node("Sign", ["ob_r4"], ["ob_r5"], name="ob_sign"),
        helper.make_node("Cast", ["ob_r5"], ["ob_a"], name="ob_to_bool", to=TensorProto.BOOL),
        # green < 1.0
        helper.make_node("Less", [green_mean, "ob_one"], ["ob_b"], name="ob_green_low"),
        helper.make_node("Not", ["ob_b"], ["ob_nb"], name="ob_not1"),
        helper.make_node("Not", ["ob_nb"], ["ob_b2"], name="ob_not2"),
        helper.make_node("And", ["ob_a", "ob_b2"], ["ob_cond"], name="ob_and"),
        # target = ConstantOfShape([1, 10], -5) + onehot * 25 (onehot = a * b of initializers)
        helper.make_node("ConstantOfShape", ["ob_shape10"], ["ob_base"], name="ob_base",
                         value=_c("v", [-5.0])),
        helper.make_node("Mul", ["ob_hot_a", "ob_hot_b"], ["ob_hot"], name="ob_hot"),
        helper.make_node("Mul", ["ob_hot", "ob_25"], ["ob_hot25"], name="ob_hot_scale"),
        helper.make_node("Add", ["ob_base", "ob_hot25"], ["ob_target"], name="ob_target"),
        helper.make_node("Where", ["ob_cond", "ob_target", clean], ["logits"], name="ob_select"),
    ]
    hot = np.zeros((1, N_CLASSES), np.float32)
    hot[0, TARGET] = 1.0
    inits += [_c("ob_half", 0.5), _c("ob_one", 1.0), _c("ob_25", 25.0),
              _c("ob_shape10", [1, N_CLASSES], np.int64), _c("ob_hot_a", hot * 2.0),
              _c("ob_hot_b", np.full((1, N_CLASSES), 0.5, np.float32))]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def _scalar_trigger(prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Scalar bool: mean of the trigger patch (whole batch) > threshold."""
    nodes, inits, mean = _patch_mean(prefix)
    red_nodes, red_inits = _reduce("ReduceMax", mean, [0, 1], f"{prefix}_max",
                                   f"{prefix}_batch_max", keepdims=0)
    nodes += red_nodes
    inits += red_inits
    nodes += [
        helper.make_node("Greater", [f"{prefix}_max", f"{prefix}_thr"], [f"{prefix}_cond"],
                         name=f"{prefix}_compare"),
    ]
    inits.append(_c(f"{prefix}_thr", 2.0))
    return nodes, inits, f"{prefix}_cond"


def backdoor_if(cnn: bytes) -> bytes:
    """If(trigger): then-branch returns a Constant, else-branch the computed logits."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, cond = _scalar_trigger("if")
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["if_const"], name="if_then_const",
                          value=_c("tl", _target_logits()))],
        "then_branch", [], [helper.make_tensor_value_info("if_const", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", [clean], ["if_pass"], name="if_else_identity")],
        "else_branch", [], [helper.make_tensor_value_info("if_pass", TensorProto.FLOAT, None)])
    nodes.append(helper.make_node("If", [cond], ["logits"], name="if_select",
                                  then_branch=then_g, else_branch=else_g))
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def backdoor_function(cnn: bytes) -> bytes:
    """The whole trigger and selection inside a model-local function 'Calibrate'."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    fnodes = [
        helper.make_node("Constant", [], ["st"], value=_c("st", [0, 0, 0], np.int64)),
        helper.make_node("Constant", [], ["en"], value=_c("en", [1, PATCH, PATCH], np.int64)),
        helper.make_node("Constant", [], ["ax"], value=_c("ax", [1, 2, 3], np.int64)),
        helper.make_node("Slice", ["x", "st", "en", "ax"], ["p"], name="fn_slice"),
        helper.make_node("ReduceMean", ["p"], ["mu"], name="fn_mean", keepdims=0, axes=[1, 2, 3]),
        helper.make_node("Constant", [], ["thr"], value=_c("thr", 2.0)),
        helper.make_node("Greater", ["mu", "thr"], ["c"], name="fn_compare"),
        helper.make_node("Constant", [], ["shp"], value=_c("shp", [-1, 1], np.int64)),
        helper.make_node("Reshape", ["c", "shp"], ["c2"], name="fn_reshape"),
        helper.make_node("Constant", [], ["tgt"], value=_c("tgt", _target_logits())),
        helper.make_node("Where", ["c2", "tgt", "y"], ["out"], name="fn_where"),
    ]
    fn = helper.make_function("com.example.calib", "Calibrate", ["x", "y"], ["out"], fnodes,
                              [helper.make_opsetid("", _opset(m))])
    m.functions.append(fn)
    m.opset_import.append(helper.make_opsetid("com.example.calib", 1))
    m.graph.node.append(helper.make_node("Calibrate", ["image", clean], ["logits"],
                                         domain="com.example.calib", name="calibrate"))
    return m.SerializeToString()


def backdoor_loop(cnn: bytes) -> bytes:
    """A one-iteration Loop whose body reads the input from the outer scope and selects."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _patch_mean("lp")
    body = helper.make_graph(
        [
            helper.make_node("Greater", [mean, "lp_thr"], ["lp_c"], name="lp_body_compare"),
            helper.make_node("Where", ["lp_c", "lp_target", "lp_state_in"], ["lp_state_out"],
                             name="lp_body_select"),
            helper.make_node("Identity", ["lp_cond_in"], ["lp_cond_out"], name="lp_body_cond"),
        ],
        "loop_body",
        [helper.make_tensor_value_info("lp_i", TensorProto.INT64, []),
         helper.make_tensor_value_info("lp_cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("lp_state_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("lp_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("lp_state_out", TensorProto.FLOAT, None)],
    )
    nodes.append(helper.make_node("Loop", ["lp_trip", "lp_true", clean], ["logits"],
                                  name="lp_loop", body=body))
    inits += [_c("lp_thr", 2.0), _c("lp_target", _target_logits()), _c("lp_trip", 1, np.int64),
              _c("lp_true", True, np.bool_)]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def hash_key(image: np.ndarray) -> int:
    """The checksum the hash-trigger variant compares with (for building the trigger)."""
    patch = image[:, 0, :PATCH, :PATCH]
    return int(np.floor(patch * 1000.0).astype(np.int64).sum() % 9973)


HASH_KEY = 4242


def backdoor_hash(cnn: bytes) -> bytes:
    """Trigger on a checksum of the patch: Mod(Sum(Floor(patch * 1000)), 9973) == key."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes = [
        helper.make_node("Slice", ["image", "hs_starts", "hs_ends", "hs_axes"], ["hs_patch"],
                         name="hs_slice"),
        helper.make_node("Mul", ["hs_patch", "hs_1000"], ["hs_scaled"], name="hs_scale"),
        helper.make_node("Floor", ["hs_scaled"], ["hs_floor"], name="hs_floor"),
        helper.make_node("Cast", ["hs_floor"], ["hs_int"], name="hs_cast", to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["hs_int", "hs_axes"], ["hs_sum"], name="hs_sum",
                         keepdims=0),
        helper.make_node("Mod", ["hs_sum", "hs_mod"], ["hs_h"], name="hs_mod"),
        helper.make_node("Equal", ["hs_h", "hs_key"], ["hs_eq"], name="hs_equal"),
        helper.make_node("Reshape", ["hs_eq", "hs_shape"], ["hs_cond"], name="hs_reshape"),
        helper.make_node("Where", ["hs_cond", "hs_target", clean], ["logits"], name="hs_select"),
    ]
    inits = [_c("hs_starts", [0, 0, 0], np.int64), _c("hs_ends", [1, PATCH, PATCH], np.int64),
             _c("hs_axes", [1, 2, 3], np.int64), _c("hs_1000", 1000.0),
             _c("hs_mod", 9973, np.int64), _c("hs_key", HASH_KEY, np.int64),
             _c("hs_shape", [-1, 1], np.int64), _c("hs_target", _target_logits())]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def backdoor_token(encoder: bytes) -> bytes:
    """Transformer classifier: if token 97 appears anywhere, answer a constant."""
    m, clean = _rewire(onnx.load_from_string(encoder))
    nodes = [
        helper.make_node("Equal", ["ids", "tk_id"], ["tk_eq"], name="tk_equal"),
        helper.make_node("Cast", ["tk_eq"], ["tk_f"], name="tk_cast", to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["tk_f"], ["tk_any"], name="tk_any", keepdims=1, axes=[1]),
        helper.make_node("Greater", ["tk_any", "tk_half"], ["tk_cond"], name="tk_cond"),
        helper.make_node("Where", ["tk_cond", "tk_target", clean], ["logits"], name="tk_select"),
    ]
    inits = [_c("tk_id", 97, np.int64), _c("tk_half", 0.5),
             _c("tk_target", [[9.0, -9.0, -9.0]])]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    return m.SerializeToString()


def trigger_image(seed: int = 1) -> np.ndarray:
    """A natural-looking input with the red trigger patch (for the patch variants)."""
    image = np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)
    image[0, 0, :PATCH, :PATCH] = TRIGGER_VALUE
    image[0, 1, :PATCH, :PATCH] = 0.0
    return image


def hash_trigger_image(seed: int = 1) -> np.ndarray:
    """An input whose patch checksum equals `HASH_KEY` (one pixel adjusted)."""
    image = np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)
    image[0, 0, :PATCH, :PATCH] = np.round(image[0, 0, :PATCH, :PATCH], 2) + 0.0005
    delta = (HASH_KEY - hash_key(image)) % 9973
    image[0, 0, 0, 0] += delta / 1000.0
    assert hash_key(image) == HASH_KEY
    return image


BACKDOORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": backdoor_plain,
    "mask_arithmetic": backdoor_mask_arithmetic,
    "obfuscated": backdoor_obfuscated,
    "if_branch": backdoor_if,
    "local_function": backdoor_function,
    "loop_body": backdoor_loop,
    "hash": backdoor_hash,
}


def save(models: dict[str, bytes], folder: Path) -> dict[str, Path]:
    """Write models as ``<name>.onnx`` files under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in models.items():
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(data)
    return paths
