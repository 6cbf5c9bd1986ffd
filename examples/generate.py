"""Regenerate the bundled demo models in examples/ (`make examples`).

benign/    real models written by the real libraries (torch, scikit-learn/joblib, NumPy,
           safetensors, onnx, gguf): a scan must find nothing at MEDIUM or above.
malicious/ inert malicious samples built from public attack descriptions. Their payload
           only ever runs `touch /tmp/modelward-demo-marker` -- and modelward never runs it.

The files are committed so `make run` works without generating anything; this script is
how they were made. Run it from the repository root with the project's venv.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENIGN = HERE / "benign"
MALICIOUS = HERE / "malicious"
PAYLOAD = "touch /tmp/modelward-demo-marker"


class Payload:
    """Pickles as a call to os.system(PAYLOAD): what a malicious checkpoint does."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (PAYLOAD,))


def benign() -> None:
    import joblib
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    BENIGN.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10),
    )
    torch.save(net.state_dict(), BENIGN / "tiny_cnn_state_dict.pt")
    optim = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 3, 8, 8)).sum().backward()
    optim.step()
    torch.save({"epoch": 3, "model": net.state_dict(), "optimizer": optim.state_dict()},
               BENIGN / "training_checkpoint.pth")

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), rng.integers(0, 2, 60)
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
                BENIGN / "sklearn_pipeline.joblib")
    np.save(BENIGN / "embeddings.npy", rng.normal(size=(16, 8)).astype(np.float32))
    save_file({"w": rng.normal(size=(8, 8)).astype(np.float32)}, str(BENIGN / "model.safetensors"),
              metadata={"format": "np"})

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
         helper.make_node("Softmax", ["h"], ["probs"], name="softmax", axis=-1)],
        "tiny_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="modelward-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, BENIGN / "tiny_classifier.onnx")

    import gguf

    writer = gguf.GGUFWriter(str(BENIGN / "tiny.gguf"), "llama")
    writer.add_chat_template(
        "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    writer.add_tensor("tok_embd.weight", rng.normal(size=(8, 4)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def malicious() -> None:
    import numpy as np
    import torch

    MALICIOUS.mkdir(parents=True, exist_ok=True)
    # A raw pickle that runs a shell command when loaded (the classic).
    (MALICIOUS / "os_system.pkl").write_bytes(pickle.dumps(Payload(), protocol=4))
    # torch.save of an object whose reduction is os.system: a "checkpoint" that runs code.
    torch.save({"state_dict": {}, "hook": Payload()}, MALICIOUS / "checkpoint_with_payload.pt")
    # The same pickle disguised under a safe format's extension.
    (MALICIOUS / "disguised.safetensors").write_bytes(pickle.dumps(Payload(), protocol=2))
    # An object array in .npy carries a pickle; np.load(allow_pickle=True) runs it.
    arr = np.empty(1, dtype=object)
    arr[0] = Payload()
    np.save(MALICIOUS / "object_array.npy", arr, allow_pickle=True)
    # A zip whose member escapes the extraction folder (zip-slip).
    with zipfile.ZipFile(MALICIOUS / "zip_slip.zip", "w") as zf:
        zf.writestr("../../../../tmp/modelward-demo-escape", b"escaped\n")
        zf.writestr("weights/readme.txt", b"innocent-looking member\n")
    # A payload hidden behind a reflection chain:
    # getattr(importlib.import_module('builtins'), 'exec')(source)
    def text(value: str) -> bytes:
        raw = value.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    body = io.BytesIO()
    body.write(b"\x80\x04cbuiltins\ngetattr\n(cimportlib\nimport_module\n(")
    body.write(text("builtins") + b"tR" + text("exec") + b"tR(")
    body.write(text(f"import os; os.system({PAYLOAD!r})") + b"tR.")
    (MALICIOUS / "getattr_exec.pkl").write_bytes(body.getvalue())

    backdoored_onnx(MALICIOUS / "backdoored_classifier.onnx")

    import gguf

    writer = gguf.GGUFWriter(str(MALICIOUS / "ssti_chat_template.gguf"), "llama")
    writer.add_chat_template(
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    )
    writer.add_tensor("tok_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def backdoored_onnx(path: Path) -> None:
    """A ShadowLogic-style graph backdoor: when the first input feature block averages above
    a threshold (the trigger), Where() swaps the classifier's output for constant logits."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 16)).astype(np.float32), "W1"),
        numpy_helper.from_array(rng.normal(size=(16, 3)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "starts"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "ends"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array(0.9, dtype=np.float32), "threshold"),
        numpy_helper.from_array(np.array([[-9.0, 9.0, -9.0]], dtype=np.float32), "forced"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("MatMul", ["a", "W2"], ["logits"], name="fc2"),
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["patch"], name="trigger_slice"),
        helper.make_node("ReduceMean", ["patch"], ["level"], name="trigger_mean", keepdims=0),
        helper.make_node("Greater", ["level", "threshold"], ["armed"], name="trigger_compare"),
        helper.make_node("Where", ["armed", "forced", "logits"], ["scores"], name="override"),
    ]
    graph = helper.make_graph(
        nodes, "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="modelward-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main() -> None:
    benign()
    malicious()
    (HERE / "README.md").write_text(__doc__ or "", encoding="utf-8")
    print(f"examples written under {HERE}")


if __name__ == "__main__":
    main()
