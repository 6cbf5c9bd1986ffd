"""TensorFlow SavedModels (``saved_model.pb``) and frozen GraphDefs (``.pb``).

A TensorFlow graph is a program: loading a SavedModel and calling a signature runs every
op it reaches, and core TensorFlow ships ops that read and write files (``ReadFile``,
``WriteFile``, ``MatchingFiles``, checkpoint ``Save``/``Restore`` with any path), call back
into Python (``PyFunc``), or talk to the network (``Rpc*``, GCS credential ops). Custom ops
need a native library loaded beside the model. This scanner walks the protobufs with the
bounded wire reader (never TensorFlow): SavedModel -> MetaGraphDef -> GraphDef -> NodeDef,
and every FunctionDef of the library, and judges each op against `_tf_ops`. Functions are
also named, not defined, in function-valued attributes (``f`` of PartitionedCall, ``body``
of While, nested NameAttrList attrs), ``FunctionDef.attr``/``arg_attr``, gradient
definitions and the SavedModel object graph's concrete functions: TensorFlow instantiates a
primitive op when such a name is not a library function, so every name that the library
does not define is judged as an op.

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
from collections.abc import Iterable, Iterator
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

__all__ = [
    "SCANNER", "TF_RULES", "NodeDef", "TensorFlowScanner", "func_refs", "judge_op",
    "node_verdicts", "parse_node_def", "path_verdicts",
]

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
_MAX_ATTR_DEPTH: Final = 8
_MAX_REFS: Final = 100_000
_CHECKPOINT_OPS: Final = frozenset({"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2",
                                    "RestoreSlice", "MergeV2Checkpoints"})


@dataclass(slots=True)
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, memoryview]
    offset: int


NodeDef = _Node
"""A parsed NodeDef (name, op, inputs, raw AttrValue bytes by key), as `parse_node_def`
returns it."""


@dataclass(slots=True)
class _Walk:
    """State of one file's walk: node budget and the functions the library defines."""

    artifact: Artifact
    nodes: int = 0
    functions: set[str] = field(default_factory=set)
    custom_seen: set[str] = field(default_factory=set)
    refs: dict[str, tuple[str, int]] = field(default_factory=dict)

    def refer(self, name: str, where: str, offset: int) -> None:
        """Remember a function name used by reference (first place it was seen)."""
        if name and name not in self.refs:
            if len(self.refs) >= _MAX_REFS:
                raise ResourceLimitError(f"graph refers to more than {_MAX_REFS} functions",
                                         offset=offset)
            self.refs[name] = (where, offset)


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


def func_refs(attrs: Iterable[memoryview], depth: int = 0) -> list[str]:
    """Function names that AttrValues refer to: ``func``, ``list.func``, and recursively the
    attributes of each named function (NameAttrList.attr).

    Raises:
        ResourceLimitError: NameAttrLists nest deeper than eight levels.
    """
    out: list[str] = []
    for attr in attrs:
        for f in _fields(attr, 0):
            if f.number == 10 and f.wire == LEN:
                out += _name_attr_list(_bytes_of(f.value), depth)
            elif f.number == 1 and f.wire == LEN:
                for g in _fields(_bytes_of(f.value), 0):
                    if g.number == 9 and g.wire == LEN:
                        out += _name_attr_list(_bytes_of(g.value), depth)
    return out


def _name_attr_list(buf: memoryview, depth: int) -> list[str]:
    if depth >= _MAX_ATTR_DEPTH:
        raise ResourceLimitError("function-valued attributes nest too deeply")
    name, nested = "", []
    for f in _fields(buf, 0):
        if f.number == 1 and f.wire == LEN:
            name = as_text(f.value, 1024)
        elif f.number == 2 and f.wire == LEN:
            nested += [_bytes_of(g.value) for g in _fields(_bytes_of(f.value), 0)
                       if g.number == 2 and g.wire == LEN]
    return [name, *func_refs(nested, depth + 1)]


