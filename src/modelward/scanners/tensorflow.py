"""TensorFlow SavedModels (``saved_model.pb``) and frozen GraphDefs (``.pb``).

A TensorFlow graph is a program: loading a SavedModel and calling a signature runs every
op it reaches, and core TensorFlow ships ops that read and write files (``ReadFile``,
``WriteFile``, ``MatchingFiles``, checkpoint ``Save``/``Restore`` with any path), call back
into Python (``PyFunc``), or talk to the network (``Rpc*``, GCS credential ops). Custom ops
need a native library loaded beside the model. This scanner walks the protobufs with the
bounded wire reader (never TensorFlow): SavedModel -> MetaGraphDef -> GraphDef -> NodeDef,
and every FunctionDef of the library, and judges each op against `_tf_ops`.

Field numbers: tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
tensorflow/core/framework/graph.proto, node_def.proto, function.proto, attr_value.proto,
tensor.proto.

Rules:
    MW-TF-001 file-access (HIGH): an op reads, writes, lists or maps files.
    MW-TF-002 python-callback (HIGH): PyFunc/EagerPyFunc calls into the loading process.
    MW-TF-003 network-access (HIGH): an op talks to the network or sets cloud credentials.
    MW-TF-004 custom-op (MEDIUM): an op outside the known standard set.
    MW-TF-005 asset-path (HIGH): a SavedModel asset path is absolute or climbs out.
    MW-TF-006 runtime-file-path (LOW): a file op takes its path at run time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.protobuf import LEN, VARINT, Field, as_text, iter_fields
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.scanners._tf_ops import (
    ATTR_PATH_OPS,
    FILE_OPS,
    NETWORK_OPS,
    PATH_INPUT_OPS,
    PYTHON_OPS,
    STANDARD_OPS,
)
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "TF_RULES", "TensorFlowScanner", "judge_op"]

FILE_ACCESS: Final = Rule(
    RuleId("MW-TF-001"), "file-access", Severity.HIGH,
    "An op reads, writes, lists or memory-maps files when the graph runs; a model has no "
    "reason to touch paths of the machine serving it (data theft, planted files).",
    "Do not serve the model; find out which path it touches and why.",
    ("https://www.tensorflow.org/api_docs/python/tf/io/read_file",),
)
PYTHON_CALLBACK: Final = Rule(
    RuleId("MW-TF-002"), "python-callback", Severity.HIGH,
    "A PyFunc/EagerPyFunc op calls a Python function of the loading process; the graph "
    "then runs whatever code that process registers under the token.",
    "Do not serve the model; rebuild it without py_function.",
)
NETWORK_ACCESS: Final = Rule(
    RuleId("MW-TF-003"), "network-access", Severity.HIGH,
    "An op talks to other machines (RPC, data service, BigQuery) or configures cloud "
    "storage credentials when the graph runs.",
    "Do not serve the model; a model graph has no reason to reach the network.",
)
CUSTOM_OP: Final = Rule(
    RuleId("MW-TF-004"), "custom-op", Severity.MEDIUM,
    "An op is outside the standard TensorFlow ops modelward knows; it needs a native kernel "
    "library loaded beside the model, whose code cannot be verified here.",
    "Check which library provides the op and that you trust it.",
)
ASSET_PATH: Final = Rule(
    RuleId("MW-TF-005"), "asset-path", Severity.HIGH,
    "A SavedModel asset path is absolute or climbs out of assets/, so loading reads a file "
    "outside the model folder.",
    "Do not load the model; assets must live inside its assets/ folder.",
)
RUNTIME_PATH: Final = Rule(
    RuleId("MW-TF-006"), "runtime-file-path", Severity.LOW,
    "A file-reading op takes its path from the graph at run time; benign in input "
    "pipelines, worth knowing in a served model.",
    "Check where the path comes from when the model is served.",
)
TF_RULES: Final = (FILE_ACCESS, PYTHON_CALLBACK, NETWORK_ACCESS, CUSTOM_OP, ASSET_PATH,
                   RUNTIME_PATH)

_OP_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_>.\-]{0,200}$")
_CLAIM_FIELDS: Final = 64


@dataclass(slots=True)
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, memoryview]
    offset: int


@dataclass(slots=True)
class _Walk:
    """State of one file's walk: node budget and the functions the library defines."""

    artifact: Artifact
    nodes: int = 0
    functions: set[str] = field(default_factory=set)
    custom_seen: set[str] = field(default_factory=set)


def judge_op(op: str) -> tuple[Rule, str] | None:
    """Rule and reason for an op type by name alone (None: standard, nothing to say)."""
    if op in PYTHON_OPS:
        return PYTHON_CALLBACK, "calls a Python function of the loading process"
    if op in FILE_OPS:
        return FILE_ACCESS, "reads, writes, lists or maps files"
    if op in NETWORK_OPS:
        return NETWORK_ACCESS, "reaches the network or sets cloud credentials"
    if op in STANDARD_OPS:
        return None
    return CUSTOM_OP, "is not a standard TensorFlow op; it needs a custom kernel library"


