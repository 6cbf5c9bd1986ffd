"""Regenerate ``onnx_ops.json``: the standard ONNX operators and the versions they changed in.

The scanner checks each node's operator against the opset the model imports without
importing ``onnx`` at scan time, so the table is generated at development time from
``onnx.defs.get_all_schemas_with_history()`` (standard domains) and, when onnxruntime is
installed, its registered ``com.microsoft`` contrib operators. Regenerate after upgrading
onnx or onnxruntime::

    .venv/bin/python -m modelward.graph._gen_onnx_ops

``tests/unit/graph/test_opset_table.py`` fails when the committed table is stale for the
installed onnx. This module is a development tool; nothing in the scan path imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

TABLE = Path(__file__).with_name("onnx_ops.json")
STANDARD_DOMAINS = ("", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training")


def build_table() -> dict[str, object]:
    """The table as JSON data: versions and ``{domain: {op_type: [since_version, ...]}}``."""
    import onnx
    from onnx import defs

    domains: dict[str, dict[str, list[int]]] = {}
    deprecated: dict[str, dict[str, int]] = {}
    for schema in defs.get_all_schemas_with_history():
        if schema.domain not in STANDARD_DOMAINS:
            continue
        ops = domains.setdefault(schema.domain, {})
        ops.setdefault(schema.name, []).append(int(schema.since_version))
        if schema.deprecated:
            deprecated.setdefault(schema.domain, {})[schema.name] = int(schema.since_version)
    contrib: list[str] = []
    ort_version = None
    try:
        import onnxruntime  # type: ignore[import-untyped]
        from onnxruntime.capi import _pybind_state  # type: ignore[import-untyped]

        ort_version = onnxruntime.__version__
        contrib = sorted({s.name for s in _pybind_state.get_all_operator_schema()
                          if s.domain == "com.microsoft"})
    except (ImportError, AttributeError):  # pragma: no cover - depends on the dev environment
        pass
    return {
        "onnx_version": onnx.__version__,
        "ir_version": int(onnx.IR_VERSION),
        "onnxruntime_version": ort_version,
        "domains": {d: {op: sorted(set(v)) for op, v in sorted(ops.items())}
                    for d, ops in sorted(domains.items())},
        "deprecated": {d: dict(sorted(ops.items())) for d, ops in sorted(deprecated.items())},
        "com.microsoft": contrib,
    }


def main() -> None:
    """Write the table next to this module."""
    TABLE.write_text(json.dumps(build_table(), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
