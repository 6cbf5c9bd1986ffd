"""ONNX Runtime backend: every installed execution provider, with per-node placement.

Device strings name execution providers: ``cpu``, ``cuda`` / ``cuda:1``, ``tensorrt``,
``openvino``, ``rocm``, ``cann`` (Ascend), ``dml``, ``coreml``, ``migraphx``, ``qnn``, or a
full provider name. A provider that is not installed raises `BackendUnavailableError`.
A suffix picks ONNX Runtime's graph optimisation level: ``cpu+O0`` (none), ``+O1`` (basic),
``+O2`` (extended), ``+O3`` (all, the default), so ``--backends cpu+O0,cpu+O3`` checks
that the runtime's own graph rewrites keep the model's behaviour.

ONNX Runtime assigns each node to the first provider that supports it and silently runs the
rest on CPU. `OnnxModel.placement` runs once with profiling on and reads the provider of every
executed kernel from the profile, so the report shows what really ran where.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
from typing_extensions import override

from modelward.diff.backends.base import Backend, LoadedModel, TensorSpec
from modelward.errors import BackendUnavailableError, InputError

__all__ = ["PROVIDERS", "OnnxModel", "OnnxRuntimeBackend", "provider_for"]

PROVIDERS: Final[dict[str, str]] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "cann": "CANNExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
_DTYPES: Final[dict[str, str]] = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
    "tensor(bfloat16)": "float32",
}


def _ort() -> Any:
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as err:
        raise BackendUnavailableError(
            "onnxruntime is not installed", hint="pip install 'modelward[onnxruntime]'") from err
    return onnxruntime


_LEVELS: Final[dict[str, str]] = {
    "O0": "ORT_DISABLE_ALL", "O1": "ORT_ENABLE_BASIC", "O2": "ORT_ENABLE_EXTENDED",
    "O3": "ORT_ENABLE_ALL",
}


def _session_options(ort: Any, device: str) -> Any:
    """``SessionOptions`` with the optimisation level of `device`'s ``+O<n>`` suffix."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    _, _, level = device.partition("+")
    if level:
        if level not in _LEVELS:
            raise InputError(f"unknown optimisation level {level!r} in {device!r}",
                             hint="one of " + ", ".join(_LEVELS))
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
    return opts


def provider_for(device: str) -> tuple[str, dict[str, str]]:
    """Execution provider name and options for a device string (``cuda:1``...)."""
    kind, _, index = device.partition("+")[0].partition(":")
    name = PROVIDERS.get(kind.lower(), kind)
    options = {"device_id": index} if index and name != "CPUExecutionProvider" else {}
    return name, options


def _vocab_sizes(model: Any) -> dict[str, int]:
    """Graph inputs used as indices into an embedding initializer -> the table's row count."""
    tables = {t.name: t.dims[0] for t in model.graph.initializer if len(t.dims) == 2}
    sizes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[0] in tables:
            sizes[node.input[1]] = int(tables[node.input[0]])
    return sizes


@dataclass(slots=True)
class OnnxModel(LoadedModel):
    """An ONNX model in an ``InferenceSession``."""

    session: Any = None
    provider: str = "CPUExecutionProvider"
    options: dict[str, str] = field(default_factory=dict)
    _specs: list[TensorSpec] = field(default_factory=list)

    @property
    @override
    def inputs(self) -> list[TensorSpec]:
        return self._specs

    @property
    @override
    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    @override
    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(a) for a in self.session.run(None, dict(feeds))]

    @override
    def placement(self, feeds: Mapping[str, np.ndarray]) -> dict[str, str]:
        ort = _ort()
        opts = _session_options(ort, self.device)
        opts.enable_profiling = True
        with tempfile.TemporaryDirectory(prefix="mw-ort-prof-") as tmp:
            opts.profile_file_prefix = os.path.join(tmp, "profile")
            # Loading for execution is what the user asked diff to do (trusted input).
            session = ort.InferenceSession(str(self.path), opts, providers=self._providers())
            session.run(None, dict(feeds))
            profile = session.end_profiling()
            with open(profile, encoding="utf-8") as fh:
                events = json.load(fh)
        placed: dict[str, str] = {}
        for event in events:
            args = event.get("args") or {}
            if event.get("cat") == "Node" and "provider" in args:
                name = str(event.get("name", "")).removesuffix("_kernel_time")
                placed[f"{name} ({args.get('op_name', '?')})"] = str(args["provider"])
        return placed

    def _providers(self) -> list[Any]:
        chosen: list[Any] = [(self.provider, self.options)] if self.options else [self.provider]
        if self.provider != "CPUExecutionProvider":
            chosen.append("CPUExecutionProvider")
        return chosen

    @override
    def weights(self) -> dict[str, np.ndarray]:
        import onnx
        from onnx import numpy_helper

        # Trusted input by contract: diff reads the weights of models the user asked to run.
        model = onnx.load(str(self.path))
        return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


class OnnxRuntimeBackend(Backend):
    """ONNX files on ONNX Runtime."""

    name: ClassVar[str] = "onnxruntime"

    @override
    def accepts(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() == ".onnx":
            return True
        # ModelProto starts with ir_version (field 1, varint) in every exporter we know.
        return head[:1] == b"\x08" and b"\x12" in head[:16]

    @override
    def devices(self) -> list[str]:
        try:
            available = set(_ort().get_available_providers())
        except BackendUnavailableError:
            return []
        return [d for d, p in PROVIDERS.items() if p in available]

    @override
    def load(self, path: Path, device: str = "cpu", *, allow_pickle: bool = False) -> LoadedModel:
        del allow_pickle  # ONNX holds no pickles
        ort = _ort()
        provider, options = provider_for(device)
        if provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"ONNX Runtime execution provider {provider} (device {device!r}) is not "
                "installed here",
                hint="installed: " + ", ".join(ort.get_available_providers()))
        start = time.perf_counter()
        model = OnnxModel(path=path, backend=self.name, device=device, provider=provider,
                          options=options)
        opts = _session_options(ort, device)
        try:
            # Loading for execution is what the user asked diff to do (trusted input).
            model.session = ort.InferenceSession(str(path), opts, providers=model._providers())
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InputError(f"ONNX Runtime cannot load {path}: {err}") from err
        vocab: dict[str, int] = {}
        try:
            import onnx

            # Trusted input by contract (see above): only the graph structure is read here.
            vocab = _vocab_sizes(onnx.load(str(path), load_external_data=False))
        except Exception:
            vocab = {}
        model._specs = [
            TensorSpec(i.name, _DTYPES.get(i.type, "float32"),
                       tuple(i.shape) if i.shape is not None else None, vocab.get(i.name))
            for i in model.session.get_inputs()
        ]
        used = model.session.get_providers()
        if provider not in used:
            model.notes.append(f"{provider} was requested but the session uses {used}")
        model.load_seconds = time.perf_counter() - start
        return model


BACKEND: Final = OnnxRuntimeBackend()
