"""The backend plug-in interface: load a model on a device, run it, say who ran what.

`modelward diff` compares models across frameworks (ONNX Runtime, PyTorch) and devices. A
backend knows one family of model files and one runtime; it loads a file *for execution*
(the user asked to run it: trusted input by contract, unlike ``modelward scan``), describes
the inputs it expects, runs feeds of NumPy arrays and reports, after a run, which execution
provider or device really executed each node (runtimes fall back to CPU silently).

Third-party backends register a `Backend` subclass instance under the ``modelward.backends``
entry-point group.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

__all__ = ["Backend", "LoadedModel", "TensorSpec"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One model input or output.

    Attributes:
        name: the tensor's name in the model.
        dtype: NumPy dtype name (``float32``, ``int64``, ``bool``...).
        shape: dimensions; ``None`` or a string for a symbolic dimension.
        high: exclusive upper bound of valid integer values (e.g. a vocabulary size), if known.
    """

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] | None
    high: int | None = None


@dataclass(slots=True)
class LoadedModel(abc.ABC):
    """A model ready to run on one device.

    Attributes:
        path: the file it came from.
        backend: backend name (``onnxruntime``, ``torch``).
        device: the device string asked for (``cpu``, ``cuda:0``...).
        run_seconds: wall-clock seconds spent in `run` so far.
        load_seconds: seconds spent loading.
        runs: number of `run` calls.
    """

    path: Path
    backend: str
    device: str
    run_seconds: float = 0.0
    load_seconds: float = 0.0
    runs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    @abc.abstractmethod
    def inputs(self) -> list[TensorSpec]:
        """Input specification; may be empty when the format does not record it."""

    @abc.abstractmethod
    def _run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run once; outputs in `output_names` order."""

    @property
    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """Names of the outputs `run` returns, in order."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model on `feeds` (input name -> array); returns the outputs as arrays."""
        start = time.perf_counter()
        try:
            return self._run(feeds)
        finally:
            self.run_seconds += time.perf_counter() - start
            self.runs += 1

    def placement(self, feeds: Mapping[str, np.ndarray]) -> dict[str, str]:
        """Which provider or device executed each node, for one run on `feeds`.

        The default says every node ran on `device`; backends that can observe a fallback
        override it.
        """
        del feeds
        return {"*": self.device}

    def weights(self) -> dict[str, np.ndarray]:
        """Named float weights (for the structural comparison); empty when unknown."""
        return {}


class Backend(abc.ABC):
    """A runtime able to load some model files on some devices."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def accepts(self, path: Path, head: bytes) -> bool:
        """Whether this backend can load `path` (whose first bytes are `head`)."""

    @abc.abstractmethod
    def devices(self) -> list[str]:
        """Device strings usable here now (``cpu`` always first when available)."""

    @abc.abstractmethod
    def load(self, path: Path, device: str = "cpu", *, allow_pickle: bool = False) -> LoadedModel:
        """Load `path` for execution on `device`.

        Raises:
            BackendUnavailableError: the runtime or the device is not installed.
            InputError: the file cannot be loaded by this backend.
        """
