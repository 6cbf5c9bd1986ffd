"""Real models for the diff tests: torch 2.13.0 modules exported to TorchScript and ONNX.

A small CNN classifier and a transformer-encoder classifier are each written three ways from
one trained-free module (seeded): TorchScript (the source), ONNX with the legacy exporter
(the converted target, named so that the graph-backdoor injectors of
``tests/regressions/onnx_zoo.py`` apply), and derived ONNX versions: ONNX Runtime optimised,
fp16 (initializers cast, Cast nodes at the boundary) and int8 (``quantize_dynamic``).
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "regressions"))
import onnx_zoo

__all__ = ["build", "fp16", "int8", "onnx_zoo", "optimised", "with_changed_weight"]


def _modules() -> tuple[object, object]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.fc = nn.Linear(16, onnx_zoo.N_CLASSES)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.c1(image))
            x = nn.functional.max_pool2d(x, 2)
            x = torch.relu(self.c2(x))
            return self.fc(x.mean((2, 3)))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(32, 3)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(self.emb(ids))[:, 0])

    return CNN().eval(), Encoder().eval()


def build(folder: Path) -> dict[str, Path]:
    """Write ``cnn.pt``/``cnn.onnx`` and ``enc.pt``/``enc.onnx`` (TorchScript, ONNX)."""
    import torch

    cnn, enc = _modules()
    image = torch.randn(1, 3, 32, 32)
    ids = torch.randint(1, 100, (2, 16))
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, module, args, inputs in (("cnn", cnn, (image,), ["image"]),
                                           ("enc", enc, (ids,), ["ids"])):
            torch.jit.trace(module, args, check_trace=False).save(str(folder / f"{name}.pt"))
            buf = io.BytesIO()
            torch.onnx.export(module, args, buf, input_names=inputs, output_names=["logits"],
                              dynamo=False, opset_version=17,
                              dynamic_axes={inputs[0]: {0: "n"}})
            (folder / f"{name}.onnx").write_bytes(buf.getvalue())
            paths[name] = folder / f"{name}.onnx"
            paths[f"{name}_ts"] = folder / f"{name}.pt"
    return paths


def optimised(src: Path, dst: Path) -> Path:
    """ONNX Runtime's extended graph optimisations (fusions), saved as a model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    return dst


def fp16(src: Path, dst: Path) -> Path:
    """Float initializers stored as float16 and cast back at use (weights-only fp16)."""
    m = onnx.load(str(src))
    casts = []
    for t in list(m.graph.initializer):
        if t.data_type == TensorProto.FLOAT and len(t.dims) >= 1:
            half = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16),
                                           t.name + "_fp16")
            m.graph.initializer.remove(t)
            m.graph.initializer.append(half)
            casts.append(helper.make_node("Cast", [half.name], [t.name], name=f"cast_{t.name}",
                                          to=TensorProto.FLOAT))
    nodes = casts + list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    dst.write_bytes(m.SerializeToString())
    return dst


def int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of MatMul/Gemm weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return dst


def with_changed_weight(src: Path, dst: Path, name: str, factor: float = 1.5) -> Path:
    """One weight's row silently scaled (a tampered conversion)."""
    m = onnx.load(str(src))
    for t in m.graph.initializer:
        if t.name == name:
            w = numpy_helper.to_array(t).copy()
            w[0] *= factor
            t.CopyFrom(numpy_helper.from_array(w, name))
    dst.write_bytes(m.SerializeToString())
    return dst


def backdoored(src: Path, dst: Path, variant: str) -> Path:
    """`src` with one of onnx_zoo's graph backdoors injected."""
    if variant == "token":
        data = onnx_zoo.backdoor_token(src.read_bytes())
    else:
        data = onnx_zoo.BACKDOORS[variant](src.read_bytes())
    dst.write_bytes(data)
    return dst


def leaking(src: Path, dst: Path, eps: float = 1e-6, beta: float = 6.0) -> Path:
    """A converted CNN that adds ``eps * exp(beta * m)`` to the target class's logit, where
    ``m`` is the mean of the red trigger patch: invisible on ordinary inputs (relative
    error far below the fp32 tolerance), decisive once the patch is bright. The region where
    it shows is narrow (``m`` of a random input has standard deviation 0.25) but the leak
    grows smoothly towards it, which a gradient search can follow."""
    m, clean = onnx_zoo._rewire(onnx.load(str(src)))
    nodes, inits, mean = onnx_zoo._patch_mean("lk")
    hot = np.zeros((1, onnx_zoo.N_CLASSES), np.float32)
    hot[0, onnx_zoo.TARGET] = eps
    nodes += [
        helper.make_node("Mul", [mean, "lk_beta"], ["lk_scaled"], name="lk_scale"),
        helper.make_node("Exp", ["lk_scaled"], ["lk_exp"], name="lk_exp"),
        helper.make_node("Mul", ["lk_exp", "lk_hot"], ["lk_leak"], name="lk_leak"),
        helper.make_node("Add", [clean, "lk_leak"], ["logits"], name="lk_add"),
    ]
    inits += [numpy_helper.from_array(np.float32(beta), "lk_beta"),
              numpy_helper.from_array(hot, "lk_hot")]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    dst.write_bytes(m.SerializeToString())
    return dst