def _map_values(buf: memoryview) -> list[memoryview]:
    """Values (field 2) of one protobuf map entry."""
    return [_bytes_of(f.value) for f in _fields(buf, 0) if f.number == 2 and f.wire == LEN]


def _fields(buf: memoryview, base: int) -> Iterator[Field]:
    return iter_fields(buf, base)


def _bytes_of(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise FormatError("expected a length-delimited field")
    return value


def parse_node_def(buf: memoryview, base: int = 0) -> _Node:
    """Parse one NodeDef (name, op, inputs, attrs); `base` is its offset in the file.

    Raises:
        FormatError: malformed protobuf.
    """
    return _parse_node(buf, base)


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


def path_verdicts(op: str, paths: Iterable[str]) -> Iterator[tuple[Rule, str, str]]:
    """(rule, message, evidence) for constant paths fed to a path-taking op."""
    for path in paths:
        if path.startswith(("variables/", "assets/")):
            continue
        yield (FILE_ACCESS, f"op {op} uses the constant path {path[:120]!r}",
               f"{op}({path[:200]})")


def _attr_path_verdicts(node: _Node) -> Iterator[tuple[Rule, str, str]]:
    if node.op in ATTR_PATH_OPS:
        attr, safe = ATTR_PATH_OPS[node.op]
        for value in _attr_strings(node.attrs.get(attr, memoryview(b""))):
            if value and not value.startswith(safe):
                yield (FILE_ACCESS, f"op {node.op} sends data to {value[:120]!r} ({attr})",
                       f"{attr}={value[:200]}")


def node_verdicts(node: _Node) -> Iterator[tuple[Rule, str, str]]:
    """(rule, message, evidence) for one NodeDef judged on its own, with no function library:
    its op, its file/URL attributes, and ops named by its function-valued attributes.

    TFLite's Flex ops carry such a lone NodeDef.
    """
    verdict = judge_op(node.op)
    if verdict is not None:
        yield verdict[0], f"op {node.op} {verdict[1]}", node.op[:200]
    yield from _attr_path_verdicts(node)
    for name in dict.fromkeys(func_refs(node.attrs.values())):
        verdict = judge_op(name)
        if name and verdict is not None:
            yield (verdict[0], f"a function-valued attribute of op {node.op} names "
                   f"{name[:120]!r}, which {verdict[1]}", name[:200])


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
        yield from self._unresolved(walk)

    def _unresolved(self, walk: _Walk) -> Iterator[Finding]:
        """Judge, as ops, the function names used by reference that no library defines."""
        for name, (where, offset) in walk.refs.items():
            verdict = None if name in walk.functions else judge_op(name)
            if verdict is None:
                continue
            rule, why = verdict
            if rule is CUSTOM_OP:
                message = (f"{where} names the function {name[:120]!r}, which the graph's "
                           "library does not define and is not a standard op")
            else:
                message = f"{where} names {name[:120]!r} as a function; that op {why}"
            yield walk.artifact.finding(rule, message, offset=offset, node=where[:300],
                                        evidence=name[:200])

    def _meta_graph(self, walk: _Walk, buf: memoryview, base: int) -> Iterator[Finding]:
        for f in iter_fields(buf, base):
            if f.number == 2 and f.wire == LEN:
                yield from self._graph(walk, _bytes_of(f.value), f.offset)
            elif f.number == 7 and f.wire == LEN:
                self._object_graph(walk, _bytes_of(f.value), f.offset)
            elif f.number == 6 and f.wire == LEN:
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number == 2 and g.wire == LEN:
                        path = as_text(g.value, 4096)
                        if _escapes(path):
                            yield walk.artifact.finding(
                                ASSET_PATH, f"asset file {path[:200]!r} lies outside assets/",
                                offset=g.offset, evidence=path[:200])

    def _object_graph(self, walk: _Walk, buf: memoryview, base: int) -> None:
        """Concrete functions the SavedObjectGraph names (SavedFunction, bare functions,
        the concrete_functions map)."""
        for f in iter_fields(buf, base):
            if f.wire != LEN:
                continue
            if f.number == 2:
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number == 1 and g.wire == LEN:
                        walk.refer(as_text(g.value, 1024), "object_graph_def", g.offset)
            elif f.number == 1:
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number in (6, 8) and g.wire == LEN:
                        for h in iter_fields(_bytes_of(g.value), g.offset):
                            if h.number == 1 and h.wire == LEN:
                                walk.refer(as_text(h.value, 1024), "object_graph_def",
                                           h.offset)

    def _function_attrs(self, walk: _Walk, fname: str, g: Field) -> None:
        """Function names in FunctionDef.attr (5) and arg_attr (7: ArgAttrs.attr = 1)."""
        entry = _bytes_of(g.value)
        values = _map_values(entry)
        if g.number == 7:
            values = [v for arg in values for f in _fields(arg, 0)
                      if f.number == 1 and f.wire == LEN for v in _map_values(_bytes_of(f.value))]
        for name in func_refs(values):
            walk.refer(name, f"function {fname} attributes", g.offset)

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
                if f.number in (2, 3) and f.wire == LEN:  # GradientDef, RegisteredGradient
                    for g in iter_fields(_bytes_of(f.value), f.offset):
                        if g.number in (1, 2) and g.wire == LEN:
                            walk.refer(as_text(g.value, 1024), "library gradients", g.offset)
                if f.number != 1 or f.wire != LEN:
                    continue
                fname, fnodes, fattrs = "", [], []
                for g in iter_fields(_bytes_of(f.value), f.offset):
                    if g.number == 1 and g.wire == LEN:  # signature: OpDef, name = 1
                        for h in iter_fields(_bytes_of(g.value), g.offset):
                            if h.number == 1 and h.wire == LEN:
                                fname = as_text(h.value, 1024)
                    elif g.number == 3 and g.wire == LEN:
                        fnodes.append(self._count(walk, _parse_node(_bytes_of(g.value),
                                                                    g.offset)))
                    elif g.number in (5, 7) and g.wire == LEN:
                        fattrs.append(g)
                for g in fattrs:
                    self._function_attrs(walk, fname, g)
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
            for name in func_refs(node.attrs.values()):
                walk.refer(name, f"node {where[:200]}", node.offset)
            verdict = judge_op(node.op)
            if node.op in walk.functions and (verdict is None or verdict[0] is CUSTOM_OP):
                continue  # a call of a library function (TF refuses functions named like ops)
            if verdict is not None and not (verdict[0] is CUSTOM_OP
                                            and node.op in walk.custom_seen):
                rule, why = verdict
                if rule is CUSTOM_OP:  # one finding per custom op type is enough
                    walk.custom_seen.add(node.op)
                yield art.finding(rule, f"op {node.op} {why}", offset=node.offset,
                                  node=where[:300], evidence=node.op[:200])
            if node.op in PATH_INPUT_OPS:
                yield from self._path_input(art, node, by_name, where)
            for rule, message, evidence in _attr_path_verdicts(node):
                yield art.finding(rule, message, offset=node.offset, node=where[:300],
                                  evidence=evidence)

    def _path_input(self, art: Artifact, node: _Node, by_name: dict[str, _Node],
                    where: str) -> Iterator[Finding]:
        index = PATH_INPUT_OPS[node.op]
        data_inputs = [i for i in node.inputs if not i.startswith("^")]
        if index >= len(data_inputs):
            return
        source = by_name.get(data_inputs[index].split(":", 1)[0].lstrip("^"))
        if source is None or source.op != "Const":
            if node.op not in _CHECKPOINT_OPS:
                yield art.finding(RUNTIME_PATH, f"op {node.op} takes its file path at run time",
                                  offset=node.offset, node=where[:300], evidence=node.op)
            return
        paths = _attr_strings(source.attrs.get("value", memoryview(b"")))
        for rule, message, evidence in path_verdicts(node.op, paths):
            yield art.finding(rule, message, offset=node.offset, node=where[:300],
                              evidence=evidence)


SCANNER: Final = TensorFlowScanner()
