"""Hugging Face JSON files: model configs, tokenizer configs, tokenizer.json, shard indexes.

These files run no code themselves, but they decide what code runs: ``auto_map`` and
``custom_pipelines`` make ``from_pretrained(..., trust_remote_code=True)`` import Python
modules from the repository, or from *another* repository (``owner/repo--module.Class``);
``chat_template`` is a Jinja program that inference servers render (CVE-2024-34359);
``weight_map`` in ``model.safetensors.index.json`` names the files a loader opens. A
folder is judged file by file, so each finding names the key it comes from. Files are
recognised by content (a JSON object with Hugging Face keys), never by name.

Rules:
    MW-HF-001 remote-code (MEDIUM): auto_map/custom_pipelines make loading import repository code.
    MW-HF-002 cross-repo-code (HIGH): auto_map imports code from a different repository.
    MW-HF-003 template-injection (HIGH): chat_template reaches Python internals.
    MW-HF-004 template-unparseable (MEDIUM): chat_template does not parse.
    MW-HF-005 template-unverified (MEDIUM): chat_template uses constructs chat templates do not.
    MW-HF-006 custom-class (MEDIUM): a class name field is not a plain class name.
    MW-HF-007 weight-map-escape (HIGH): a shard index points outside the model folder.
    MW-HF-008 missing-shard (MEDIUM): a shard index names files that are not there.
    MW-HF-009 tokenizer-anomaly (LOW): tokenizer.json has unknown components or risky regexes.
    MW-HF-010 duplicate-key (LOW): a JSON key appears twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.jinja_audit import IssueKind, audit_template
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "HfConfigScanner"]

_REMOTE_DOC: Final = "https://huggingface.co/docs/transformers/custom_models"
_SSTI: Final = "https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829"
# Keys that mark a JSON object as a Hugging Face file (config, tokenizer, processor,
# generation, adapter, shard index, tokenizer.json).
_MARKER_KEYS: Final = (
    b'"architectures"', b'"model_type"', b'"auto_map"', b'"tokenizer_class"',
    b'"_name_or_path"', b'"chat_template"', b'"transformers_version"', b'"processor_class"',
    b'"image_processor_type"', b'"feature_extractor_type"', b'"weight_map"', b'"added_tokens"',
    b'"peft_type"', b'"base_model_name_or_path"', b'"custom_pipelines"', b'"pre_tokenizer"',
    b'"model_max_length"', b'"bos_token"', b'"eos_token"', b'"decoder_start_token_id"',
)
_RISKY_KEYS: Final = (b'"auto_map"', b'"chat_template"', b'"custom_pipelines"', b'"weight_map"')
_CLASS_FIELDS: Final = ("tokenizer_class", "processor_class", "image_processor_type",
                        "feature_extractor_type", "video_processor_type")
_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_REF: Final = re.compile(
    r"^(?:(?P<repo>[^\s]+)--)?(?P<module>[A-Za-z_][\w.]*)\.(?P<cls>\w+)$")
_TOKENIZER_MODELS: Final = frozenset({"BPE", "WordPiece", "WordLevel", "Unigram"})
# A group holding a quantifier, itself quantified: the classic catastrophic-backtracking
# shape, e.g. (a+)+ or (\s*x)*.
_NESTED_QUANTIFIER: Final = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,\})")
_SCAN_CHUNK: Final = 1 << 20

REMOTE_CODE: Final = Rule(
    RuleId("MW-HF-001"), "remote-code", Severity.MEDIUM,
    "The config maps model classes to Python modules of the repository (auto_map, "
    "custom_pipelines). Loading with trust_remote_code=True imports and runs them.",
    "Review the named Python files (modelward scans them as MW-PY) and pin the revision; "
    "prefer models that need no remote code.", (_REMOTE_DOC,),
)
CROSS_REPO: Final = Rule(
    RuleId("MW-HF-002"), "cross-repo-code", Severity.HIGH,
    "auto_map names code in another repository (owner/repo--module.Class). That code is "
    "fetched at load time, is not part of the folder you scanned, and can change at any "
    "moment.",
    "Do not load with trust_remote_code unless the other repository is trusted and pinned.",
    (_REMOTE_DOC,),
)
TEMPLATE_INJECTION: Final = Rule(
    RuleId("MW-HF-003"), "template-injection", Severity.HIGH,
    "chat_template reaches Python internals (dunder attributes, |attr, module handles). "
    "Servers rendering it outside a Jinja sandbox run what it reaches.",
    "Replace the template with the original model's; render templates sandboxed.", (_SSTI,),
)
TEMPLATE_UNPARSEABLE: Final = Rule(
    RuleId("MW-HF-004"), "template-unparseable", Severity.MEDIUM,
    "chat_template does not parse as Jinja, so it could not be verified.",
    "Compare the template with the original model's and replace it.",
)
TEMPLATE_UNVERIFIED: Final = Rule(
    RuleId("MW-HF-005"), "template-unverified", Severity.MEDIUM,
    "chat_template uses constructs chat templates do not (unknown filters or methods, "
    "web-framework globals, template loading); it cannot be verified safe.",
    "Read the template; if it is not the original model's, replace it.", (_SSTI,),
)
CUSTOM_CLASS: Final = Rule(
    RuleId("MW-HF-006"), "custom-class", Severity.MEDIUM,
    "A class field (tokenizer_class, processor_class...) is not a plain class name, so "
    "it points at a module path or another repository rather than a library class.",
    "Check which code the field makes the loader import.", (_REMOTE_DOC,),
)
WEIGHT_MAP_ESCAPE: Final = Rule(
    RuleId("MW-HF-007"), "weight-map-escape", Severity.HIGH,
    "The shard index sends the loader to a file outside the model folder (absolute path, "
    "'..', URL), or to shards in a pickle-based format under a safetensors index.",
    "Do not load the model; shard names must be plain files of the folder.",
)
MISSING_SHARD: Final = Rule(
    RuleId("MW-HF-008"), "missing-shard", Severity.MEDIUM,
    "The shard index names files that are not in the folder; loaders fail or fetch them "
    "from elsewhere, and those bytes were not scanned.",
    "Download the complete model and scan it again.",
)
TOKENIZER_ANOMALY: Final = Rule(
    RuleId("MW-HF-009"), "tokenizer-anomaly", Severity.LOW,
    "tokenizer.json has a component type the tokenizers library does not define, or a "
    "regular expression with nested quantifiers that can backtrack catastrophically on "
    "crafted input (denial of service).",
    "Compare tokenizer.json with the original model's.",
)
DUPLICATE_KEY: Final = Rule(
    RuleId("MW-HF-010"), "duplicate-key", Severity.LOW,
    "A key appears twice in a JSON object; readers differ on which value wins, so a review "
    "can see another value than the loader.",
    "Remove the duplicate.",
)
_TEMPLATE_RULES: Final[dict[IssueKind, Rule]] = {
    IssueKind.INJECTION: TEMPLATE_INJECTION,
    IssueKind.UNPARSEABLE: TEMPLATE_UNPARSEABLE,
    IssueKind.UNVERIFIED: TEMPLATE_UNVERIFIED,
}


class _Pairs:
    """`object_pairs_hook` recording duplicated keys (the last value wins, as in `json`)."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in pairs:
            if key in out and len(self.duplicates) < 100:
                self.duplicates.append(key)
            out[key] = value
        return out


