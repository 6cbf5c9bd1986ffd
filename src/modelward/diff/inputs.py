"""Inputs to run both models on: random from the input specification, or the user's samples.

Random inputs follow each input's dtype: floats standard normal (what normalised images
and embeddings look like), integers uniform below the known bound (an embedding table's row
count for token ids), booleans all false (padding and attention masks: nothing masked).
Symbolic dimensions take the first size the user gave for that name, else 1 for the
leading (batch) dimension and `DEFAULT_DIM` for the others.

User samples come from a folder of ``.npy`` (single-input models), ``.npz`` (arrays named
after the inputs, or in input order) or images (PNG/JPEG, when Pillow is installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np

from modelward.diff.backends.base import TensorSpec
from modelward.errors import InputError

__all__ = ["DEFAULT_DIM", "Feeds", "concrete_shape", "load_inputs", "random_inputs"]

Feeds = dict[str, np.ndarray]
DEFAULT_DIM: Final = 8
_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
MAX_SAMPLES: Final = 10_000


def concrete_shape(spec: TensorSpec, dims: Mapping[str, int] | None = None) -> tuple[int, ...]:
    """`spec`'s shape with symbolic dimensions resolved (see the module docstring)."""
    dims = dims or {}
    if spec.shape is None:
        return (1,)
    out = []
    for i, d in enumerate(spec.shape):
        if isinstance(d, int) and d >= 0:
            out.append(d)
        elif isinstance(d, str) and d in dims:
            out.append(int(dims[d]))
        else:
            out.append(1 if i == 0 else DEFAULT_DIM)
    return tuple(out)


def random_feeds(specs: list[TensorSpec], rng: np.random.Generator,
                 dims: Mapping[str, int] | None = None) -> Feeds:
    """One random input for every spec."""
    feeds: Feeds = {}
    for spec in specs:
        shape = concrete_shape(spec, dims)
        dtype = np.dtype(spec.dtype)
        if dtype == np.bool_:
            feeds[spec.name] = np.zeros(shape, dtype=bool)
        elif np.issubdtype(dtype, np.integer):
            high = spec.high if spec.high else 10
            feeds[spec.name] = rng.integers(1 if high > 2 else 0, high, shape).astype(dtype)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def random_inputs(specs: list[TensorSpec], count: int, seed: int = 0,
                  dims: Mapping[str, int] | None = None) -> list[Feeds]:
    """`count` random inputs (reproducible from `seed`)."""
    rng = np.random.default_rng(seed)
    return [random_feeds(specs, rng, dims) for _ in range(count)]


def _image(path: Path, spec: TensorSpec) -> np.ndarray:
    try:
        from PIL import Image  # type: ignore[import-not-found, unused-ignore]
    except ImportError as err:
        raise InputError(f"reading {path.name} needs Pillow", hint="pip install pillow") from err
    shape = concrete_shape(spec)
    if len(shape) != 4:
        raise InputError(f"input {spec.name} is not an image batch (shape {spec.shape})")
    channels_first = shape[1] in (1, 3)
    h, w = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    c = shape[1] if channels_first else shape[3]
    with Image.open(path) as img:
        img = img.convert("L" if c == 1 else "RGB").resize((w, h))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    arr = arr.transpose(2, 0, 1) if channels_first else arr
    return arr[None].astype(spec.dtype)


def load_inputs(folder: Path, specs: list[TensorSpec]) -> list[Feeds]:
    """Samples from `folder` (sorted by name), checked against `specs`.

    Raises:
        InputError: unreadable folder, unknown file kinds, or arrays that do not fit.
    """
    if not folder.is_dir():
        raise InputError(f"--inputs {folder} is not a folder")
    samples: list[Feeds] = []
    for path in sorted(folder.iterdir())[:MAX_SAMPLES]:
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                if len(specs) != 1:
                    raise InputError(f"{path.name}: .npy samples need a single-input model; "
                                     "use .npz with arrays named after the inputs")
                samples.append({specs[0].name: np.load(path, allow_pickle=False)})
            elif suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    keys = list(z.keys())
                    if all(s.name in keys for s in specs):
                        samples.append({s.name: z[s.name] for s in specs})
                    elif len(keys) == len(specs):
                        samples.append({s.name: z[k] for s, k in zip(specs, keys, strict=True)})
                    else:
                        raise InputError(f"{path.name}: arrays {keys} do not match inputs "
                                         f"{[s.name for s in specs]}")
            elif suffix in _IMAGE_SUFFIXES and len(specs) == 1:
                samples.append({specs[0].name: _image(path, specs[0])})
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read sample {path}: {err}") from err
    for feeds in samples:
        for spec in specs:
            feeds[spec.name] = np.asarray(feeds[spec.name]).astype(spec.dtype, copy=False)
    if not samples:
        raise InputError(f"no usable samples (.npy, .npz, images) in {folder}")
    return samples
