"""TensorFlow Lite models (FlatBuffers, file identifier ``TFL3``).

A TFLite interpreter runs builtin kernels, plus custom operators resolved by name from
whatever op resolver the application registers, plus "Flex" ops (``Flex<TFOp>``) that run
full TensorFlow kernels through the select-TF-ops delegate, file and Python ops included.
Buffers are inline vectors or, for large models, (offset, size) pairs into the file, which
loaders trust. The model is read with the bounded flatbuffer reader
(`modelward._internal.flatbuffers`), following tensorflow/lite/schema/schema.fbs: Model ->
operator_codes, subgraphs -> operators / tensors, buffers, metadata.

The Flex delegate runs the op of the TensorFlow ``NodeDef`` carried in each Flex operator's
``custom_options`` (a FlexBuffer vector ``[op name, NodeDef bytes]``), whatever the
operator code is called, so that NodeDef is decoded (`modelward._internal.flexbuffers`,
`modelward._internal.protobuf`) and judged with the TensorFlow scanner's op lists: its op,
its file/URL attributes, its function-valued attributes and constant paths fed to it from
the model's string buffers.

Rules:
    MW-TFLITE-001 custom-op (MEDIUM): a custom operator needs code outside TFLite.
    MW-TFLITE-002 flex-dangerous-op (HIGH): a Flex op runs a TensorFlow file/Python/network op.
    MW-TFLITE-003 buffer-out-of-range (MEDIUM): a buffer lies outside the file.
    MW-TFLITE-004 bad-reference (MEDIUM): an index points past its table.
    MW-TFLITE-005 buffer-overlap (LOW): two external buffers overlap.
    MW-TFLITE-006 unknown-builtin (LOW): a builtin operator code newer than modelward knows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.flatbuffers import Budget, Table, root_table
from modelward._internal.flexbuffers import string_vector
from modelward.errors import FormatError
from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.scanners import tensorflow as tf
from modelward.scanners._tf_ops import (
    FILE_OPS,
    NETWORK_OPS,
    PATH_INPUT_OPS,
    PYTHON_OPS,
    STANDARD_OPS,
)
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "TFLiteScanner"]

_SCHEMA: Final = ("https://github.com/tensorflow/tensorflow/blob/master/"
                   "tensorflow/compiler/mlir/lite/schema/schema.fbs")

CUSTOM_OP: Final = Rule(
    RuleId("MW-TFLITE-001"), "custom-op", Severity.MEDIUM,
    "A custom operator is resolved by name from the application's op resolver; its kernel "
    "is native code outside TFLite that cannot be verified here.",
    "Check which library provides the operator and that you trust it.",
    (_SCHEMA,),
)
FLEX_DANGEROUS: Final = Rule(
    RuleId("MW-TFLITE-002"), "flex-dangerous-op", Severity.HIGH,
    "A Flex (select TF ops) operator runs a TensorFlow op that reads or writes files, calls "
    "Python or reaches the network when the model runs.",
    "Do not run the model with the Flex delegate; find out why it needs that op.",
    ("https://www.tensorflow.org/lite/guide/ops_select",),
)
BUFFER_RANGE: Final = Rule(
    RuleId("MW-TFLITE-003"), "buffer-out-of-range", Severity.MEDIUM,
    "A buffer's offset and size point outside the file; loaders that trust them read "
    "out of bounds or fail in ways the scan cannot predict.",
    "Obtain the model again from a trusted source.",
)
BAD_REFERENCE: Final = Rule(
    RuleId("MW-TFLITE-004"), "bad-reference", Severity.MEDIUM,
    "An operator, tensor or metadata entry refers to an index past the end of its table.",
    "Obtain the model again from a trusted source.",
)
BUFFER_OVERLAP: Final = Rule(
    RuleId("MW-TFLITE-005"), "buffer-overlap", Severity.LOW,
    "Two external buffers share bytes; writers never produce that, and it can hide data.",
    "Obtain the model again from a trusted source.",
)
UNKNOWN_BUILTIN: Final = Rule(
    RuleId("MW-TFLITE-006"), "unknown-builtin", Severity.LOW,
    "A builtin operator code is newer than modelward's copy of the schema.",
    "Update modelward; if the code is not a real builtin, treat the model as unverified.",
)

_CUSTOM: Final = 32  # BuiltinOperator.CUSTOM
_PLACEHOLDER: Final = 127  # PLACEHOLDER_FOR_GREATER_OP_CODES
_MAX_BUILTIN: Final = 210  # highest BuiltinOperator code in schema.fbs as of TF 2.18 is ~206
_MAX_ITEMS: Final = 5_000_000
_MAX_OPTIONS: Final = 1 << 20  # bytes of one Flex op's custom options that are decoded


class TFLiteScanner(Scanner):
    """TFLite flatbuffers: operators and buffers."""

    name: ClassVar[str] = "tflite"
    suffixes: ClassVar[frozenset[str]] = frozenset({".tflite", ".lite"})
    rules: ClassVar[tuple[Rule, ...]] = (CUSTOM_OP, FLEX_DANGEROUS, BUFFER_RANGE, BAD_REFERENCE,
                                         BUFFER_OVERLAP, UNKNOWN_BUILTIN)

    @override
    def claims(self, artifact: Artifact) -> bool:
        return len(artifact.head) >= 8 and artifact.head[4:8] == b"TFL3"

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        buf = artifact.view()
        budget = Budget(min(_MAX_ITEMS, artifact.limits.max_graph_nodes * 4))
        model = root_table(buf, budget)
        artifact.format_detail = f"tflite-v{model.scalar(0, '<I')}"
        limit = artifact.limits.max_graph_nodes
        codes = model.tables(1, limit)
        buffers = model.tables(4, limit)
        yield from self._opcode_findings(artifact, codes)
        flex = {i: name for i, code in enumerate(codes)
                if max(code.scalar(0, "<b"), code.scalar(3, "<i")) == _CUSTOM
                and (name := code.string(1, 256) or "").startswith("Flex")}
        for s, subgraph in enumerate(model.tables(2, limit)):
            artifact.check_deadline()
            yield from self._subgraph(artifact, subgraph, s, len(codes), len(buffers), limit)
            yield from self._flex_ops(artifact, subgraph, s, flex, buffers, limit)
        for m, meta in enumerate(model.tables(6, limit)):
            index = meta.scalar(1, "<I")
            if index >= len(buffers):
                yield artifact.finding(BAD_REFERENCE,
                                       f"metadata {m} points at buffer {index} of {len(buffers)}",
                                       offset=meta.pos, node=meta.string(0, 200))
        for index in model.uints(5, limit):
            if index >= len(buffers):
                yield artifact.finding(BAD_REFERENCE,
                                       f"metadata_buffer points at buffer {index} of "
                                       f"{len(buffers)}", offset=model.pos)
        yield from self._buffers(artifact, buffers)

    def _opcode_findings(self, artifact: Artifact, codes: list[Table]) -> Iterator[Finding]:
        for i, code in enumerate(codes):
            builtin = max(code.scalar(0, "<b"), code.scalar(3, "<i"))
            where = f"operator_codes[{i}]"
            if builtin == _CUSTOM:
                name = code.string(1, 256) or ""
                yield from self._custom(artifact, name, where, code.pos)
            elif builtin < 0 or builtin > _MAX_BUILTIN or builtin == _PLACEHOLDER:
                yield artifact.finding(UNKNOWN_BUILTIN, f"unknown builtin operator code {builtin}",
                                       offset=code.pos, node=where, evidence=str(builtin))

    def _custom(self, artifact: Artifact, name: str, where: str,
                offset: int) -> Iterator[Finding]:
        if name.startswith("Flex"):
            tf_op = name[4:]
            if tf_op in PYTHON_OPS or tf_op in FILE_OPS or tf_op in NETWORK_OPS:
                yield artifact.finding(FLEX_DANGEROUS,
                                       f"Flex operator runs TensorFlow's {tf_op}, which touches "
                                       "files, Python or the network", offset=offset,
                                       node=where, evidence=name[:200])
                return
            if tf_op in STANDARD_OPS:
                return
        yield artifact.finding(CUSTOM_OP, f"custom operator {name[:120]!r}", offset=offset,
                               node=where, evidence=name[:200])

    def _subgraph(self, artifact: Artifact, subgraph: Table, s: int, n_codes: int,
                  n_buffers: int, limit: int) -> Iterator[Finding]:
        tensors = subgraph.tables(0, limit)
        for t, tensor in enumerate(tensors):
            index = tensor.scalar(2, "<I")
            if index >= max(n_buffers, 1) and index != 0:
                yield artifact.finding(BAD_REFERENCE,
                                       f"tensor points at buffer {index} of {n_buffers}",
                                       offset=tensor.pos, node=f"subgraphs[{s}].tensors[{t}]")
        for o, op in enumerate(subgraph.tables(3, limit)):
            where = f"subgraphs[{s}].operators[{o}]"
            index = op.scalar(0, "<I")
            if index >= n_codes:
                yield artifact.finding(BAD_REFERENCE,
                                       f"operator uses opcode {index} of {n_codes}",
                                       offset=op.pos, node=where)
            for tensor_index in op.uints(1, limit) + op.uints(2, limit):
                if tensor_index != 0xFFFFFFFF and tensor_index >= len(tensors):
                    yield artifact.finding(BAD_REFERENCE,
                                           f"operator uses tensor {tensor_index} of "
                                           f"{len(tensors)}", offset=op.pos, node=where)
                    break
            big_off, big_size = op.scalar(9, "<Q"), op.scalar(10, "<Q")
            if big_off or big_size:
                yield from self._range(artifact, big_off, big_size, where, op.pos)

    def _flex_ops(self, artifact: Artifact, subgraph: Table, s: int, flex: dict[int, str],
                  buffers: list[Table], limit: int) -> Iterator[Finding]:
        """Judge the NodeDef each Flex operator of the subgraph really runs."""
        if not flex:
            return
        tensors = subgraph.tables(0, limit)
        for o, op in enumerate(subgraph.tables(3, limit)):
            code = op.scalar(0, "<I")
            if code not in flex:
                continue
            where = f"subgraphs[{s}].operators[{o}]"
            try:
                node = self._node_def(artifact, op)
            except FormatError as exc:
                yield artifact.finding(CUSTOM_OP, f"Flex operator {flex[code][:120]!r} carries "
                                       f"a TensorFlow NodeDef that cannot be read ({exc})",
                                       offset=op.pos, node=where, evidence=flex[code][:200])
                continue
            if node is None:
                continue
            verdicts = list(tf.node_verdicts(node))
            if node.op in PATH_INPUT_OPS:
                paths = self._input_strings(op, PATH_INPUT_OPS[node.op], tensors, buffers,
                                            limit)
                verdicts += tf.path_verdicts(node.op, paths)
            for rule, message, evidence in verdicts:
                mapped = CUSTOM_OP if rule is tf.CUSTOM_OP else FLEX_DANGEROUS
                yield artifact.finding(mapped, f"Flex operator {flex[code][:80]!r} runs a "
                                       f"TensorFlow NodeDef: {message}", offset=op.pos,
                                       node=where, evidence=evidence)

    def _node_def(self, artifact: Artifact, op: Table) -> tf.NodeDef | None:
        """The NodeDef in a Flex operator's custom options (inline or large), or None."""
        vec = op.vector(5, 1)
        if vec is not None:
            start, size = vec
        else:
            start, size = op.scalar(9, "<Q"), op.scalar(10, "<Q")
            if not size or start + size > artifact.size:
                return None
        if size > _MAX_OPTIONS:
            raise FormatError(f"custom options of {size} bytes", offset=start)
        items = string_vector(op.buf[start : start + size], max_bytes=_MAX_OPTIONS)
        if len(items) < 2 or items[1] is None:
            raise FormatError("custom options are not [op name, NodeDef]", offset=start)
        return tf.parse_node_def(memoryview(items[1]), start)

    def _input_strings(self, op: Table, index: int, tensors: list[Table],
                       buffers: list[Table], limit: int) -> list[str]:
        """Strings of the constant string tensor feeding input `index` (TFLite string
        tensor layout: int32 count, count + 1 int32 offsets, bytes)."""
        inputs = op.uints(1, limit)
        if index >= len(inputs) or inputs[index] >= len(tensors):
            return []
        b = tensors[inputs[index]].scalar(2, "<I")
        vec = buffers[b].vector(0, 1) if 0 < b < len(buffers) else None
        if vec is None or vec[1] < 8:
            return []
        start, size = vec
        data = bytes(op.buf[start : start + min(size, _MAX_OPTIONS)])
        count = int.from_bytes(data[:4], "little")
        if count > 64 or 4 * (count + 2) > len(data):
            return []
        ends = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "little") for i in range(count + 1)]
        return [data[a:z].decode("utf-8", "replace")[:4096]
                for a, z in itertools.pairwise(ends) if 0 <= a <= z <= len(data)]

    def _range(self, artifact: Artifact, start: int, size: int, where: str,
               offset: int) -> Iterator[Finding]:
        if start + size > artifact.size or (size and start < 8):
            yield artifact.finding(BUFFER_RANGE,
                                   f"data at offset {start} with size {size} lies outside the "
                                   f"{artifact.size}-byte file", offset=offset, node=where,
                                   evidence=f"offset={start} size={size}")

    def _buffers(self, artifact: Artifact, buffers: list[Table]) -> Iterator[Finding]:
        spans: list[tuple[int, int, int]] = []
        for b, buffer in enumerate(buffers):
            start, size = buffer.scalar(1, "<Q"), buffer.scalar(2, "<Q")
            buffer.vector(0, 1)  # inline data: bounds-checked (FormatError when outside)
            if start <= 1 and size == 0:
                continue
            found = list(self._range(artifact, start, size, f"buffers[{b}]", buffer.pos))
            yield from found
            if not found and size:
                spans.append((start, start + size, b))
        spans.sort()
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
            if start_b < end_a:
                yield artifact.finding(BUFFER_OVERLAP, f"buffers {a} and {b} overlap",
                                       node=f"buffers[{b}]", offset=start_b)


SCANNER: Final = TFLiteScanner()
