"""Red-team regressions for Python code audit and Hugging Face config analysis.

Each test is named after the evasion; the docstring gives the idea and what was reported
before the fix. Sources are only parsed (never run); commands are the harmless marker.
"""

from __future__ import annotations

import json

import pytest

from modelward import Severity, scan_bytes


def _worst(source: str, name: str = "modeling_x.py") -> Severity | None:
    result = scan_bytes(source.encode(), name, raise_internal=True)
    return max((f.severity for f in result.findings), default=None)


@pytest.mark.parametrize(("technique", "source"), [
    # Before: INFO only (string concatenation hid the builtin's name).
    ("builtins_subscript_concatenated_name", "__builtins__['ex' + 'ec']('print(1)')\n"),
    ("builtins_subscript_join_name", "__builtins__[''.join(['ev', 'al'])]('1')\n"),
    ("builtins_subscript_computed_name", "n = input_name()\n__builtins__[n]('1')\n"),
    # Before: INFO only (namespace dicts reached through vars()/globals()).
    ("vars_of_builtins", "vars(__builtins__)['eval']('1')\n"),
    ("globals_builtins_dict", "globals()['__builtins__'].__dict__['exec']('1')\n"),
    ("getattr_concatenated_attribute",
     "import importlib\nm = getattr(importlib, 'import_' + 'module')('o' + 's')\n"),
    # Before: INFO only (the capability was re-bound by assignment).
    ("dunder_import_assigned_alias", "imp = __import__\nimp('os').system('touch x')\n"),
    ("getattr_result_assigned_alias",
     "import os\nrun = getattr(os, 'sys' + 'tem')\nrun('touch x')\n"),
    # Before: not even recognised as Python (no import/def/call statement at top level).
    ("lambda_default_argument",
     "g = (lambda x=__import__('subprocess').call(['touch', 'x']): x)\n"),
    ("annotation_evaluated_at_import", "x: __import__('os').system('touch x') = 1\n"),
    ("fstring_expression", "f\"{__import__('os').system('touch x')}\"\n"),
])
def test_python_code_evasions(technique: str, source: str) -> None:
    """Tricks from public sandbox-escape write-ups (PyJail style) used in remote code."""
    assert (_worst(source) or Severity.INFO) >= Severity.HIGH, technique


def test_python_plain_data_is_not_claimed_as_code() -> None:
    """Guard: JSON / requirement lists still parse as expressions but hold no calls."""
    for text in ('{"a": [1, 2, true]}\n', "torch>=2.0\nnumpy\n"):
        result = scan_bytes(text.encode(), "data.txt", raise_internal=True)
        assert result.format != "python"


def _hf(doc: object, name: str = "config.json") -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    result = scan_bytes(json.dumps(doc).encode(), name, raise_internal=True)
    for f in result.findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def test_hf_auto_map_in_nested_subconfig() -> None:
    """Composite configs: ``AutoModel.from_config(config.text_config)`` honours the
    sub-config's ``auto_map`` (transformers ``_BaseAutoModelClass.from_config``).

    Before: no finding at all.
    """
    doc = {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"],
           "text_config": {"model_type": "x", "auto_map": {"AutoModel": "evil.Model"}},
           "vision_config": {"auto_map": {"AutoModel": "other/repo--evil.Vision"}}}
    worst = _hf(doc)
    assert worst.get("MW-HF-001") == Severity.MEDIUM
    assert worst.get("MW-HF-002") == Severity.HIGH


def test_hf_tokenizer_auto_map_legacy_list() -> None:
    """Legacy tokenizer_config: ``auto_map`` as a list is AutoTokenizer's (slow, fast) pair
    (transformers ``AutoTokenizer.from_pretrained``). Before: one MEDIUM "not an object",
    the cross-repository reference inside was not judged (HIGH).
    """
    doc = {"tokenizer_class": "T", "auto_map": ["other/repo--tok.T", None]}
    assert _hf(doc, "tokenizer_config.json").get("MW-HF-002") == Severity.HIGH


def test_hf_deeply_nested_configs_are_bounded() -> None:
    """Hostile size: 10k nested sub-configs are walked within bounds, no recursion error."""
    doc: dict[str, object] = {"model_type": "x"}
    node = doc
    for i in range(500):
        child: dict[str, object] = {"i": i}
        node["sub"] = child
        node = child
    node["auto_map"] = {"AutoModel": "evil.M"}  # deeper than the walk: not reached, no crash
    _hf(doc)
