"""Hugging Face JSON files, and a whole Hugging Face model folder scanned file by file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from chat_template_corpus import BENIGN, PAYLOADS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_python import CONFIGURATION, MODELING

from modelward import Severity, scan_bytes, scan_path

LLAMA3 = BENIGN["meta-llama/Meta-Llama-3-8B-Instruct"]


def scan_json(doc: object, name: str = "config.json"):
    return scan_bytes(json.dumps(doc).encode(), name, raise_internal=True)


def by_rule(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.rule.id, []).append(f)
    return out


def test_plain_config_is_clean() -> None:
    result = scan_json({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                        "hidden_size": 64, "transformers_version": "4.46.0"})
    assert result.format == "hf-config"
    assert result.findings == []


def test_auto_map_requires_remote_code() -> None:
    result = scan_json({"model_type": "custom", "auto_map": {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModel": "modeling_custom.CustomModel"}})
    found = by_rule(result)["MW-HF-001"]
    assert {f.severity for f in found} == {Severity.MEDIUM}
    assert any("modeling_custom.py" in f.message for f in found)


def test_auto_map_from_other_repo_is_high() -> None:
    result = scan_json({"model_type": "x", "auto_map": {
        "AutoModelForCausalLM": "evil/repo--modeling_x.XForCausalLM"}})
    (finding,) = by_rule(result)["MW-HF-002"]
    assert finding.severity is Severity.HIGH
    assert finding.location.node == "auto_map.AutoModelForCausalLM"


def test_tokenizer_auto_map_list() -> None:
    result = scan_json({"tokenizer_class": "XTokenizer",
                        "auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}},
                       "tokenizer_config.json")
    assert "MW-HF-001" in by_rule(result)


def test_chat_template_audit_is_shared() -> None:
    good = scan_json({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": LLAMA3},
                     "tokenizer_config.json")
    assert good.findings == []
    bad = scan_json({"tokenizer_class": "PreTrainedTokenizerFast",
                     "chat_template": [{"name": "default", "template": LLAMA3},
                                       {"name": "rag", "template": PAYLOADS["cycler globals os"]}]},
                    "tokenizer_config.json")
    high = by_rule(bad)["MW-HF-003"]
    assert {f.location.node for f in high} == {"chat_template[rag]"}


def test_class_field_with_module_path() -> None:
    result = scan_json({"tokenizer_class": "../evil.Tokenizer"}, "tokenizer_config.json")
    assert "MW-HF-006" in by_rule(result)


def test_weight_map_escape_and_pickle_shard() -> None:
    result = scan_json({"metadata": {"total_size": 8}, "weight_map": {
        "a": "../../outside.safetensors", "b": "/etc/passwd", "c": "model-1.bin"}},
        "model.safetensors.index.json")
    found = by_rule(result)["MW-HF-007"]
    assert {f.location.node for f in found} == {"weight_map.a", "weight_map.b", "weight_map.c"}


def test_tokenizer_json_anomalies() -> None:
    doc = {"version": "1.0", "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a+)+$"},
                             "behavior": "Isolated"},
           "model": {"type": "Evil", "vocab": {}}}
    result = scan_json(doc, "tokenizer.json")
    assert result.format == "hf-tokenizer-json"
    severities = {f.severity for f in by_rule(result)["MW-HF-009"]}
    assert severities == {Severity.LOW, Severity.MEDIUM}


def test_real_pre_tokenizer_regexes_pass() -> None:
    # GPT-2 and Llama 3 split patterns (tokenizer.json of gpt2, meta-llama/Meta-Llama-3-8B).
    for regex in [
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
        r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ]:
        doc = {"added_tokens": [], "model": {"type": "BPE"},
               "pre_tokenizer": {"type": "Split", "pattern": {"Regex": regex}}}
        assert scan_json(doc, "tokenizer.json").findings == []


def test_duplicate_keys() -> None:
    raw = b'{"model_type": "a", "model_type": "b"}'
    assert "MW-HF-010" in by_rule(scan_bytes(raw, "config.json", raise_internal=True))


def test_risky_key_beyond_head_is_still_claimed() -> None:
    doc = {"padding": "x" * 100_000, "auto_map": {"AutoModel": "m.M"}}
    assert "MW-HF-001" in by_rule(scan_json(doc, "foo.json"))


def test_unrelated_json_is_not_claimed() -> None:
    assert scan_json({"hello": "world"}, "data.json").format is None


@pytest.fixture
def model_folder(tmp_path: Path, marker_command: str) -> Path:
    from safetensors.numpy import save_file

    root = tmp_path / "org--custom-model"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({
        "architectures": ["CustomModel"], "model_type": "custom", "hidden_size": 64,
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                     "AutoModel": "modeling_custom.CustomModel"}}))
    (root / "modeling_custom.py").write_text(MODELING)
    (root / "configuration_custom.py").write_text(CONFIGURATION)
    (root / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "chat_template": LLAMA3,
        "model_max_length": 2048}))
    (root / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>",
                                                             "eos_token": "</s>"}))
    (root / "tokenizer.json").write_text(json.dumps({
        "version": "1.0", "added_tokens": [{"id": 0, "content": "<s>", "special": True}],
        "normalizer": None, "pre_tokenizer": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1}, "merges": []}}))
    (root / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 0, "eos_token_id": 1, "transformers_version": "4.46.0"}))
    save_file({"a": np.zeros((4, 4), np.float32)}, str(root / "model-00001-of-00002.safetensors"))
    save_file({"b": np.ones(4, np.float16)}, str(root / "model-00002-of-00002.safetensors"))
    (root / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 72},
        "weight_map": {"a": "model-00001-of-00002.safetensors",
                       "b": "model-00002-of-00002.safetensors"}}))
    torch = pytest.importorskip("torch")
    # A PyTorch zip checkpoint next to the safetensors, as many repositories ship both.
    torch.save({"a": torch.zeros(4, 4)}, root / "pytorch_model.bin")
    (root / "README.md").write_text("# Custom model\n\nA tiny model for tests.\n")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return root


def test_benign_folder_file_by_file(model_folder: Path) -> None:
    report = scan_path(model_folder, jobs=1, raise_internal=True)
    files = {r.path: r for r in report.files}
    assert files["README.md"].format is None
    assert {f.rule.id for f in files["README.md"].findings} == {"MW-CORE-001"}
    assert files["config.json"].format == "hf-config"
    assert {f.rule.id for f in files["config.json"].findings} == {"MW-HF-001"}
    assert files["modeling_custom.py"].format == "python"
    assert files["tokenizer.json"].format == "hf-tokenizer-json"
    assert files["model.safetensors.index.json"].format == "hf-shard-index"
    assert files["model-00001-of-00002.safetensors"].format == "safetensors"
    assert files["pytorch_model.bin"].format is not None
    for path, result in files.items():
        worst = max((f.severity for f in result.findings), default=Severity.INFO)
        if path != "config.json":  # remote code is MEDIUM by design
            assert worst < Severity.MEDIUM, (path, result.findings)


def test_missing_shard_and_disguised_files(model_folder: Path) -> None:
    (model_folder / "model-00002-of-00002.safetensors").unlink()
    (model_folder / "modeling_extra.py").write_bytes(b"\x80\x04K\x01.")
    (model_folder / "weights.safetensors").write_text(MODELING)
    report = scan_path(model_folder, jobs=1, raise_internal=True)
    files = {r.path: {f.rule.id for f in r.findings} for r in report.files}
    assert "MW-HF-008" in files["model.safetensors.index.json"]
    assert "MW-CORE-004" in files["modeling_extra.py"]
    assert "MW-CORE-004" in files["weights.safetensors"]


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["auto_map", "chat_template", "weight_map", "model",
                                         "tokenizer_class", "AutoModel", "type", "Regex",
                                         "pre_tokenizer", "added_tokens", "custom_pipelines",
                                         "impl", "name", "template", "x"]), c, max_size=4),
                    max_leaves=16))
def test_arbitrary_hf_shaped_json_never_crashes(doc: object) -> None:
    body = json.dumps({"model_type": "x", "payload": doc, **(doc if isinstance(doc, dict) else {})})
    scan_bytes(body.encode(), "config.json", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_brace(tail: bytes) -> None:
    scan_bytes(b'{"model_type": ' + tail, "config.json", raise_internal=True)

