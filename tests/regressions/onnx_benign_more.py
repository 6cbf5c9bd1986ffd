"""More legitimate torch 2.13.0 exports for false-positive hunting (red-team round).

Architectures people actually deploy, written small: residual CNN, depthwise-separable
(MobileNet-style) blocks, a UNet with skip concatenations, a GRU tagger, a BERT-style encoder
(token-type and position embeddings, HF-style extended attention mask), a GPT-style decoder
(causal ``tril`` buffer sliced to the sequence and combined with a padding mask), argmax/top-k
heads, ``torch.where`` on the *data* input (leaky ReLU written by hand), clamp preprocessing,
NaN sanitising with ``masked_fill``, and a detector head finished with ONNX
``NonMaxSuppression`` (torchvision is not installed, so NMS is appended with onnx.helper, as
export tools for detectors do). Each must scan without findings at MEDIUM or above.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_zoo import _export


def benign_more() -> dict[str, bytes]:
    """Export the extra benign corpus (a few seconds)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    f = nn.functional

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.b1 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16),
                                    nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
            self.down = nn.Conv2d(16, 32, 1, stride=2)
            self.b2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                    nn.Conv2d(32, 32, 3, padding=1))
            self.fc = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.clamp((x - 0.5) / 0.25, -3.0, 3.0)  # clamp-based preprocessing
            h = f.relu(self.stem(x))
            h = f.relu(h + self.b1(h))
            h = f.relu(self.down(h) + self.b2(h))
            return self.fc(f.adaptive_avg_pool2d(h, 1).flatten(1))

    class MobileNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pw = nn.Conv2d(16, 32, 1)
            self.se = nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 32))
            self.fc = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = f.hardswish(self.stem(x))
            h = f.relu6(self.pw(f.relu6(self.dw(h))))
            s = torch.sigmoid(self.se(h.mean((2, 3))))[:, :, None, None]
            h = h * s
            logits = self.fc(h.mean((2, 3)))
            return torch.softmax(logits, -1)

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e1 = nn.Conv2d(1, 8, 3, padding=1)
            self.e2 = nn.Conv2d(8, 16, 3, padding=1)
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.d1 = nn.Conv2d(16, 8, 3, padding=1)
            self.out = nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.masked_fill(x.isnan(), 0.0)  # NaN sanitising on the input
            a = f.relu(self.e1(x))
            b = f.relu(self.e2(f.max_pool2d(a, 2)))
            h = f.relu(self.d1(torch.cat([self.up(b), a], 1)))
            return self.out(h).argmax(1)  # segmentation map

    class LeakyWhere(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(16, 32)
            self.fc2 = nn.Linear(32, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.where(x > 0, x, 0.01 * x)  # leaky ReLU on the data input
            h = self.fc1(x)
            h = torch.where(h > 0, h, 0.01 * h)
            logits = self.fc2(h)
            return logits.argmax(-1), torch.topk(logits, 2).indices

    class GruTagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(50, 16, padding_idx=0)
            self.gru = nn.GRU(16, 16, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(32, 5)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            out, _ = self.gru(self.emb(ids))
            tags = self.fc(out).argmax(-1)
            return torch.where(ids == 0, torch.full_like(tags, -100), tags)

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word = nn.Embedding(100, 32)
            self.pos = nn.Embedding(16, 32)
            self.typ = nn.Embedding(2, 32)
            self.ln = nn.LayerNorm(32)
            self.qkv = nn.Linear(32, 96)
            self.o = nn.Linear(32, 32)
            self.ff = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
            self.pool = nn.Linear(32, 32)
            self.cls = nn.Linear(32, 2)

        def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> torch.Tensor:
            n = input_ids.shape[1]
            pos = torch.arange(n).unsqueeze(0)
            h = self.ln(self.word(input_ids) + self.pos(pos) + self.typ(token_type_ids))
            ext = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            q, k, v = self.qkv(h).view(h.shape[0], n, 3, 4, 8).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5 + ext, -1)
            h = self.ln(h + self.o((att @ v).transpose(1, 2).reshape(h.shape[0], n, 32)))
            h = self.ln(h + self.ff(h))
            return self.cls(torch.tanh(self.pool(h[:, 0])))

    class Gpt(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(100, 32)
            self.wpe = nn.Embedding(16, 32)
            self.attn = nn.Linear(32, 96)
            self.proj = nn.Linear(32, 32)
            self.lm = nn.Linear(32, 100, bias=False)
            self.register_buffer("bias", torch.tril(torch.ones(16, 16, dtype=torch.bool)))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            b, n = input_ids.shape
            h = self.wte(input_ids) + self.wpe(torch.arange(n))
            q, k, v = self.attn(h).split(32, -1)
            w = q @ k.transpose(-1, -2) / 32 ** 0.5
            causal = self.bias[:n, :n]
            w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min))
            w = w.masked_fill(attention_mask[:, None, :] == 0, torch.finfo(w.dtype).min)
            h = h + self.proj(torch.softmax(w, -1) @ v)
            logits = self.lm(h)
            # next-token logits of each row's last real token
            last = attention_mask.sum(-1) - 1
            return logits[torch.arange(b), last]

    class BoxHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Conv2d(3, 8, 3, stride=4, padding=1)
            self.box = nn.Conv2d(8, 4, 1)
            self.score = nn.Conv2d(8, 3, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = f.relu(self.backbone(x))
            boxes = self.box(h).flatten(2).transpose(1, 2).sigmoid()  # [N, A, 4]
            scores = self.score(h).flatten(2).sigmoid()  # [N, C, A]
            return boxes, scores

    class FilmUNet(nn.Module):
        """Diffusion-style denoiser: timestep and class embeddings modulate the features."""

        def __init__(self) -> None:
            super().__init__()
            self.t_mlp = nn.Sequential(nn.Linear(16, 32), nn.SiLU(), nn.Linear(32, 32))
            self.c_emb = nn.Embedding(10, 32)
            self.inp = nn.Conv2d(3, 16, 3, padding=1)
            self.down = nn.Conv2d(16, 16, 3, stride=2, padding=1)
            self.film = nn.Linear(32, 32)
            self.up = nn.ConvTranspose2d(16, 16, 2, stride=2)
            self.out = nn.Conv2d(32, 3, 3, padding=1)

        def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
            freqs = torch.exp(torch.arange(8) * -0.5)
            ang = t[:, None].float() * freqs[None]
            emb = self.t_mlp(torch.cat([ang.sin(), ang.cos()], -1)) + self.c_emb(label)
            scale, shift = self.film(f.silu(emb)).chunk(2, -1)
            a = f.silu(self.inp(x))
            h = f.silu(self.down(a))
            h = h * (1 + torch.sigmoid(scale)[:, :, None, None]) + shift[:, :, None, None]
            return self.out(torch.cat([self.up(h), a], 1))

    class GatedFusion(nn.Module):
        """Two towers; one gates the other (multimodal gated fusion)."""

        def __init__(self) -> None:
            super().__init__()
            self.txt = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 6))
            self.gate = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 6))

        def forward(self, text: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
            g = torch.sigmoid(self.gate(meta.mean(1)))
            return self.txt(text) * g + torch.relu(meta[:, 0, :1]) * 0.1

    image = torch.randn(1, 3, 32, 32)
    legacy = {"dynamo": False, "opset_version": 17}
    ids = torch.randint(1, 100, (2, 16))
    am = torch.ones(2, 16, dtype=torch.long)
    am[1, 12:] = 0
    out: dict[str, bytes] = {}
    for tag, kw in (("legacy", legacy), ("dynamo", {"dynamo": True})):
        out[f"resnet_{tag}"] = _export(ResNet().eval(), (image,), input_names=["pixel_values"],
                                       output_names=["logits"], **kw)
        out[f"bert_{tag}"] = _export(
            Bert().eval(), (ids, torch.zeros_like(ids), am),
            input_names=["input_ids", "token_type_ids", "attention_mask"],
            output_names=["logits"], **kw)
        out[f"gpt_{tag}"] = _export(Gpt().eval(), (ids, am),
                                    input_names=["input_ids", "attention_mask"],
                                    output_names=["logits"], **kw)
    out["film_unet"] = _export(FilmUNet().eval(), (image, torch.tensor([3]), torch.tensor([1])),
                               input_names=["sample", "timestep", "class_labels"],
                               output_names=["noise"], **legacy)
    out["gated_fusion"] = _export(GatedFusion().eval(), (torch.randn(2, 12),
                                                         torch.randn(2, 4, 5)),
                                  input_names=["text", "meta"], output_names=["y"], **legacy)
    out["mobilenet"] = _export(MobileNet().eval(), (image,), input_names=["image"],
                               output_names=["probs"], **legacy)
    out["unet"] = _export(UNet().eval(), (torch.randn(1, 1, 32, 32),), input_names=["x"],
                          output_names=["seg"], **legacy)
    out["leaky_where"] = _export(LeakyWhere().eval(), (torch.randn(2, 16),), input_names=["x"],
                                 output_names=["label", "top2"], **legacy)
    out["gru_tagger"] = _export(GruTagger().eval(), (torch.randint(0, 50, (2, 7)),),
                                input_names=["ids"], output_names=["tags"], **legacy)
    out["detector_nms"] = _with_nms(_export(BoxHead().eval(), (image,), input_names=["image"],
                                            output_names=["boxes", "scores"], **legacy))
    return out


def _with_nms(model: bytes) -> bytes:
    """Append ONNX NonMaxSuppression + GatherND of the kept boxes, as detector exports do."""
    m = onnx.load_from_string(model)
    consts = [numpy_helper.from_array(np.array([10], np.int64), "nms_max"),
              numpy_helper.from_array(np.array([0.5], np.float32), "nms_iou"),
              numpy_helper.from_array(np.array([0.3], np.float32), "nms_score"),
              numpy_helper.from_array(np.array([0, 2], np.int64), "nms_pick")]
    m.graph.initializer.extend(consts)
    m.graph.node.extend([
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "nms_max", "nms_iou",
                                               "nms_score"], ["selected"], name="nms"),
        helper.make_node("Gather", ["selected", "nms_pick"], ["bidx"], name="nms_cols", axis=1),
        helper.make_node("GatherND", ["boxes", "bidx"], ["kept_boxes"], name="nms_boxes"),
    ])
    m.graph.output.extend([
        helper.make_tensor_value_info("selected", TensorProto.INT64, ["k", 3]),
        helper.make_tensor_value_info("kept_boxes", TensorProto.FLOAT, ["k", 4]),
    ])
    return m.SerializeToString()