def _fields(buf: memoryview, base: int) -> Iterator[Field]:
    return iter_fields(buf, base)


def _bytes_of(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise FormatError("expected a length-delimited field")
    return value


def _parse_node(buf: memoryview, base: int) -> _Node:
    node = _Node("", "", [], {}, base)
    for f in _fields(buf, base):
        if f.number == 1 and f.wire == LEN:
            node.name = as_text(f.value, 1024)
        elif f.number == 2 and f.wire == LEN:
            node.op = as_text(f.value, 1024)
        elif f.number == 3 and f.wire == LEN and len(node.inputs) < 4096:
            node.inputs.append(as_text(f.value, 1024))
        elif f.number == 5 and f.wire == LEN:
            key, value = "", memoryview(b"")
            for g in _fields(_bytes_of(f.value), 0):
                if g.number == 1 and g.wire == LEN:
                    key = as_text(g.value, 1024)
                elif g.number == 2 and g.wire == LEN:
                    value = _bytes_of(g.value)
            node.attrs[key] = value
    return node


def _attr_strings(attr: memoryview, limit: int = 64) -> list[str]:
    """String values of an AttrValue (``s`` or ``list.s``) or of its tensor's string_val."""
    out: list[str] = []
    for f in _fields(attr, 0):
        if f.number == 2 and f.wire == LEN:
            out.append(as_text(f.value, 4096))
        elif f.number == 1 and f.wire == LEN:
            out += [as_text(g.value, 4096) for g in _fields(_bytes_of(f.value), 0)
                    if g.number == 2 and g.wire == LEN][:limit]
        elif f.number == 8 and f.wire == LEN:
            out += [as_text(g.value, 4096) for g in _fields(_bytes_of(f.value), 0)
                    if g.number == 8 and g.wire == LEN][:limit]
    return out[:limit]


def _escapes(path: str) -> bool:
    return path.startswith(("/", "\\", "~")) or ".." in re.split(r"[/\\]", path) or bool(
        re.match(r"^[A-Za-z]:|^[a-z][a-z0-9+.-]*://", path))


class TensorFlowScanner(Scanner):
    """SavedModel and frozen GraphDef protobufs, walked op by op."""

    name: ClassVar[str] = "tensorflow"
    suffixes: ClassVar[frozenset[str]] = frozenset({".pb"})
    rules: ClassVar[tuple[Rule, ...]] = TF_RULES
    priority: ClassVar[int] = 5

    @override
    def claims(self, artifact: Artifact) -> bool:
        return self._kind(artifact.view()) is not None

    @staticmethod
    def _kind(buf: memoryview) -> str | None:
        """``saved_model`` or ``graph_def`` when the top-level fields fit, else None."""
        if len(buf) < 2:
            return None
        try:
            top = []
            for f in iter_fields(buf):
                top.append(f)
                if len(top) >= _CLAIM_FIELDS:
                    break
        except FormatError:
            return None
        if not top:
            return None
        first = top[0]
        if (first.number == 1 and first.wire == VARINT and isinstance(first.value, int)
                and first.value <= 16):
            if all(f.number == 2 and f.wire == LEN for f in top[1:]) and len(top) > 1:
                return "saved_model" if TensorFlowScanner._looks_meta(top[1].value) else None
            return None
        allowed = {1: LEN, 2: LEN, 3: VARINT, 4: LEN, 5: LEN}
        if any(allowed.get(f.number) != f.wire for f in top):
            return None
        nodes = [f for f in top if f.number == 1]
        if not nodes:
            return None
        try:
            node = _parse_node(_bytes_of(nodes[0].value), 0)
        except FormatError:
            return None
        return "graph_def" if _OP_NAME.match(node.op) and node.name else None

    @staticmethod
    def _looks_meta(value: int | memoryview) -> bool:
        if not isinstance(value, memoryview):
            return False
        try:
            seen = list(itertools.islice(iter_fields(value), 16))
        except FormatError:
            return False
        return bool(seen) and all(1 <= f.number <= 7 and f.wire == LEN for f in seen)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        buf = artifact.view()
        kind = self._kind(buf)
        walk = _Walk(artifact)
        if kind == "saved_model":
            artifact.format_detail = "tf-saved-model"
            for f in iter_fields(buf):
                if f.number == 2 and f.wire == LEN:
                    yield from self._meta_graph(walk, _bytes_of(f.value), f.offset)
        else:
            artifact.format_detail = "tf-graph-def"
            yield from self._graph(walk, buf, 0)

    def _meta_graph(self, walk: _Walk, buf: memoryview, base: int) -> Iterator[Finding]:
        for f in iter_fields(buf, base):
            if f.number == 2 and f.wire == LEN:
                yield from self._graph(walk, _bytes_of(f.value), f.offset)
            elif f.number == 6 and f.wire == LEN:
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number == 2 and g.wire == LEN:
                        path = as_text(g.value, 4096)
                        if _escapes(path):
                            yield walk.artifact.finding(
                                ASSET_PATH, f"asset file {path[:200]!r} lies outside assets/",
                                offset=g.offset, evidence=path[:200])

    def _graph(self, walk: _Walk, buf: memoryview, base: int) -> Iterator[Finding]:
        nodes: list[_Node] = []
        libraries: list[tuple[memoryview, int]] = []
        for f in iter_fields(buf, base):
            if f.number == 1 and f.wire == LEN:
                nodes.append(self._count(walk, _parse_node(_bytes_of(f.value), f.offset)))
            elif f.number == 2 and f.wire == LEN:
                libraries.append((_bytes_of(f.value), f.offset))
        functions: list[tuple[str, list[_Node]]] = []
        for lib, lib_base in libraries:
            for f in iter_fields(lib, lib_base):
                if f.number != 1 or f.wire != LEN:
                    continue
                fname, fnodes = "", []
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number == 1 and g.wire == LEN:  # signature: OpDef, name = 1
                        for h in iter_fields(_bytes_of(g.value), g.offset):
                            if h.number == 1 and h.wire == LEN:
                                fname = as_text(h.value, 1024)
                    elif g.number == 3 and g.wire == LEN:
                        fnodes.append(self._count(walk, _parse_node(_bytes_of(g.value),
                                                                    g.offset)))
                walk.functions.add(fname)
                functions.append((fname, fnodes))
        yield from self._judge(walk, "", nodes)
        for fname, fnodes in functions:
            yield from self._judge(walk, fname, fnodes)

    def _count(self, walk: _Walk, node: _Node) -> _Node:
        walk.nodes += 1
        limit = walk.artifact.limits.max_graph_nodes
        if walk.nodes > limit:
            raise ResourceLimitError(f"graph has more than {limit} nodes", offset=node.offset)
        if not walk.nodes & 0x3FF:
            walk.artifact.check_deadline()
        return node

    def _judge(self, walk: _Walk, function: str, nodes: list[_Node]) -> Iterator[Finding]:
        art = walk.artifact
        by_name = {n.name: n for n in nodes}
        for node in nodes:
            where = f"{function}/{node.name}" if function else node.name
            if node.op in walk.functions:
                continue
            verdict = judge_op(node.op)
            if verdict is not None and not (verdict[0] is CUSTOM_OP
                                            and node.op in walk.custom_seen):
                rule, why = verdict
                if rule is CUSTOM_OP:  # one finding per custom op type is enough
                    walk.custom_seen.add(node.op)
                yield art.finding(rule, f"op {node.op} {why}", offset=node.offset,
                                  node=where[:300], evidence=node.op[:200])
            if node.op in PATH_INPUT_OPS:
                yield from self._path_input(art, node, by_name, where)
            if node.op in ATTR_PATH_OPS:
                attr, safe = ATTR_PATH_OPS[node.op]
                for value in _attr_strings(node.attrs.get(attr, memoryview(b""))):
                    if value and not value.startswith(safe):
                        yield art.finding(FILE_ACCESS,
                                          f"op {node.op} sends data to {value[:120]!r} ({attr})",
                                          offset=node.offset, node=where[:300],
                                          evidence=f"{attr}={value[:200]}")

    def _path_input(self, art: Artifact, node: _Node, by_name: dict[str, _Node],
                    where: str) -> Iterator[Finding]:
        index = PATH_INPUT_OPS[node.op]
        data_inputs = [i for i in node.inputs if not i.startswith("^")]
        if index >= len(data_inputs):
            return
        source = by_name.get(data_inputs[index].split(":", 1)[0].lstrip("^"))
        if source is None or source.op != "Const":
            if node.op not in {"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2",
                               "RestoreSlice", "MergeV2Checkpoints"}:
                yield art.finding(RUNTIME_PATH, f"op {node.op} takes its file path at run time",
                                  offset=node.offset, node=where[:300], evidence=node.op)
            return
        paths = _attr_strings(source.attrs.get("value", memoryview(b"")))
        for path in paths:
            if path.startswith("variables/") or path.startswith("assets/"):
                continue
            yield art.finding(FILE_ACCESS,
                              f"op {node.op} uses the constant path {path[:120]!r}",
                              offset=node.offset, node=where[:300],
                              evidence=f"{node.op}({path[:200]})")


SCANNER: Final = TensorFlowScanner()