def _json_start(head: bytes) -> bytes:
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    return body.lstrip(b" \t\r\n")


class HfConfigScanner(Scanner):
    """Hugging Face JSON files, recognised by their keys."""

    name: ClassVar[str] = "hfconfig"
    suffixes: ClassVar[frozenset[str]] = frozenset({".json"})
    rules: ClassVar[tuple[Rule, ...]] = (
        REMOTE_CODE, CROSS_REPO, TEMPLATE_INJECTION, TEMPLATE_UNPARSEABLE, TEMPLATE_UNVERIFIED,
        CUSTOM_CLASS, WEIGHT_MAP_ESCAPE, MISSING_SHARD, TOKENIZER_ANOMALY, DUPLICATE_KEY,
    )
    priority: ClassVar[int] = 5

    @override
    def claims(self, artifact: Artifact) -> bool:
        head = artifact.head
        if not _json_start(head).startswith(b"{"):
            return False
        if any(key in head for key in _MARKER_KEYS):
            return True
        # A risky key pushed past the first 64 KiB still counts.
        limit = min(artifact.size, artifact.limits.max_header_bytes)
        for start in range(len(head) - 32, limit, _SCAN_CHUNK):
            chunk = bytes(artifact.data[max(start, 0) : start + _SCAN_CHUNK + 32])
            if any(key in chunk for key in _RISKY_KEYS):
                return True
        return False

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        if artifact.size > artifact.limits.max_header_bytes:
            raise ResourceLimitError(f"JSON file of {artifact.size} bytes exceeds the header "
                                     "budget", hint="raise [tool.modelward.limits] "
                                     "max-header-bytes")
        pairs = _Pairs()
        try:
            doc = json.loads(bytes(artifact.data).decode("utf-8-sig"), object_pairs_hook=pairs)
        except UnicodeDecodeError as err:
            raise FormatError("JSON is not valid UTF-8", offset=err.start) from err
        except (ValueError, RecursionError) as err:
            raise FormatError(f"not valid JSON: {str(err)[:200]}") from err
        if not isinstance(doc, dict):
            raise FormatError("JSON document is not an object")
        artifact.format_detail = _kind(doc)
        for key in dict.fromkeys(pairs.duplicates):
            yield artifact.finding(DUPLICATE_KEY, f"key {key!r} appears more than once",
                                   node=key, evidence=key)
        yield from _auto_map(artifact, doc)
        yield from _chat_templates(artifact, doc)
        yield from _class_fields(artifact, doc)
        if isinstance(doc.get("weight_map"), dict):
            yield from _weight_map(artifact, doc["weight_map"])
        if artifact.format_detail == "hf-tokenizer-json":
            yield from _tokenizer_json(artifact, doc)


