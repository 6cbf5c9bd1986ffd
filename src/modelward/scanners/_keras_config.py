"""Analysis of Keras model configs (JSON), shared by the ``.keras`` and HDF5 scanners.

Keras rebuilds a model from a JSON config that names classes and functions by
``module`` / ``class_name`` / ``registered_name``; whatever the config names is imported
and called. That is the whole attack surface of Keras files: ``Lambda`` layers carry
marshalled Python bytecode (CVE-2024-3660, and CVE-2025-9905 for HDF5 where ``safe_mode``
is ignored); ``"class_name": "function"`` references make Keras import and call any
function (CVE-2025-1550: ``module``/``class_name`` outside Keras; CVE-2025-8747 and
CVE-2025-9906: Keras' own ``get_file``, ``load_model`` and
``enable_unsafe_deserialization`` used as gadgets); layers read files or URLs at load
(``TFSMLayer``, lookup-layer ``vocabulary`` paths).

The config is decoded with bounded, validated JSON decoding and walked iteratively. Nothing
is imported or unmarshalled: Lambda bytecode is only base64-decoded to show its printable
strings as evidence (``marshal.loads`` of hostile data can itself crash the interpreter).
Allowlist first: names outside Keras' own public API are at least MEDIUM.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Final

from modelward.errors import ResourceLimitError
from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.pickle_analysis import catalogue
from modelward.scanners._keras_names import KERAS_CLASS_NAMES, KERAS_FUNCTIONS
from modelward.scanners.base import Artifact

__all__ = [
    "CONFIG_RULES", "CUSTOM_OBJECT", "DANGEROUS_REFERENCE", "EXTERNAL_RESOURCE", "LAMBDA_CODE",
    "MALFORMED_CONFIG", "MISSING_CONFIG", "analyze_config", "classify_reference",
]

_ADVISORIES: Final = (
    "https://github.com/keras-team/keras/security/advisories/GHSA-48g7-3x6r-xfhp",
    "https://github.com/advisories/GHSA-c9rc-mg46-23w3",
    "https://github.com/advisories/GHSA-36fq-jgmw-4r9c",
)

LAMBDA_CODE: Final = Rule(
    RuleId("MW-KERAS-001"), "lambda-bytecode", Severity.CRITICAL,
    "A Lambda layer (or __lambda__ object) carries marshalled Python bytecode. Keras "
    "unmarshals and runs it on load: always for HDF5 files (safe_mode is ignored, "
    "CVE-2025-9905), for .keras files with safe_mode=False or Keras < 2.13 (CVE-2024-3660).",
    "Do not load the model. Rebuild the Lambda as a registered custom layer whose code you "
    "review, or obtain the model from a trusted source.",
    ("https://nvd.nist.gov/vuln/detail/CVE-2024-3660",
     "https://github.com/io-no/CVE-Reports/issues/7"),
)
DANGEROUS_REFERENCE: Final = Rule(
    RuleId("MW-KERAS-002"), "dangerous-reference", Severity.CRITICAL,
    "The config names a module or function that runs commands, touches files or the "
    "network, loads further models or turns safe mode off; Keras imports and calls what a "
    "config names (CVE-2025-1550, CVE-2025-8747, CVE-2025-9906).",
    "Do not load the model; it is built to run code or reach outside the model on load.",
    _ADVISORIES,
)
CUSTOM_OBJECT: Final = Rule(
    RuleId("MW-KERAS-003"), "custom-object", Severity.MEDIUM,
    "The config names a class or function outside Keras' own API; loading needs (and "
    "imports) code that is not part of the model and cannot be verified here.",
    "Check that the named module is code you trust and have installed yourself; allow it "
    "only after review.",
)
EXTERNAL_RESOURCE: Final = Rule(
    RuleId("MW-KERAS-004"), "external-resource", Severity.HIGH,
    "A layer reads a file or URL outside the model when it is built (TFSMLayer loads a "
    "whole TensorFlow SavedModel; lookup layers read vocabulary paths), leaking local data "
    "into the model or pulling in unscanned content.",
    "Make the model self-contained (vocabulary stored in the archive) or verify the "
    "referenced path yourself.",
    ("https://github.com/keras-team/keras/pull/21751",),
)
MALFORMED_CONFIG: Final = Rule(
    RuleId("MW-KERAS-005"), "malformed-config", Severity.MEDIUM,
    "The model config is not valid, bounded JSON, so what Keras would build from it "
    "cannot be verified.",
    "Obtain the model again from a trusted source.",
)
MISSING_CONFIG: Final = Rule(
    RuleId("MW-KERAS-006"), "missing-config", Severity.MEDIUM,
    "The model config could not be located, so the layers Keras would build are unknown.",
    "Inspect the file by other means before loading it.",
)

CONFIG_RULES: Final[tuple[Rule, ...]] = (
    LAMBDA_CODE, DANGEROUS_REFERENCE, CUSTOM_OBJECT, EXTERNAL_RESOURCE, MALFORMED_CONFIG,
    MISSING_CONFIG,
)

_MAX_DEPTH: Final = 200
_MAX_NODES: Final = 2_000_000
_EXCERPT: Final = 160

# Module roots whose every callable is a capability (process, file, network, import,
# code objects, nested deserializers).
_DANGEROUS_ROOTS: Final = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil", "socket",
    "pickle", "_pickle", "marshal", "ctypes", "code", "codeop", "pty", "webbrowser", "urllib",
    "urllib3", "http", "ftplib", "smtplib", "telnetlib", "requests", "httpx", "multiprocessing",
    "asyncio", "pathlib", "io", "_io", "tempfile", "glob", "dill", "cloudpickle", "joblib",
    "types", "operator", "functools", "commands", "popen2", "platform", "signal", "pdb",
    "timeit", "zipimport", "pkgutil", "tensorflow", "tf", "torch", "numpy",
})
_DANGEROUS_BUILTINS: Final = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "input", "breakpoint", "help", "exit", "quit", "print",
    "memoryview", "type", "object", "classmethod", "staticmethod", "property", "super",
})
# keras.src.saving.serialization_lib.NON_MODELING_APIS (keras 3.15), by final name, plus
# the gadgets of CVE-2025-9906 (safe mode switched off from inside the config).
_DANGEROUS_KERAS_NAMES: Final = frozenset({
    "clear_session", "enable_unsafe_deserialization", "load_model", "model_from_json",
    "model_from_config", "model_from_yaml", "save_model", "image_dataset_from_directory",
    "load_img", "save_img", "text_dataset_from_directory", "deserialize_keras_object",
    "load_weights", "register_keras_serializable", "save_weights", "serialize_keras_object",
    "audio_dataset_from_directory", "get_file", "set_global_attribute", "func_load",
    "timeseries_dataset_from_array", "load_data", "validate_file", "extract_archive",
    "set_random_seed", "disable_unsafe_deserialization", "func_dump",
})
# Keras sub-packages whose classes are model building blocks.
_SAFE_KERAS_PARTS: Final = frozenset({
    "layers", "models", "initializers", "regularizers", "constraints", "optimizers",
    "losses", "metrics", "activations", "dtype_policies", "mixed_precision", "quantizers",
    "ops", "random", "engine", "src",
})
_PLAIN_TYPES: Final = frozenset({
    "__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__",
    "__tuple__",
})
_LOOKUP_LAYERS: Final = frozenset({
    "StringLookup", "IntegerLookup", "IndexLookup", "TextVectorization",
})
_PATH_KEYS: Final = frozenset({
    "filepath", "vocabulary", "vocabulary_file", "vocabulary_path", "proto", "merges",
    "path", "url", "origin", "fname", "cache_dir", "spm_proto", "vocab_file",
})
_PATH_LIKE: Final = re.compile(r"(^[a-zA-Z][a-zA-Z0-9+.-]*://)|[/\\]|^~|\.(txt|json|model|pb|vocab)$")
_PRINTABLE: Final = re.compile(rb"[\x20-\x7e]{3,}")


def _excerpt(text: str, limit: int = _EXCERPT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def bytecode_strings(encoded: str, limit: int = 24) -> list[str]:
    """Printable strings inside base64-encoded marshalled bytecode (never unmarshalled).

    Args:
        encoded: base64 text as Keras stores it.
        limit: most strings returned.

    Returns:
        Names and constants the code object holds (``system``, ``'touch x'``...), in order.
    """
    try:
        raw = base64.b64decode(encoded[: 4 << 20].encode("ascii", "ignore"), validate=False)
    except (binascii.Error, ValueError):
        return []
    return [m.group().decode("ascii") for m in _PRINTABLE.finditer(raw[: 1 << 20])][:limit]


def _is_keras_module(module: str) -> bool:
    parts = module.split(".")
    if parts[0] != "keras":
        return False
    if len(parts) == 1:
        return True
    if parts[1] == "src":
        if len(parts) > 3 and parts[2] == "backend":  # backend-specific optimizers
            return "optimizers" in parts[3:]
        return len(parts) == 2 or parts[2] in _SAFE_KERAS_PARTS - {"src"}
    return parts[1] in _SAFE_KERAS_PARTS


def classify_reference(module: str | None, name: str, *, is_function: bool) -> Severity | None:
    """How dangerous a ``module``.``name`` reference in a config is.

    Args:
        module: the ``module`` the config names (None for legacy name-only references).
        name: class or function name.
        is_function: a ``"class_name": "function"`` reference (Keras calls it).

    Returns:
        CRITICAL for capability modules and Keras gadgets, MEDIUM for anything not known to
        be Keras' own, None for Keras' own building blocks.
    """
    if module is None:
        if is_function:
            known = any(name in names for names in KERAS_FUNCTIONS.values())
            return None if known else Severity.MEDIUM
        return None if name in KERAS_CLASS_NAMES else Severity.MEDIUM
    root = module.split(".")[0]
    if root in _DANGEROUS_ROOTS:
        return Severity.CRITICAL
    if root in {"builtins", "__builtin__", "__builtins__"}:
        if name in _DANGEROUS_BUILTINS:
            return Severity.CRITICAL
        # Keras >= 3.9 resolves ``builtins`` functions to its own built-ins by name.
        known = is_function and any(name in names for names in KERAS_FUNCTIONS.values())
        return None if known else Severity.MEDIUM
    if root == "keras":
        if name in _DANGEROUS_KERAS_NAMES:
            return Severity.CRITICAL
        if not _is_keras_module(module):
            return Severity.MEDIUM
        if is_function:
            part = module.split(".")[-1]
            names = KERAS_FUNCTIONS.get(part)
            known = names is not None and name in names
            known = known or any(name in n for n in KERAS_FUNCTIONS.values())
            return None if known else Severity.MEDIUM
        return None if name in KERAS_CLASS_NAMES else Severity.MEDIUM
    if name in _DANGEROUS_KERAS_NAMES or name in {"system", "popen", "exec", "eval"}:
        return Severity.CRITICAL
    # Keras < 3.9 imports any module a config names: judge it like an imported global.
    if (catalogue.lookup(module, name) is not None
            or name.rsplit(".", 1)[-1] in catalogue.DANGEROUS_NAMES):
        return Severity.CRITICAL
    return Severity.MEDIUM


def decode_config(artifact: Artifact, text: bytes | str, what: str,
                  offset: int | None = None) -> tuple[object, Finding | None]:
    """Decode a JSON config with size and nesting bounds.

    Returns:
        (the decoded value, None) or (None, a MW-KERAS-005 finding).

    Raises:
        ResourceLimitError: the config is larger than the header budget.
    """
    if len(text) > artifact.limits.max_header_bytes:
        raise ResourceLimitError(
            f"{what} is {len(text)} bytes, over the {artifact.limits.max_header_bytes} limit",
            offset=offset)
    try:
        return json.loads(text), None
    except RecursionError:
        reason = "nested too deeply"
    except (ValueError, UnicodeDecodeError) as err:
        reason = str(err)[:200]
    return None, artifact.finding(MALFORMED_CONFIG, f"{what} is not valid JSON: {reason}",
                                  offset=offset, evidence=_excerpt(str(text[:_EXCERPT])))


def analyze_config(artifact: Artifact, config: object, *, what: str, legacy_h5: bool,
                   offset: int | None = None) -> Iterator[Finding]:
    """Walk a decoded Keras config and yield findings for what loading it would run.

    Args:
        artifact: where findings are located.
        config: the decoded JSON.
        what: name of the config for messages (``config.json``, ``model_config``).
        legacy_h5: the config comes from an HDF5 file, where Keras ignores safe_mode.
        offset: byte offset of the config in the artifact, if known.

    Raises:
        ResourceLimitError: more nodes than the budget allows.
    """
    stack: list[tuple[object, str, int, str | None]] = [(config, "$", 0, None)]
    seen = 0
    too_deep = False
    while stack:
        node, path, depth, layer = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            raise ResourceLimitError(f"{what} has more than {_MAX_NODES} JSON values",
                                     offset=offset)
        if not seen & 0xFFF:
            artifact.check_deadline()
        if depth > _MAX_DEPTH:
            too_deep = True
            continue
        if isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], f"{path}[{i}]", depth + 1, layer))
            continue
        if not isinstance(node, dict):
            continue
        cfg = node.get("config")
        if isinstance(node.get("class_name"), str) and isinstance(cfg, dict):
            name = cfg.get("name")
            if isinstance(name, str):
                layer = name[:100]
        where = path if layer is None else f"{path} ({layer})"
        yield from _check_object(artifact, node, where, legacy_h5, offset)
        for key in sorted(node, reverse=True):
            stack.append((node[key], f"{path}.{key}", depth + 1, layer))
    if too_deep:
        yield artifact.finding(MALFORMED_CONFIG, f"{what} nests deeper than {_MAX_DEPTH} levels; "
                               "the deepest parts were not analysed", offset=offset)


def _lambda_finding(artifact: Artifact, code: str, where: str, legacy_h5: bool,
                    offset: int | None) -> Finding:
    strings = bytecode_strings(code)
    shown = ", ".join(repr(s) for s in strings) or _excerpt(code, 80)
    if legacy_h5:
        msg = ("Lambda layer with marshalled Python bytecode: Keras runs it when the HDF5 "
               "model is loaded, whatever safe_mode says")
        severity = Severity.CRITICAL
    else:
        msg = ("Lambda layer with marshalled Python bytecode: it runs on load with "
               "safe_mode=False or in Keras < 2.13 (the default safe_mode refuses it)")
        severity = Severity.HIGH
    return artifact.finding(LAMBDA_CODE, msg, offset=offset, node=where, severity=severity,
                            evidence=_excerpt(f"bytecode strings: {shown}", 400))


def _check_object(artifact: Artifact, node: dict[str, object], where: str, legacy_h5: bool,
                  offset: int | None) -> Iterator[Finding]:
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        return
    raw_module = node.get("module")
    module = raw_module if isinstance(raw_module, str) else None
    cfg = node.get("config")
    if class_name == "__lambda__":
        # Keras 3 stores the bytecode under "value" (older 3.x and tf.keras: "code").
        code = None
        if isinstance(cfg, dict):
            code = cfg.get("value") if isinstance(cfg.get("value"), str) else cfg.get("code")
        yield _lambda_finding(artifact, code if isinstance(code, str) else "", where, legacy_h5,
                              offset)
        return
    if class_name in _PLAIN_TYPES:
        return
    if class_name == "__typespec__":
        # Keras imports ``module``.``spec_name`` as a class (any module before 3.9).
        spec = node.get("spec_name")
        registered = node.get("registered_name")
        if isinstance(spec, str):
            yield from _reference(artifact, module, spec, False, where, offset)
        else:
            yield artifact.finding(CUSTOM_OBJECT, "__typespec__ without a spec_name",
                                   offset=offset, node=where)
        if isinstance(registered, str) and registered != spec:
            yield artifact.finding(CUSTOM_OBJECT, f"__typespec__ resolved through the "
                                   f"registered custom object {registered!r}", offset=offset,
                                   node=where, evidence=_excerpt(registered))
        return
    if class_name.startswith("__") and class_name.endswith("__"):
        yield artifact.finding(CUSTOM_OBJECT, f"unusual serialized type {class_name!r}",
                               offset=offset, node=where, evidence=_excerpt(class_name))
        return
    if class_name == "function":
        fname = cfg if isinstance(cfg, str) else node.get("registered_name")
        if not isinstance(fname, str):
            yield artifact.finding(CUSTOM_OBJECT, "function reference without a name",
                                   offset=offset, node=where)
            return
        yield from _reference(artifact, module, fname, True, where, offset)
        return
    if class_name == "Lambda" and isinstance(cfg, dict):
        yield from _legacy_lambda(artifact, cfg, where, legacy_h5, offset)
    if "module" in node and node["module"] is None and class_name not in KERAS_CLASS_NAMES:
        yield artifact.finding(CUSTOM_OBJECT, f"custom object {class_name!r} without a module",
                               offset=offset, node=where, evidence=_excerpt(class_name))
    else:
        yield from _reference(artifact, module, class_name, False, where, offset)
    registered = node.get("registered_name")
    if (isinstance(registered, str) and registered != class_name
            and classify_reference(module, class_name, is_function=False) is None):
        yield artifact.finding(CUSTOM_OBJECT,
                               f"{class_name!r} is resolved through the registered custom "
                               f"object {registered!r}", offset=offset, node=where,
                               evidence=_excerpt(registered))
    if isinstance(cfg, dict):
        yield from _external(artifact, class_name, cfg, where, offset)


def _reference(artifact: Artifact, module: str | None, name: str, is_function: bool,
               where: str, offset: int | None) -> Iterator[Finding]:
    severity = classify_reference(module, name, is_function=is_function)
    if severity is None:
        return
    full = f"{module}.{name}" if module else name
    kind = "function" if is_function else "class"
    if severity >= Severity.CRITICAL:
        yield artifact.finding(
            DANGEROUS_REFERENCE,
            f"config makes Keras import {'and call ' if is_function else ''}{full}, "
            "a capability (code, process, file, network or safe-mode switch)",
            offset=offset, node=where, evidence=_excerpt(full))
    else:
        yield artifact.finding(CUSTOM_OBJECT, f"{kind} {full} is not part of Keras' own API",
                               offset=offset, node=where, evidence=_excerpt(full),
                               severity=severity)


def _legacy_lambda(artifact: Artifact, cfg: dict[str, object], where: str, legacy_h5: bool,
                   offset: int | None) -> Iterator[Finding]:
    """Keras 2 / tf.keras Lambda: ``function`` is base64 bytecode or a named function."""
    for attr in ("function", "output_shape"):
        value = cfg.get(attr)
        kind = cfg.get(f"{attr}_type", "lambda" if attr == "function" else None)
        code = value[0] if isinstance(value, list) and value else value
        if kind == "lambda" and isinstance(code, str):
            yield _lambda_finding(artifact, code, where, legacy_h5, offset)
        elif kind == "raw" and isinstance(code, str):
            module = cfg.get(f"{attr}_module", cfg.get("module"))
            yield from _reference(artifact, module if isinstance(module, str) else None, code,
                                  True, where, offset)


def _external(artifact: Artifact, class_name: str, cfg: dict[str, object], where: str,
              offset: int | None) -> Iterator[Finding]:
    if class_name == "TFSMLayer":
        path = cfg.get("filepath")
        yield artifact.finding(EXTERNAL_RESOURCE,
                               "TFSMLayer loads an external TensorFlow SavedModel, whose graph "
                               "this scan does not cover", offset=offset, node=where,
                               evidence=_excerpt(str(path)))
        return
    for key in sorted(_PATH_KEYS & cfg.keys()):
        value = cfg[key]
        if not isinstance(value, str) or not value:
            continue
        if (key == "vocabulary" and class_name in _LOOKUP_LAYERS) or _PATH_LIKE.search(value):
            yield artifact.finding(EXTERNAL_RESOURCE,
                                   f"{class_name} reads {key} from {_excerpt(value, 80)!r} when "
                                   "the model is built", offset=offset, node=where,
                                   evidence=_excerpt(f"{key}={value}"))
