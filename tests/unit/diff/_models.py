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
