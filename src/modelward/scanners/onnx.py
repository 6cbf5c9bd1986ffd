"""ONNX models (protobuf ``ModelProto``, with or without external data files).

Loading an ONNX model runs no Python, but it is not inert: custom operator domains need a
native library registered in the runtime (a code-loading vector, and Python operators run
arbitrary code), external data locations make the loader open files anywhere the process can
read (path traversal, CVE-2022-25882 / CVE-2024-27318), constant shapes can ask for terabytes,
and the graph itself can hide an input-triggered backdoor that replaces the model's answer
(HiddenLayer's ShadowLogic). The bytes are parsed by `modelward.graph.ir` (bounded, no
``onnx`` import); subgraphs and local functions are analysed recursively.

Rules:
    MW-ONNX-001 graph-backdoor (HIGH): an input-triggered switch replaces the computed output.
    MW-ONNX-002 code-operator (HIGH): an operator runs Python or embedded code at inference.
    MW-ONNX-003 custom-operator (MEDIUM): a non-standard domain needs a native custom-op library.
    MW-ONNX-004 unknown-operator (MEDIUM): an operator its standard domain does not define.
    MW-ONNX-005 external-data-escape (HIGH): an external data location escapes the model's folder.
    MW-ONNX-006 external-data-missing (MEDIUM): external data is missing or too short.
    MW-ONNX-007 resource-exhaustion (MEDIUM): constant shapes or tensor sizes that exhaust memory.
    MW-ONNX-008 tensor-inconsistent (LOW): a tensor's payload size disagrees with its type and dims.
    MW-ONNX-009 opset-anomaly (LOW): missing, duplicate or unknown opset/IR versions.
    MW-ONNX-010 suspicious-string (MEDIUM): strings carrying code, pickles or embedded files.
    MW-ONNX-011 compiled-payload (MEDIUM): an EP context node embeds an opaque compiled binary.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.protobuf import LEN, VARINT, iter_fields
from modelward.errors import FormatError
from modelward.findings import Rule, RuleId, Severity
from modelward.graph.backdoor import Backdoor, find_backdoors
from modelward.graph.dataflow import Flow, flatten
from modelward.graph.ir import DTYPE_SIZES, Model, Node, ParseLimits, Tensor, parse_model
from modelward.graph.opsets import op_table
from modelward.scanners.base import Artifact, Nested, Scanner, ScanOutput

__all__ = ["SCANNER", "OnnxScanner"]

_REFS = ("https://hiddenlayer.com/innovation-hub/shadowlogic/",
         "https://onnx.ai/onnx/repo-docs/ExternalData.html")

GRAPH_BACKDOOR: Final = Rule(
    RuleId("MW-ONNX-001"), "graph-backdoor", Severity.HIGH,
    "A condition computed directly from the model input (a region's mean, a token test, a "
    "checksum) selects between the model's computed result and a value that does not depend "
    "on it: on inputs carrying the trigger the model answers what the graph's author chose "
    "(an architectural backdoor such as ShadowLogic), with unchanged weights and accuracy.",
    "Do not deploy the model. Compare its graph with the original export (modelward diff) and "
    "obtain it again from a trusted source.",
    _REFS[:1],
)
CODE_OPERATOR: Final = Rule(
    RuleId("MW-ONNX-002"), "code-operator", Severity.HIGH,
    "The graph uses an operator that executes Python or embedded code at inference "
    "(onnxruntime PyOp, onnxruntime-extensions Python operators).",
    "Do not load the model with the custom-op library that provides this operator.",
)
CUSTOM_OPERATOR: Final = Rule(
    RuleId("MW-ONNX-003"), "custom-operator", Severity.MEDIUM,
    "The operator belongs to a non-standard domain: running the model needs a native "
    "custom-operator library loaded into the runtime, whose code is not verified here.",
    "Only load custom-op libraries you trust and built yourself; otherwise do not run it.",
)
UNKNOWN_OPERATOR: Final = Rule(
    RuleId("MW-ONNX-004"), "unknown-operator", Severity.MEDIUM,
    "The operator is not defined by its standard domain at the imported opset version; "
    "runtimes either reject the model or resolve the name through a registered custom kernel.",
    "Check where the model comes from and which runtime extension it expects.",
)
EXTERNAL_ESCAPE: Final = Rule(
    RuleId("MW-ONNX-005"), "external-data-escape", Severity.HIGH,
    "A tensor's external data location is absolute, climbs out with '..', or is a link "
    "leading outside the model's folder: loading the model reads that file (path traversal, "
    "CVE-2022-25882, CVE-2024-27318) and may leak it through the model's outputs.",
    "Do not load the model; external data must be relative files inside the model's folder.",
    _REFS[1:],
)
EXTERNAL_MISSING: Final = Rule(
    RuleId("MW-ONNX-006"), "external-data-missing", Severity.MEDIUM,
    "External data named by the model is missing or shorter than its offset and length, so "
    "the weights were not scanned and the model cannot load as shipped.",
    "Obtain the complete model folder and scan it again.",
    _REFS[1:],
)
RESOURCE_EXHAUSTION: Final = Rule(
    RuleId("MW-ONNX-007"), "resource-exhaustion", Severity.MEDIUM,
    "A constant shape, repeat count or tensor size asks for more memory than any machine "
    "has; loading or running the model exhausts memory (denial of service).",
    "Do not run the model on shared infrastructure; check the named node.",
)
TENSOR_INCONSISTENT: Final = Rule(
    RuleId("MW-ONNX-008"), "tensor-inconsistent", Severity.LOW,
    "A tensor's payload size disagrees with its data type and dimensions; runtimes and "
    "converters read such tensors differently.",
    "Re-export the model from its source.",
)
OPSET_ANOMALY: Final = Rule(
    RuleId("MW-ONNX-009"), "opset-anomaly", Severity.LOW,
    "The model's IR or opset declarations are missing, duplicated or newer than any known "
    "release, so its operators cannot be checked against their definitions.",
    "Re-export the model with a released ONNX version.",
)
SUSPICIOUS_STRING: Final = Rule(
    RuleId("MW-ONNX-010"), "suspicious-string", Severity.MEDIUM,
    "Metadata, a doc string or string data carries code, a pickle or an embedded file; tools "
    "that read model metadata may deserialize or execute it.",
    "Inspect the named string; remove it before distributing the model.",
)
COMPILED_PAYLOAD: Final = Rule(
    RuleId("MW-ONNX-011"), "compiled-payload", Severity.MEDIUM,
    "An execution-provider context node (EPContext, SNPE) carries a pre-compiled binary that "
    "the provider loads as is; its behaviour cannot be verified from the graph.",
    "Rebuild the context from the source model on your own machine.",
)

_RUNTIME_DOMAINS: Final = frozenset({"com.microsoft.nchwc", "com.ms.internal.nhwc"})
_CODE_OPS: Final = frozenset({"PyOp", "PyFunc", "PythonOp", "PyCustomOp"})
_CODE_ATTRS: Final = frozenset({"module", "class_name", "compute", "script", "source_code"})
_COMPILED_OPS: Final = frozenset({"EPContext", "Snpe"})
_MAX_ELEMENTS: Final = 1 << 33       # 8 G elements from one shape
_MAX_TENSOR_BYTES: Final = 1 << 40   # 1 TiB declared by one tensor
_MAX_REPEATS: Final = 1 << 24
_HUGE_STRING: Final = 1 << 20
_CODE_TEXT: Final = re.compile(
    r"(__import__|\bimport\s+(os|subprocess|sys|socket|pty)\b|\bsubprocess\.|os\.system|"
    r"\beval\s*\(|\bexec\s*\(|<script\b|^#!/|c__builtin__|cos\nsystem|cposix\nsystem)", re.M)
_B64_PICKLE: Final = re.compile(r"^\s*(gAS[VU]|gAN|gAJ)[A-Za-z0-9+/=\s]{8,}$")
_MAGICS: Final = ((b"\x80\x02", "pickle"), (b"\x80\x03", "pickle"), (b"\x80\x04", "pickle"),
                  (b"\x80\x05", "pickle"), (b"PK\x03\x04", "zip"), (b"MZ", "executable"),
                  (b"\x7fELF", "executable"), (b"#!", "script"))
_SHAPE_INPUTS: Final = {"ConstantOfShape": 0, "Expand": 1}


def _claim(view: memoryview) -> bool:
    """Whether the top-level fields look like a ModelProto with a graph."""
    wires = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN,
             20: LEN, 25: LEN, 26: LEN}
    has_ir = has_graph = False
    count = 0
    try:
        for f in iter_fields(view):
            count += 1
            if wires.get(f.number) != f.wire or count > 100_000:
                return False
            if f.number == 1:
                assert isinstance(f.value, int)
                if not 1 <= f.value < 1 << 31:
                    return False
                has_ir = True
            elif f.number == 7:
                has_graph = True
    except FormatError:
        return False
    return has_ir and has_graph


class OnnxScanner(Scanner):
    """ONNX ModelProto files."""

    name: ClassVar[str] = "onnx"
    suffixes: ClassVar[frozenset[str]] = frozenset({".onnx", ".ort"})
    rules: ClassVar[tuple[Rule, ...]] = (
        GRAPH_BACKDOOR, CODE_OPERATOR, CUSTOM_OPERATOR, UNKNOWN_OPERATOR, EXTERNAL_ESCAPE,
        EXTERNAL_MISSING, RESOURCE_EXHAUSTION, TENSOR_INCONSISTENT, OPSET_ANOMALY,
        SUSPICIOUS_STRING, COMPILED_PAYLOAD,
    )

    @override
    def claims(self, artifact: Artifact) -> bool:
        if artifact.size < 8:
            return False
        return _claim(artifact.data)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        limits = artifact.limits
        model = parse_model(artifact.data, ParseLimits(max_nodes=limits.max_graph_nodes))
        opset = model.opset_import.get("", model.opset_import.get("ai.onnx", 0))
        # An identifier, like every format name in reports (the producer string is
        # attacker-chosen text and stays out of it).
        artifact.format_detail = f"onnx-ir{model.ir_version}-opset{opset}"
        out: list[ScanOutput] = []
        out.extend(_check_versions(artifact, model))
        out.extend(_check_operators(artifact, model))
        out.extend(_check_tensors(artifact, model))
        out.extend(_check_strings(artifact, model))
        artifact.check_deadline()
        flow = flatten(model, max_nodes=limits.max_graph_nodes)
        out.extend(_check_shapes(artifact, flow))
        artifact.check_deadline()
        out.extend(_backdoor_finding(artifact, b) for b in find_backdoors(flow))
        findings = [o for o in out if not isinstance(o, Nested)]
        findings.sort(key=lambda f: f.location.sort_key())
        yield from findings
        yield from (o for o in out if isinstance(o, Nested))


def _backdoor_finding(artifact: Artifact, bd: Backdoor) -> ScanOutput:
    trigger = " -> ".join(bd.trigger_nodes) or "?"
    return artifact.finding(
        GRAPH_BACKDOOR,
        f"graph backdoor: {bd.kind} selector '{bd.selector}' replaces the computed "
        f"'{bd.main}' by {bd.substitute} when a condition on input "
        f"{', '.join(repr(i) for i in bd.trigger_inputs)} holds; reaches output(s) "
        f"{', '.join(bd.outputs)}",
        node=bd.selector,
        evidence=f"trigger: {trigger}; selector: {bd.selector}; substitute: {bd.substitute}",
        details={"kind": bd.kind, "trigger_nodes": "; ".join(bd.trigger_nodes),
                 "trigger_inputs": ", ".join(bd.trigger_inputs), "outputs": ", ".join(bd.outputs),
                 "replaced": bd.main},
    )


def _check_versions(artifact: Artifact, model: Model) -> Iterator[ScanOutput]:
    table = op_table()
    if model.ir_version is None or not 1 <= model.ir_version <= table.ir_version:
        yield artifact.finding(OPSET_ANOMALY, f"IR version {model.ir_version} is not a known "
                               f"ONNX IR version (1..{table.ir_version})",
                               evidence=str(model.ir_version))
    if "" not in model.opset_import and "ai.onnx" not in model.opset_import:
        uses_default = any(n.domain in ("", "ai.onnx") for _, n in model.all_nodes())
        if uses_default:
            yield artifact.finding(OPSET_ANOMALY, "the model uses standard operators but "
                                   "imports no ai.onnx opset")
    for domain in model.duplicate_opsets:
        yield artifact.finding(OPSET_ANOMALY, f"opset of domain '{domain or 'ai.onnx'}' "
                               "imported more than once", evidence=domain or "ai.onnx")
    for domain, version in sorted(model.opset_import.items()):
        key = "" if domain == "ai.onnx" else domain
        known = table.max_version(key)
        if key in table.domains and not 1 <= version <= known:
            yield artifact.finding(OPSET_ANOMALY, f"opset {domain or 'ai.onnx'} version "
                                   f"{version} is outside the known range 1..{known}",
                                   evidence=f"{domain or 'ai.onnx'}={version}")


def _check_operators(artifact: Artifact, model: Model) -> Iterator[ScanOutput]:
    table = op_table()
    known_domains = {*table.domains, "ai.onnx"}
    functions = {(f.domain, f.name) for f in model.functions}
    reported: set[tuple[str, str, str]] = set()
    for scope, node in model.all_nodes():
        domain = "" if node.domain == "ai.onnx" else node.domain
        where = node.label if scope in ("", "main") or not scope else f"{scope}/{node.label}"
        key_attrs = _CODE_ATTRS & set(node.attributes)
        if node.op_type in _CODE_OPS or (domain not in known_domains and len(key_attrs) >= 2):
            yield artifact.finding(CODE_OPERATOR, f"operator {node.qualified_op} runs Python or "
                                   "embedded code when the model is executed", node=where,
                                   offset=node.offset, evidence=_attr_evidence(node))
            continue
        if domain == "com.microsoft" and node.op_type in _COMPILED_OPS:
            yield from _compiled(artifact, node, where)
            continue
        if (domain, node.op_type) in functions:
            continue  # a model-local function: its body is analysed instead
        if domain in known_domains:
            yield from _standard_op(artifact, model, node, domain, where, reported)
        elif domain == "com.microsoft":
            if node.op_type not in table.contrib and ("contrib", node.op_type, "") not in reported:
                reported.add(("contrib", node.op_type, ""))
                yield artifact.finding(CUSTOM_OPERATOR, f"operator {node.qualified_op} is not "
                                       "an onnxruntime contrib operator; a custom library must "
                                       "provide it", node=where, offset=node.offset,
                                       evidence=node.qualified_op)
        elif domain not in _RUNTIME_DOMAINS and (domain, node.op_type, "") not in reported:
            reported.add((domain, node.op_type, ""))
            yield artifact.finding(CUSTOM_OPERATOR, f"custom operator {node.qualified_op} needs "
                                   "a native custom-op library at load time", node=where,
                                   offset=node.offset, evidence=node.qualified_op)


def _standard_op(artifact: Artifact, model: Model, node: Node, domain: str, where: str,
                 reported: set[tuple[str, str, str]]) -> Iterator[ScanOutput]:
    table = op_table()
    since = table.since(domain, node.op_type)
    version = model.opset_import.get(domain, model.opset_import.get("ai.onnx" if not domain
                                                                    else domain, 0))
    key = (domain, node.op_type, "v")
    if key in reported:
        return
    if since is None:
        reported.add(key)
        yield artifact.finding(UNKNOWN_OPERATOR, f"{node.qualified_op} is not a standard "
                               "operator", node=where, offset=node.offset,
                               evidence=node.qualified_op)
    elif version and version <= table.max_version(domain) and min(since) > version:
        reported.add(key)
        yield artifact.finding(UNKNOWN_OPERATOR, f"{node.qualified_op} does not exist at the "
                               f"imported opset {version} (introduced in {min(since)})",
                               node=where, offset=node.offset, severity=Severity.LOW,
                               evidence=f"{node.qualified_op}@{version}")


def _attr_evidence(node: Node) -> str:
    parts = []
    for name, attr in sorted(node.attributes.items()):
        if attr.s is not None:
            parts.append(f"{name}={attr.s[:80]!r}")
    return f"{node.qualified_op}(" + ", ".join(parts) + ")"


def _compiled(artifact: Artifact, node: Node, where: str) -> Iterator[ScanOutput]:
    embed = node.attributes.get("embed_mode")
    context = node.attributes.get("ep_cache_context")
    if embed is not None and embed.i == 0 and context is not None and context.s is not None:
        location = context.s.decode("utf-8", "replace")
        yield from _check_location(artifact, location, None, None, where, node.offset)
    yield artifact.finding(COMPILED_PAYLOAD, f"{node.qualified_op} node embeds a compiled "
                           "execution-provider binary that is loaded as is", node=where,
                           offset=node.offset, evidence=_attr_evidence(node))


def _all_tensors(model: Model) -> Iterator[tuple[str, Tensor]]:
    for g in model.all_graphs():
        for t in g.initializers + g.sparse_initializers:
            yield t.name, t
        for node in g.nodes:
            for attr in node.attributes.values():
                for t in ((attr.t,) if attr.t is not None else ()) + attr.tensors:
                    yield f"{node.label}.{attr.name}", t
    for fn in model.functions:
        for node in fn.nodes:
            for attr in node.attributes.values():
                if attr.t is not None:
                    yield f"{fn.name}/{node.label}.{attr.name}", attr.t


def _check_tensors(artifact: Artifact, model: Model) -> Iterator[ScanOutput]:
    for name, t in _all_tensors(model):
        if any(d < 0 for d in t.dims):
            yield artifact.finding(TENSOR_INCONSISTENT, f"tensor '{name}' has negative dims",
                                   offset=t.offset, node=name, evidence=str(t.dims))
            continue
        declared = t.declared_bytes
        if declared > _MAX_TENSOR_BYTES:
            yield artifact.finding(RESOURCE_EXHAUSTION, f"tensor '{name}' declares "
                                   f"{declared} bytes", offset=t.offset, node=name,
                                   evidence=f"dims={t.dims}")
            continue
        if t.is_external or t.external:
            yield from _check_external(artifact, name, t)
            continue
        size = DTYPE_SIZES.get(t.data_type, 0)
        if t.data_type == 8:
            if len(t.string_lengths) not in (0, t.numel):
                yield artifact.finding(TENSOR_INCONSISTENT, f"string tensor '{name}' has "
                                       f"{len(t.string_lengths)} strings for {t.numel} elements",
                                       offset=t.offset, node=name)
            yield from _string_data(artifact, name, t)
        elif t.raw_offset is not None and size and t.data_type not in (21, 22, 23, 25, 26):
            if t.payload_bytes != declared:
                yield artifact.finding(TENSOR_INCONSISTENT, f"tensor '{name}' holds "
                                       f"{t.payload_bytes} bytes of raw data, its dims and type "
                                       f"need {declared}", offset=t.offset, node=name,
                                       evidence=f"dims={t.dims} type={t.data_type}")


def _string_data(artifact: Artifact, name: str, t: Tensor) -> Iterator[ScanOutput]:
    for length in t.string_lengths:
        if length > _HUGE_STRING:
            yield artifact.finding(SUSPICIOUS_STRING, f"string tensor '{name}' holds a "
                                   f"{length}-byte string", severity=Severity.LOW,
                                   offset=t.offset, node=name)
            break
    for head in t.string_heads:
        kind = _magic(head)
        if kind:
            yield artifact.finding(SUSPICIOUS_STRING, f"string tensor '{name}' holds an "
                                   f"embedded {kind}", offset=t.offset, node=name,
                                   evidence=repr(head))
            break


def _check_external(artifact: Artifact, name: str, t: Tensor) -> Iterator[ScanOutput]:
    info = dict(t.external)
    location = info.get("location")
    if not location:
        yield artifact.finding(EXTERNAL_MISSING, f"tensor '{name}' is stored externally but "
                               "names no location", offset=t.offset, node=name)
        return
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        yield artifact.finding(EXTERNAL_MISSING, f"tensor '{name}' has a malformed external "
                               "offset or length", offset=t.offset, node=name,
                               evidence=repr(info)[:200])
        return
    yield from _check_location(artifact, location, offset,
                               length if length is not None else t.declared_bytes, name, t.offset)


def _check_location(artifact: Artifact, location: str, offset: int | None, length: int | None,
                    name: str, at: int) -> Iterator[ScanOutput]:
    """Path checks of a file the model makes the runtime open (external data, EP context)."""
    parts = re.split(r"[\\/]+", location)
    absolute = location.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", location))
    if absolute or ".." in parts or "\x00" in location:
        why = "is an absolute path" if absolute else "climbs out of the model folder with '..'"
        yield artifact.finding(EXTERNAL_ESCAPE, f"external file of '{name}' {why}", node=name,
                               offset=at, evidence=location[:300])
        return
    fs_path = artifact.context.fs_path
    if fs_path is None or artifact.depth > 0:
        return  # in memory or inside an archive: no folder to check against
    folder = os.path.realpath(os.path.dirname(fs_path))
    target = os.path.join(folder, *[p for p in parts if p not in ("", ".")])
    real = os.path.realpath(target)
    if real != folder and not real.startswith(folder.rstrip(os.sep) + os.sep):
        yield artifact.finding(EXTERNAL_ESCAPE, f"external file of '{name}' is a link leading "
                               "outside the model folder", node=name, offset=at,
                               evidence=f"{location} -> {real}")
        return
    try:
        size = os.stat(real).st_size
    except OSError:
        yield artifact.finding(EXTERNAL_MISSING, f"external file of '{name}' does not exist",
                               node=name, offset=at, evidence=location[:300])
        return
    if offset is not None and length is not None and offset + length > size:
        yield artifact.finding(EXTERNAL_MISSING, f"external file of '{name}' has {size} bytes, "
                               f"the tensor needs {offset + length}", node=name, offset=at,
                               evidence=f"{location} offset={offset} length={length}")


def _check_shapes(artifact: Artifact, flow: Flow) -> Iterator[ScanOutput]:
    """Constant shapes that make a node allocate absurd amounts of memory."""
    for node in flow.nodes:
        if node.node is None:
            continue
        op = node.op
        count: int | None = None
        if op in _SHAPE_INPUTS and len(node.inputs) > _SHAPE_INPUTS[op]:
            vals = flow.constant_values(node.inputs[_SHAPE_INPUTS[op]])
            if vals:
                count = _product(vals)
        elif op == "Tile" and len(node.inputs) > 1:
            vals = flow.constant_values(node.inputs[1])
            if vals and _product(vals) > _MAX_REPEATS:  # multiplies the input's size
                count = _product(vals) * _MAX_ELEMENTS // _MAX_REPEATS
        elif op == "Range" and len(node.inputs) == 3:
            a, b, c = (flow.constant_values(v) for v in node.inputs)
            if a and b and c and c[0]:
                count = int(abs((b[0] - a[0]) / c[0]))
        elif op in ("RandomNormal", "RandomUniform"):
            attr = node.node.attributes.get("shape")
            if attr is not None and attr.ints:
                count = _product(attr.ints)
        if count is not None and count > _MAX_ELEMENTS:
            yield artifact.finding(RESOURCE_EXHAUSTION, f"{op} node '{node.label}' produces "
                                   f"{count} elements", node=node.label,
                                   offset=node.node.offset, evidence=f"{op} -> {count} elements")


def _product(vals: tuple[int | float, ...] | tuple[int, ...]) -> int:
    n = 1
    for v in vals:
        n *= max(int(v), 1)
        if n > 1 << 62:
            break
    return n


def _magic(data: bytes) -> str | None:
    for magic, kind in _MAGICS:
        if data.startswith(magic):
            return kind
    return None


def _check_text(artifact: Artifact, text: str, where: str) -> Iterator[ScanOutput]:
    if len(text) > _HUGE_STRING:
        yield artifact.finding(SUSPICIOUS_STRING, f"{where} is {len(text)} characters long",
                               severity=Severity.LOW, node=where)
    match = _CODE_TEXT.search(text[:_HUGE_STRING])
    if match:
        yield artifact.finding(SUSPICIOUS_STRING, f"{where} contains code", node=where,
                               evidence=text[max(0, match.start() - 40): match.end() + 40])
    if _B64_PICKLE.match(text[:_HUGE_STRING]):
        yield artifact.finding(SUSPICIOUS_STRING, f"{where} holds a base64-encoded pickle",
                               node=where, evidence=text[:80])
        try:
            raw = base64.b64decode("".join(text.split())[: 4 * _HUGE_STRING], validate=True)
        except (binascii.Error, ValueError):
            return
        yield Nested(f"{where}<base64>", raw)


def _check_strings(artifact: Artifact, model: Model) -> Iterator[ScanOutput]:
    yield from _check_text(artifact, model.doc_string, "model doc_string")
    for key, value in model.metadata_props:
        yield from _check_text(artifact, value, f"metadata '{key[:80]}'")
    for g in model.all_graphs():
        if g.doc_string:
            yield from _check_text(artifact, g.doc_string, f"graph '{g.name}' doc_string")
    for scope, node in model.all_nodes():
        if node.doc_string:
            yield from _check_text(artifact, node.doc_string, f"{node.label} doc_string")
        for attr in node.attributes.values():
            for s in ((attr.s,) if attr.s is not None else ()) + attr.strings:
                kind = _magic(s)
                if kind:
                    where = f"{node.label}.{attr.name}"
                    yield artifact.finding(SUSPICIOUS_STRING, f"attribute {where} holds an "
                                           f"embedded {kind}", node=where, offset=node.offset,
                                           evidence=repr(s[:32]))
                    if kind in ("pickle", "zip"):
                        yield Nested(where, s)
        del scope


SCANNER: Final = OnnxScanner()
