"""The committed operator table matches the installed onnx (regenerate it otherwise)."""

from __future__ import annotations

import pytest

from modelward.graph import _gen_onnx_ops, opsets

onnx = pytest.importorskip("onnx")


def test_table_is_current_for_installed_onnx() -> None:
    table = opsets.op_table()
    if table.onnx_version != onnx.__version__:
        pytest.skip(f"table built with onnx {table.onnx_version}; installed {onnx.__version__}")
    fresh = _gen_onnx_ops.build_table()
    assert fresh["domains"] == {d: {op: list(v) for op, v in ops.items()}
                                for d, ops in table.domains.items()}, (
        "run: python -m modelward.graph._gen_onnx_ops")


def test_table_contents() -> None:
    table = opsets.op_table()
    assert 1 in (table.since("", "Conv") or ())
    assert table.since("", "Gelu") is not None and min(table.since("", "Gelu") or (0,)) == 20
    assert table.since("", "NotAnOp") is None
    assert table.max_version("") >= 21
    assert "FastGelu" in table.contrib
