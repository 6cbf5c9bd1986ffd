"""Model facts for a bill of materials, read from headers and config files only.

Architecture, family and dtype come from a Hugging Face style ``config.json``; parameter
counts and tensor dtypes from each weight file's header, through the one reader of
`modelward.bom.params` (safetensors, ONNX, GGUF, PyTorch zip). Nothing but headers is
read; a header that is too large or not well formed is skipped, never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from modelward.bom.params import TensorSummary as SafetensorsHeader
from modelward.bom.params import read_safetensors as read_safetensors_header
from modelward.bom.params import read_tensor_summary

__all__ = ["ModelFacts", "SafetensorsHeader", "gather_facts", "read_safetensors_header"]

MAX_CONFIG: Final = 4 << 20
CONFIG_NAMES: Final = ("config.json", "params.json")


@dataclass(slots=True)
class ModelFacts:
    """What could be learned about a model without loading it.

    Attributes:
        architecture: e.g. ``LlamaForCausalLM`` (config ``architectures[0]``).
        family: e.g. ``llama`` (config ``model_type``).
        config_dtype: the dtype the config declares (``torch_dtype``/``dtype``).
        parameters: total parameter count from tensor headers (``None``: unknown).
        tensors: total tensor count from tensor headers.
        dtypes: tensor dtypes seen in headers.
        formats: weight formats whose headers were counted (``safetensors``, ``onnx``,
            ``gguf``, ``pytorch``).
        config: selected scalar config fields, for properties.
    """

    architecture: str | None = None
    family: str | None = None
    config_dtype: str | None = None
    parameters: int | None = None
    tensors: int = 0
    dtypes: set[str] = field(default_factory=set)
    config: dict[str, str] = field(default_factory=dict)
    formats: set[str] = field(default_factory=set)


_CONFIG_FIELDS: Final = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                         "vocab_size", "max_position_embeddings", "intermediate_size",
                         "transformers_version")


def _read_config(path: Path, facts: ModelFacts) -> None:
    try:
        if path.stat().st_size > MAX_CONFIG:
            return
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return
    if not isinstance(data, dict):
        return
    archs = data.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        facts.architecture = archs[0]
    if isinstance(data.get("model_type"), str):
        facts.family = data["model_type"]
    dtype = data.get("torch_dtype", data.get("dtype"))
    if isinstance(dtype, str):
        facts.config_dtype = dtype
    for key in _CONFIG_FIELDS:
        value = data.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            facts.config[key] = str(value)


def gather_facts(model: Path, files: Iterable[str]) -> ModelFacts:
    """Read config files and tensor headers of `model` (its relative `files`)."""
    facts = ModelFacts()
    params = 0
    seen_headers = False
    for rel in files:
        path = model if rel == "." else model / rel
        if path.name in CONFIG_NAMES and facts.architecture is None:
            _read_config(path, facts)
            continue
        summary = read_tensor_summary(path)
        if summary is not None:
            seen_headers = True
            params += summary.parameters
            facts.tensors += summary.tensors
            facts.dtypes |= summary.dtypes
            facts.formats.add(summary.format)
    facts.parameters = params if seen_headers else None
    return facts
