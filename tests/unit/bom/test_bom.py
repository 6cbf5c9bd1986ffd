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
from modelward.bom.modelcard import read_safetensors_header
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
