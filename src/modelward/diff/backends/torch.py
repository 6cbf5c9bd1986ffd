"""PyTorch backend: TorchScript archives and ``torch.export`` programs on any device string.

The format is told from the zip's member names: ``code/`` plus ``constants.pkl`` is
TorchScript (``torch.jit.load``), ``archive_format`` plus ``models/`` is a ``torch.export``
archive (``torch.export.load``). Anything else that torch can read is a pickle
(``torch.save`` of a whole module): unpickling runs arbitrary code, so it is refused unless
the caller passes ``allow_pickle`` (the CLI's ``--unsafe-allow-pickle``).
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
from typing_extensions import override

from modelward.diff.backends.base import Backend, LoadedModel, TensorSpec
from modelward.errors import BackendUnavailableError, InputError

__all__ = ["TorchBackend", "TorchModel", "torch_format"]


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise BackendUnavailableError(
            "PyTorch is not installed", hint="pip install 'modelward[torch]'") from err
    return torch


def torch_format(path: Path) -> str:
    """``torchscript``, ``export``, ``pickle`` or ``""`` (not a torch file), by content."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        try:
            with open(path, "rb") as fh:
                head = fh.read(2)
        except OSError:
            return ""
        return "pickle" if head[:1] == b"\x80" else ""
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return "torchscript"
    if "archive_format" in tails and any(t.startswith("models/") for t in tails):
        return "export"
    if "data.pkl" in tails:
        return "pickle"
    return ""


@dataclass(slots=True)
class TorchModel(LoadedModel):
    """A torch module (scripted, exported or unpickled) on one device."""

    module: Any = None
    fmt: str = ""
    _specs: list[TensorSpec] = field(default_factory=list)
    _outputs: list[str] = field(default_factory=list)

    @property
    @override
    def inputs(self) -> list[TensorSpec]:
        return self._specs

    @property
    @override
    def output_names(self) -> list[str]:
        return self._outputs or ["output"]

    def forward(self, tensors: list[Any]) -> list[Any]:
        """Run on torch tensors (already on the device), outputs flattened to a list."""
        torch = _torch()
        out = self.module(*tensors)
        if isinstance(out, torch.Tensor):
            return [out]
        if isinstance(out, dict):
            return list(out.values())
        return [t for t in out if isinstance(t, torch.Tensor)]

    @override
    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        torch = _torch()
        tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
                   for a in feeds.values()]
        with torch.no_grad():
            outs = self.forward(tensors)
        arrays = [o.detach().float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy()
                  for o in outs]
        if not self._outputs:
            self._outputs = [f"output_{i}" for i in range(len(arrays))]
        return arrays

    @override
    def placement(self, feeds: Mapping[str, np.ndarray]) -> dict[str, str]:
        del feeds
        devices = {str(p.device) for p in self.module.parameters()} if hasattr(
            self.module, "parameters") else set()
        return {"*": ", ".join(sorted(devices)) or self.device}

    @override
    def weights(self) -> dict[str, np.ndarray]:
        state = self.module.state_dict() if hasattr(self.module, "state_dict") else {}
        return {k: v.detach().float().cpu().numpy() for k, v in state.items()
                if hasattr(v, "is_floating_point") and v.is_floating_point()}


class TorchBackend(Backend):
    """TorchScript and ``torch.export`` archives on PyTorch."""

    name: ClassVar[str] = "torch"

    @override
    def accepts(self, path: Path, head: bytes) -> bool:
        return (head.startswith(b"PK\x03\x04") and torch_format(path) != "") or head[:1] == b"\x80"

    @override
    def devices(self) -> list[str]:
        try:
            torch = _torch()
        except BackendUnavailableError:
            return []
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            found.append("mps")
        return found

    @override
    def load(self, path: Path, device: str = "cpu", *, allow_pickle: bool = False) -> LoadedModel:
        torch = _torch()
        fmt = torch_format(path)
        start = time.perf_counter()
        try:
            torch.device(device)
        except RuntimeError as err:
            raise InputError(f"not a torch device string: {device!r}") from err
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"PyTorch has no CUDA device here ({device!r})")
        model = TorchModel(path=path, backend=self.name, device=device, fmt=fmt)
        try:
            if fmt == "torchscript":
                # Executing the model is what diff is for (trusted input by contract).
                model.module = torch.jit.load(str(path), map_location=device)
                model.module.eval()
            elif fmt == "export":
                # Executing the model is what diff is for (trusted input by contract).
                program = torch.export.load(str(path))
                model.module = program.module().to(device)
                model._specs = _export_specs(program)
                model._outputs = [str(s.arg.name) if hasattr(s.arg, "name") else f"output_{i}"
                                  for i, s in enumerate(program.graph_signature.output_specs)
                                  if str(s.kind).endswith("USER_OUTPUT")]
            elif fmt == "pickle":
                if not allow_pickle:
                    raise InputError(
                        f"{path} is a pickled torch checkpoint: loading it runs arbitrary code",
                        hint="export it with torch.jit.script/trace or torch.export, or pass "
                        "--unsafe-allow-pickle if you trust it (run 'modelward scan' first)")
                # Explicitly unsafe and opted into with --unsafe-allow-pickle.
                model.module = torch.load(str(path), map_location=device, weights_only=False)
                if not callable(model.module):
                    raise InputError(f"{path} does not hold a module (got "
                                     f"{type(model.module).__name__})")
                model.module.eval()
            else:
                raise InputError(f"{path} is not a TorchScript or torch.export archive")
        except (RuntimeError, ValueError, OSError) as err:
            raise InputError(f"PyTorch cannot load {path}: {err}") from err
        model.load_seconds = time.perf_counter() - start
        return model


def _export_specs(program: Any) -> list[TensorSpec]:
    names = list(getattr(program.graph_signature, "user_inputs", ()))
    examples = program.example_inputs[0] if program.example_inputs else ()
    specs = []
    for i, tensor in enumerate(examples):
        if not hasattr(tensor, "shape"):
            continue
        name = names[i] if i < len(names) else f"input_{i}"
        specs.append(TensorSpec(name, str(tensor.dtype).removeprefix("torch."),
                                tuple(int(d) for d in tensor.shape)))
    return specs


BACKEND: Final = TorchBackend()
