"""The standard ONNX operator table (`onnx_ops.json`), loaded lazily for the scanner.

Generated at development time by `modelward.graph._gen_onnx_ops` from the onnx package's
operator schemas (and onnxruntime's ``com.microsoft`` contrib operators), so scanning needs
neither package.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

__all__ = ["OpTable", "op_table"]


@dataclass(frozen=True, slots=True)
class OpTable:
    """Which operators exist in which standard domain, since which opset versions.

    Attributes:
        domains: ``{domain: {op_type: (since_version, ...)}}``; ``""`` is ``ai.onnx``.
        contrib: onnxruntime's ``com.microsoft`` operator names.
        onnx_version: the onnx release the table was generated from.
        ir_version: the newest IR version that release writes.
    """

    domains: dict[str, dict[str, tuple[int, ...]]]
    contrib: frozenset[str]
    onnx_version: str
    ir_version: int

    def max_version(self, domain: str) -> int:
        """Highest opset version the table knows for `domain` (0 when unknown)."""
        ops = self.domains.get(domain, {})
        return max((v for versions in ops.values() for v in versions), default=0)

    def since(self, domain: str, op_type: str) -> tuple[int, ...] | None:
        """Versions at which `op_type` was (re)defined, or None when the domain lacks it."""
        return self.domains.get(domain, {}).get(op_type)


@functools.cache
def op_table() -> OpTable:
    """Load the committed table (once)."""
    text = resources.files("modelward.graph").joinpath("onnx_ops.json").read_text("utf-8")
    data = json.loads(text)
    domains = {d: {op: tuple(v) for op, v in ops.items()} for d, ops in data["domains"].items()}
    return OpTable(domains, frozenset(data.get("com.microsoft", [])), data["onnx_version"],
                   int(data["ir_version"]))
