"""How long ``modelward diff`` takes on a ~100 MB model, and how much of it each backend uses.

Builds an MLP classifier of about ``100 MB * --scale`` of float32 weights, exports it to
TorchScript (source) and ONNX (target), runs `diff_models` and prints total wall time plus
load/run time per backend. ``--scale 0.05`` gives a quick smoke run.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    import torch

    from modelward.diff import DiffOptions, diff_models

    width = max(64, int(2850 * args.scale ** 0.5))  # 3 layers of width^2 floats ~ 100 MB at 1.0
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [torch.nn.Linear(256, width), torch.nn.ReLU()]
    for _ in range(3):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(width, 10))
    model = torch.nn.Sequential(*layers).eval()
    example = torch.randn(1, 256)
    with tempfile.TemporaryDirectory() as tmp:
        src, tgt = Path(tmp) / "m.pt", Path(tmp) / "m.onnx"
        torch.jit.trace(model, example).save(str(src))
        buf = io.BytesIO()
        torch.onnx.export(model, (example,), buf, input_names=["x"], output_names=["logits"],
                          dynamo=False, opset_version=17)
        tgt.write_bytes(buf.getvalue())
        size = tgt.stat().st_size / 1e6
        start = time.perf_counter()
        report = diff_models(src, tgt, DiffOptions(samples=args.samples, search_budget=16))
        total = time.perf_counter() - start
    print(f"model: {size:.1f} MB ONNX, verdict {report.verdict}")
    print(f"diff total: {total:.2f} s")
    for run in report.runs:
        print(f"  {run.role:7s} {run.backend}/{run.device}: load {run.load_seconds:.2f} s, "
              f"{run.runs} runs {run.run_seconds:.2f} s")
    rest = total - sum(r.load_seconds + r.run_seconds for r in report.runs)
    print(f"  modelward (structure, comparison, search bookkeeping): {rest:.2f} s")


if __name__ == "__main__":
    main()