def _kind(doc: dict[str, object]) -> str:
    if isinstance(doc.get("weight_map"), dict):
        return "hf-shard-index"
    if isinstance(doc.get("model"), dict) and (
            "added_tokens" in doc or "pre_tokenizer" in doc or "normalizer" in doc):
        return "hf-tokenizer-json"
    if "peft_type" in doc:
        return "hf-adapter-config"
    if "tokenizer_class" in doc or "chat_template" in doc or "added_tokens_decoder" in doc:
        return "hf-tokenizer-config"
    return "hf-config"


def _references(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


_MAX_SUBCONFIG_DEPTH: Final = 8
_MAX_SUBCONFIGS: Final = 10_000


def _subconfigs(doc: dict[str, object]) -> Iterator[tuple[str, dict[str, object]]]:
    """Nested config objects (``text_config``, ``vision_config``...), bounded.

    Composite models build sub-models with ``AutoModel.from_config(config.text_config)``,
    which honours an ``auto_map`` kept in the sub-config.
    """
    stack: list[tuple[str, dict[str, object], int]] = [
        (k, v, 1) for k, v in reversed(doc.items()) if isinstance(v, dict)]
    count = 0
    while stack and count < _MAX_SUBCONFIGS:
        path, node, depth = stack.pop()
        count += 1
        yield path, node
        if depth < _MAX_SUBCONFIG_DEPTH:
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in reversed(node.items())
                         if isinstance(v, dict))


def _auto_map(artifact: Artifact, doc: dict[str, object]) -> Iterator[ScanOutput]:
    yield from _auto_map_at(artifact, doc, "")
    for path, sub in _subconfigs(doc):
        if path in ("auto_map", "custom_pipelines") or not (
                "auto_map" in sub or "custom_pipelines" in sub):
            continue
        yield from _auto_map_at(artifact, sub, f"{path}.")


def _auto_map_at(artifact: Artifact, doc: dict[str, object], prefix: str,
                 ) -> Iterator[ScanOutput]:
    entries: list[tuple[str, str]] = []
    auto_map = doc.get("auto_map")
    if isinstance(auto_map, dict):
        entries += [(f"{prefix}auto_map.{k}", ref) for k, v in auto_map.items()
                    for ref in _references(v)]
    elif isinstance(auto_map, list):
        # Legacy tokenizer_config: a list is AutoTokenizer's (slow, fast) references.
        entries += [(f"{prefix}auto_map[{i}]", ref) for i, ref in enumerate(auto_map)
                    if isinstance(ref, str)]
    elif auto_map is not None:
        yield artifact.finding(REMOTE_CODE, "auto_map is present but not an object; loaders may "
                               "still try to import from it", node="auto_map",
                               evidence=str(auto_map)[:160])
    pipelines = doc.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            if isinstance(spec, dict):
                for field in ("impl", "pt", "tf"):
                    entries += [(f"{prefix}custom_pipelines.{task}.{field}", r)
                                for r in _references(spec.get(field))]
    for where, ref in entries:
        match = _MODULE_REF.match(ref)
        if match is None:
            yield artifact.finding(
                CROSS_REPO if "--" in ref or "/" in ref else REMOTE_CODE,
                f"{where} names code that is not a plain module.Class reference: {ref!r}",
                node=where, evidence=ref)
            continue
        module_file = match["module"].replace(".", "/") + ".py"
        if match["repo"]:
            yield artifact.finding(
                CROSS_REPO, f"{where} imports {module_file} from the repository "
                f"{match['repo']!r}, not from this folder, when loaded with trust_remote_code",
                node=where, evidence=ref)
        else:
            yield artifact.finding(
                REMOTE_CODE, f"{where} requires remote code: loading with trust_remote_code "
                f"imports {module_file} and instantiates {match['cls']}", node=where,
                evidence=ref)
    if doc.get("trust_remote_code") is True:
        yield artifact.finding(REMOTE_CODE, "the config sets trust_remote_code to true",
                               node=f"{prefix}trust_remote_code", evidence="true")


