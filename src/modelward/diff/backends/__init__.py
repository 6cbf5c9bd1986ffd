"""Backends that run models for ``modelward diff``: built-ins plus ``modelward.backends``.

`discover` returns every backend by name: the built-in ONNX Runtime and PyTorch backends and
any third-party `Backend` registered under the ``modelward.backends`` entry-point group.
Importing a backend module never imports its runtime; that happens at `Backend.load`.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from modelward.diff.backends.base import Backend, LoadedModel, TensorSpec
from modelward.diff.backends.onnxruntime import BACKEND as ONNXRUNTIME
from modelward.diff.backends.torch import BACKEND as TORCH
from modelward.errors import BackendUnavailableError, InputError

__all__ = ["Backend", "LoadedModel", "TensorSpec", "backend_for", "discover"]

ENTRY_POINT_GROUP = "modelward.backends"


def discover() -> dict[str, Backend]:
    """Every backend by name: built-ins first, then entry points (which cannot replace them)."""
    found: dict[str, Backend] = {ONNXRUNTIME.name: ONNXRUNTIME, TORCH.name: TORCH}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            backend = entry.load()
        except Exception as err:
            raise BackendUnavailableError(f"backend plug-in {entry.name!r} failed to load: "
                                          f"{err}") from err
        if isinstance(backend, type):
            backend = backend()
        if isinstance(backend, Backend) and backend.name not in found:
            found[backend.name] = backend
    return found


def backend_for(path: Path, name: str | None = None) -> Backend:
    """The backend named `name`, or the first that accepts `path`'s content.

    Raises:
        InputError: unknown backend name, unreadable path, or no backend accepts it.
    """
    backends = discover()
    if name:
        if name not in backends:
            raise InputError(f"unknown backend {name!r}", hint="known: " + ", ".join(backends))
        return backends[name]
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    for backend in backends.values():
        if backend.accepts(path, head):
            return backend
    raise InputError(f"no backend can run {path}",
                     hint="diff runs ONNX models and TorchScript / torch.export archives")