def close_calls(src: Path, dst: Path, band: float = 2e-3, push: float = 20.0) -> Path:
    """A converted classifier that re-decides close calls: where the top-1/top-2 margin is
    below `band`, the top class loses ``push * (band - margin)``. Ordinary inputs are far
    from the boundary (outputs identical); only inputs inside the narrow band diverge."""
    m, clean = onnx_zoo._rewire(onnx.load(str(src)))
    nodes = [
        helper.make_node("TopK", [clean, "cc_k"], ["cc_top", "cc_idx"], name="cc_topk"),
        helper.make_node("ReduceMax", [clean], ["cc_max"], name="cc_max", axes=[1], keepdims=1),
        helper.make_node("Slice", ["cc_top", "cc_one", "cc_two", "cc_one"], ["cc_second"],
                         name="cc_second"),
        helper.make_node("Sub", ["cc_max", "cc_second"], ["cc_margin"], name="cc_margin"),
        helper.make_node("Sub", ["cc_band", "cc_margin"], ["cc_gap"], name="cc_gap"),
        helper.make_node("Relu", ["cc_gap"], ["cc_inside"], name="cc_inside"),
        helper.make_node("Mul", ["cc_inside", "cc_push"], ["cc_amount"], name="cc_amount"),
        helper.make_node("Equal", [clean, "cc_max"], ["cc_is_top"], name="cc_is_top"),
        helper.make_node("Cast", ["cc_is_top"], ["cc_top_f"], name="cc_top_f",
                         to=TensorProto.FLOAT),
        helper.make_node("Mul", ["cc_top_f", "cc_amount"], ["cc_penalty"], name="cc_penalty"),
        helper.make_node("Sub", [clean, "cc_penalty"], ["logits"], name="cc_redecide"),
    ]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend([
        numpy_helper.from_array(np.array([2], np.int64), "cc_k"),
        numpy_helper.from_array(np.array([1], np.int64), "cc_one"),
        numpy_helper.from_array(np.array([2], np.int64), "cc_two"),
        numpy_helper.from_array(np.float32(band), "cc_band"),
        numpy_helper.from_array(np.float32(push), "cc_push")])
    dst.write_bytes(m.SerializeToString())
    return dst


def backdoor_inside_if(src: Path, dst: Path) -> Path:
    """A NaN-guard If (taken on every finite input) whose then-branch holds the whole
    trigger: it compares the trigger patch's mean (computed outside, read through an
    outer-scope reference) and selects."""
    m, clean = onnx_zoo._rewire(onnx.load(str(src)))
    nodes, inits, mean = onnx_zoo._patch_mean("ii")
    then_g = helper.make_graph(
        [helper.make_node("Greater", [mean, "ii_thr"], ["ii_c"], name="ii_then_compare"),
         helper.make_node("Where", ["ii_c", "ii_target", clean], ["ii_out"],
                          name="ii_then_select")],
        "then_branch", [], [helper.make_tensor_value_info("ii_out", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", [clean], ["ii_pass"], name="ii_else_identity")],
        "else_branch", [], [helper.make_tensor_value_info("ii_pass", TensorProto.FLOAT, None)])
    nodes += [  # branch taken unless the logits are NaN: looks like a sanity check
        helper.make_node("ReduceMax", [clean], ["ii_any"], name="ii_any", keepdims=0),
        helper.make_node("IsNaN", ["ii_any"], ["ii_nan"], name="ii_isnan"),
        helper.make_node("Not", ["ii_nan"], ["ii_finite"], name="ii_finite"),
        helper.make_node("If", ["ii_finite"], ["logits"], name="ii_if",
                         then_branch=then_g, else_branch=else_g)]
    inits += [numpy_helper.from_array(np.float32(2.0), "ii_thr"),
              numpy_helper.from_array(onnx_zoo._target_logits(), "ii_target")]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    dst.write_bytes(m.SerializeToString())
    return dst