def _chat_templates(artifact: Artifact, doc: dict[str, object]) -> Iterator[ScanOutput]:
    value = doc.get("chat_template")
    templates: list[tuple[str, object]] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            name = item.get("name", i) if isinstance(item, dict) else i
            text = item.get("template") if isinstance(item, dict) else item
            templates.append((f"chat_template[{name}]", text))
    elif value is not None:
        templates.append(("chat_template", value))
    for where, text in templates:
        if not isinstance(text, str):
            yield artifact.finding(TEMPLATE_UNVERIFIED, f"{where} is not a string", node=where,
                                   evidence=str(text)[:160])
            continue
        artifact.check_deadline()
        for issue in audit_template(text):
            line = f" (template line {issue.line})" if issue.line else ""
            yield artifact.finding(_TEMPLATE_RULES[issue.kind], issue.message + line,
                                   node=where, evidence=issue.evidence)


def _class_fields(artifact: Artifact, doc: dict[str, object]) -> Iterator[ScanOutput]:
    for field in _CLASS_FIELDS:
        value = doc.get(field)
        if value is None:
            continue
        names = value if isinstance(value, list) else [value]
        for name in names:
            if name is None:
                continue
            if not isinstance(name, str) or not _IDENT.match(name):
                yield artifact.finding(
                    CUSTOM_CLASS, f"{field} is {name!r}, not a class name; loaders resolve it "
                    "as a module path or repository reference", node=field,
                    evidence=str(name)[:160])


def _weight_map(artifact: Artifact, weight_map: dict[str, object]) -> Iterator[ScanOutput]:
    shards: dict[str, str] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            yield artifact.finding(WEIGHT_MAP_ESCAPE, f"weight_map entry {tensor!r} is not a "
                                   "file name", node=f"weight_map.{tensor}",
                                   evidence=str(shard)[:160])
            continue
        shards.setdefault(shard, tensor)
    index_is_safetensors = artifact.name.endswith(".safetensors.index.json")
    for shard, tensor in shards.items():
        parts = re.split(r"[\\/]", shard)
        if (shard.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z][\w+.-]*:", shard)
                or "\x00" in shard or not shard.strip()):
            yield artifact.finding(WEIGHT_MAP_ESCAPE, f"weight_map sends tensor {tensor!r} to "
                                   f"{shard!r}, outside the model folder",
                                   node=f"weight_map.{tensor}", evidence=shard)
            continue
        if index_is_safetensors and not shard.endswith(".safetensors"):
            yield artifact.finding(
                WEIGHT_MAP_ESCAPE, f"a safetensors index sends tensor {tensor!r} to {shard!r}, "
                "which is not a safetensors file", node=f"weight_map.{tensor}", evidence=shard,
                severity=Severity.MEDIUM)
    folder = _sibling_folder(artifact)
    if folder is None:
        return
    missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))
               and ".." not in re.split(r"[\\/]", s) and not s.startswith(("/", "\\"))]
    for shard in missing[:20]:
        yield artifact.finding(MISSING_SHARD, f"shard {shard!r} named by the index is not in "
                               "the folder", node=f"weight_map.{shards[shard]}", evidence=shard)


def _sibling_folder(artifact: Artifact) -> str | None:
    fs_path = artifact.context.fs_path
    if artifact.depth != 0 or not fs_path:
        return None
    return os.path.dirname(fs_path)


def _tokenizer_json(artifact: Artifact, doc: dict[str, object]) -> Iterator[ScanOutput]:
    model = doc.get("model")
    model_type = model.get("type") if isinstance(model, dict) else None
    if model_type is not None and model_type not in _TOKENIZER_MODELS:
        yield artifact.finding(TOKENIZER_ANOMALY, f"tokenizer model type {model_type!r} is not "
                               "one the tokenizers library defines", node="model.type",
                               evidence=str(model_type)[:80])
    stack: list[tuple[object, str, int]] = [
        (doc.get(k), k, 0) for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")]
    while stack:
        node, where, depth = stack.pop()
        if depth > 32:
            continue
        if isinstance(node, dict):
            regex = node.get("Regex")
            if isinstance(regex, str) and _NESTED_QUANTIFIER.search(regex):
                yield artifact.finding(
                    TOKENIZER_ANOMALY, f"{where} uses a regular expression with nested "
                    "quantifiers, which can backtrack catastrophically", node=where,
                    evidence=regex[:160], severity=Severity.MEDIUM)
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))


SCANNER: Final = HfConfigScanner()
