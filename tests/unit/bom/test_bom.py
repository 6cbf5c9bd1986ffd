"""ML-BOM: CycloneDX 1.6 output, schema-valid, with model card, hashes, verdict, lineage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from safetensors.numpy import save_file

from modelward.bom import build_bom
from modelward.bom.modelcard import gather_facts, read_safetensors_header
from modelward.cli import main
from modelward.scan import scan_path

pytest.importorskip("cyclonedx")


@pytest.fixture
def hf_model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float16",
        "hidden_size": 8, "num_hidden_layers": 2}))
    save_file({"embed": np.zeros((10, 8), dtype=np.float16),
               "lm_head": np.zeros((8, 10), dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


def _validate(text: str) -> dict:  # type: ignore[type-arg]
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return json.loads(text)


def test_safetensors_header_counts_parameters(hf_model: Path) -> None:
    header = read_safetensors_header(hf_model / "model.safetensors")
    assert header is not None
    assert header.parameters == 160 and header.tensors == 2
    assert header.dtypes == {"F16", "F32"}
    assert read_safetensors_header(hf_model / "config.json") is None


def test_safetensors_header_refuses_deeply_nested_json(tmp_path: Path) -> None:
    body = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "nested.safetensors"
    path.write_bytes(len(body).to_bytes(8, "little") + body)
    assert read_safetensors_header(path) is None
    config = tmp_path / "config.json"
    config.write_bytes(b'{"architectures":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert gather_facts(tmp_path, ["config.json"]).architecture is None


def test_bom_is_valid_cyclonedx_with_model_card(hf_model: Path) -> None:
    data = _validate(build_bom(hf_model, scan_path(hf_model)))
    assert data["specVersion"] == "1.6"
    (model,) = data["components"]
    assert model["type"] == "machine-learning-model"
    params = model["modelCard"]["modelParameters"]
    assert params["modelArchitecture"] == "LlamaForCausalLM"
    assert params["architectureFamily"] == "llama"
    card = {p["name"]: p["value"] for p in model["modelCard"]["properties"]}
    assert card["modelward:parameter-count"] == "160"
    assert card["modelward:tensor-dtypes"] == "F16,F32"
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["modelward:scan:verdict"] in ("clean", "not-clean")
    assert props["modelward:scan:policy-digest"].startswith("sha256:")
    files = {c["name"]: c for c in model["components"]}
    digest = hashlib.sha256((hf_model / "model.safetensors").read_bytes()).hexdigest()
    assert files["model.safetensors"]["hashes"] == [{"alg": "SHA-256", "content": digest}]


def test_bom_records_lineage_as_pedigree(hf_model: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    derived = tmp_path / "tiny-llama-onnx"
    derived.mkdir()
    (derived / "model.onnx").write_bytes(b"not really onnx")
    assert main(["sign", str(derived), "--key", str(pem), "--derived-from", str(hf_model),
                 "--converter", "optimum", "--converter-setting", "opset=17"]) == 0
    out = tmp_path / "bom.json"
    assert main(["bom", str(derived), "-o", str(out), "--no-scan"]) == 0
    data = _validate(out.read_text())
    (model,) = data["components"]
    (ancestor,) = model["pedigree"]["ancestors"]
    assert ancestor["name"] == "tiny-llama" and ancestor["type"] == "machine-learning-model"
    props = {p["name"]: p["value"] for p in ancestor["properties"]}
    assert props["modelward:converter"] == "optimum" and props["modelward:converter:opset"] == "17"
    assert {c["name"] for c in model["components"]} == {"model.onnx"}  # signatures left out


def _card(data: dict) -> dict[str, str]:  # type: ignore[type-arg]
    (model,) = data["components"]
    return {p["name"]: p["value"] for p in model["modelCard"]["properties"]}


def test_bom_counts_onnx_gguf_and_pytorch_parameters(tmp_path: Path) -> None:
    import gguf
    import torch

    from modelward.bom.params import read_tensor_summary

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))  # 23 parameters
    torch.save(net.state_dict(), tmp_path / "net.pt")
    torch.save({"h": torch.zeros(10, dtype=torch.float16),
                "b": torch.zeros(5, dtype=torch.bfloat16)}, tmp_path / "mixed.pt")
    torch.onnx.export(net, (torch.zeros(1, 4),), str(tmp_path / "net.onnx"), dynamo=False)
    writer = gguf.GGUFWriter(str(tmp_path / "net.gguf"), "llama")
    writer.add_tensor("t", np.zeros((3, 4), np.float32))
    writer.add_tensor("u", np.zeros(5, np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expected = {"net.pt": ("pytorch", 23, {"F32"}), "mixed.pt": ("pytorch", 15, {"F16", "BF16"}),
                "net.onnx": ("onnx", 23, {"F32"}), "net.gguf": ("gguf", 17, {"F32", "F16"})}
    for name, (fmt, params, dtypes) in expected.items():
        summary = read_tensor_summary(tmp_path / name)
        assert summary is not None, name
        assert (summary.format, summary.parameters, set(summary.dtypes)) == (fmt, params, dtypes)
        one = tmp_path / f"only-{name}"
        one.mkdir()
        (one / name).write_bytes((tmp_path / name).read_bytes())
        card = _card(_validate(build_bom(one, scan_path(one))))
        assert card["modelward:parameter-count"] == str(params), name
        assert card["modelward:tensor-formats"] == fmt
    both = tmp_path / "both"
    both.mkdir()
    for name in ("net.onnx", "net.gguf"):
        (both / name).write_bytes((tmp_path / name).read_bytes())
    card = _card(_validate(build_bom(both, scan_path(both))))
    assert card["modelward:parameter-count"] == "40"
    assert card["modelward:tensor-formats"] == "gguf,onnx"


def test_tensor_summary_refuses_garbage_and_cut_files(tmp_path: Path) -> None:
    from modelward.bom.params import read_tensor_summary

    cases = {"x.onnx": b"\x08\x07" + b"\xff" * 64, "x.gguf": b"GGUF\x03\x00\x00\x00" + b"\xff" * 40,
             "x.pt": b"PK\x03\x04 not a zip", "x.bin": b"\x00" * 100, "e.onnx": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert read_tensor_summary(tmp_path / name) is None, name
    import torch

    torch.save({"w": torch.zeros(4)}, tmp_path / "ok.pt")
    raw = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    assert read_tensor_summary(tmp_path / "cut.pt") is None


@pytest.mark.parametrize("name", ["f.onnx", "f.gguf", "f.pt"])
def test_tensor_summary_never_raises(tmp_path: Path, name: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from modelward.bom.params import read_tensor_summary

    prefix = {"f.onnx": b"", "f.gguf": b"GGUF\x03\x00\x00\x00", "f.pt": b"PK\x03\x04"}[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=400))
    def check(data: bytes) -> None:
        path = tmp_path / name
        path.write_bytes(prefix + data)
        summary = read_tensor_summary(path)
        assert summary is None or summary.parameters >= 0

    check()
