"""The MW-PKL rules: everything the pickle machine can report.

They live in one module so every scanner that runs the machine on an embedded pickle
(PyTorch zips, object ``.npy`` arrays, TorchScript, legacy torch, joblib) lists the same
rules in its ``rules`` tuple through `PICKLE_RULES`.

Rules:
    MW-PKL-001 dangerous-global (CRITICAL): imports or calls a known code-running callable.
    MW-PKL-002 unknown-global (MEDIUM): imports a callable outside the allowlist.
    MW-PKL-003 reflective-call (CRITICAL): calls a callable computed at load time (getattr...).
    MW-PKL-004 attribute-poisoning (HIGH): BUILD sets attributes on a module, class or function.
    MW-PKL-005 nested-pickle (HIGH): a pickle hidden in bytes handed to a loader or call.
    MW-PKL-006 malformed-pickle (LOW): the stream is truncated or breaks the pickle VM's rules.
    MW-PKL-007 data-after-stop (LOW): bytes after the final STOP opcode that are not a pickle.
    MW-PKL-008 multiple-pickles (LOW): several pickles stacked back to back in one stream.
    MW-PKL-009 suspicious-persistent-id (MEDIUM): a persistent id built by calls or imports.
    MW-PKL-010 pickle-resource-limit (MEDIUM): a budget stopped the analysis early.
    MW-PKL-011 unregistered-extension (MEDIUM): an EXT code absent from copyreg's registry.
"""

from __future__ import annotations

from typing import Final

from modelward.findings import Rule, RuleId, Severity

__all__ = [
    "ATTRIBUTE_POISONING",
    "DANGEROUS_GLOBAL",
    "DATA_AFTER_STOP",
    "MALFORMED_PICKLE",
    "MULTIPLE_PICKLES",
    "NESTED_PICKLE",
    "PICKLE_RESOURCE_LIMIT",
    "PICKLE_RULES",
    "REFLECTIVE_CALL",
    "SUSPICIOUS_PERSISTENT_ID",
    "UNKNOWN_GLOBAL",
    "UNREGISTERED_EXTENSION",
]

_PICKLE_DOCS = "https://docs.python.org/3/library/pickle.html#restricting-globals"
_PICKLETOOLS = "https://github.com/python/cpython/blob/main/Lib/pickletools.py"
_TORCH_ADVISORY = "https://nvd.nist.gov/vuln/detail/CVE-2025-32434"
_PICKLESCAN_BYPASS = "https://github.com/mmaitre314/picklescan/security/advisories"
_FICKLING = "https://blog.trailofbits.com/2021/03/15/never-a-dill-moment-exploiting-machine-learning-pickle-files/"
_JFROG = "https://jfrog.com/blog/data-scientists-targeted-by-malicious-hugging-face-ml-models-with-silent-backdoor/"

DANGEROUS_GLOBAL: Final = Rule(
    RuleId("MW-PKL-001"), "dangerous-global", Severity.CRITICAL,
    "The pickle imports a callable that is known to execute processes, evaluate code, touch "
    "files or the network, or deserialize more data. Unpickling imports it and, through REDUCE, "
    "NEWOBJ, BUILD or a harmless-looking wrapper, calls it: code runs as soon as the file is "
    "loaded, before any model code sees it.",
    "Do not load this file. Obtain the model from a trusted source in a format that stores "
    "no code (safetensors, GGUF, ONNX), or load it with torch.load(weights_only=True) only "
    "after this scan is clean.",
    (_PICKLE_DOCS, _JFROG, _FICKLING),
)
UNKNOWN_GLOBAL: Final = Rule(
    RuleId("MW-PKL-002"), "unknown-global", Severity.MEDIUM,
    "The pickle imports a callable outside modelward's allowlist. Unpickling calls it (or its "
    "__setstate__/__reduce__ machinery) with data from the file; whether that is safe depends "
    "on code nobody has reviewed for this purpose, and ML libraries ship loaders and helpers "
    "that are gadgets.",
    "Review the named callables. If they are trusted, add them to allowed-globals in "
    "[tool.modelward]; otherwise convert the model to a code-free format.",
    (_PICKLE_DOCS,),
)
REFLECTIVE_CALL: Final = Rule(
    RuleId("MW-PKL-003"), "reflective-call", Severity.CRITICAL,
    "The pickle calls something it computed while loading: the result of getattr, "
    "import_module or attrgetter, a name assembled from strings for STACK_GLOBAL, or a "
    "poisoned module attribute. This is how payloads hide dangerous callables from scanners "
    "that only read GLOBAL names.",
    "Do not load this file; reflection has no place in a model checkpoint.",
    (_PICKLESCAN_BYPASS, _FICKLING),
)
ATTRIBUTE_POISONING: Final = Rule(
    RuleId("MW-PKL-004"), "attribute-poisoning", Severity.HIGH,
    "BUILD sets attributes on an imported module, class or function instead of on a new "
    "object. That rewrites library code in the loading process (for example replacing a "
    "function that later runs with one the attacker chose) and persists after loading.",
    "Do not load this file; no legitimate checkpoint modifies imported modules.",
    (_PICKLESCAN_BYPASS,),
)
NESTED_PICKLE: Final = Rule(
    RuleId("MW-PKL-005"), "nested-pickle", Severity.HIGH,
    "Bytes or a string inside the pickle are themselves a pickle, handed to a loader "
    "(pickle.loads, torch.load, joblib.load, ...) or to another call. Nested payloads evade "
    "scanners that only look at the outer stream; modelward analysed the inner one too.",
    "Do not load this file; see the nested findings for what the inner pickle does.",
    (_TORCH_ADVISORY,),
)
MALFORMED_PICKLE: Final = Rule(
    RuleId("MW-PKL-006"), "malformed-pickle", Severity.LOW,
    "The pickle stream is truncated or breaks the VM's rules (unknown opcode, stack "
    "underflow, missing memo entry, bad length). Loaders execute every opcode before the "
    "break, so what came before still counts; parsers that give up early miss payloads "
    "placed before a deliberate error.",
    "Obtain the file again from a trusted source; a model that does not load cleanly is "
    "damaged or crafted.",
    (_PICKLETOOLS,),
)
DATA_AFTER_STOP: Final = Rule(
    RuleId("MW-PKL-007"), "data-after-stop", Severity.LOW,
    "Bytes follow the final STOP opcode. pickle.load ignores them, but loaders that read "
    "several objects from one file (or tools that append payloads) may run them.",
    "Find out what the trailing data is; regenerate the file without it.",
    (_PICKLETOOLS,),
)
MULTIPLE_PICKLES: Final = Rule(
    RuleId("MW-PKL-008"), "multiple-pickles", Severity.LOW,
    "The stream holds several pickles back to back. Only some loaders read past the first "
    "one, so scanners that stop at the first STOP miss an appended payload. All of them "
    "were analysed.",
    "Check that the extra pickles are expected by the format (legacy torch files hold "
    "several); otherwise treat the file as tampered.",
    (_PICKLETOOLS,),
)
SUSPICIOUS_PERSISTENT_ID: Final = Rule(
    RuleId("MW-PKL-009"), "suspicious-persistent-id", Severity.MEDIUM,
    "A persistent id (PERSID/BINPERSID) is computed by calls or holds imported objects. "
    "persistent_load implementations (torch.load's among them) trust these values to locate "
    "storages; computed ids smuggle objects into them.",
    "Do not load this file until the persistent ids are explained.",
    (_PICKLE_DOCS,),
)
PICKLE_RESOURCE_LIMIT: Final = Rule(
    RuleId("MW-PKL-010"), "pickle-resource-limit", Severity.MEDIUM,
    "Analysis of the pickle stopped at an opcode, stack depth, size or time budget; the rest "
    "of the stream was not analysed. Payloads hide behind sheer size.",
    "Raise the pickle limits in [tool.modelward.limits] if the file is trusted to be that "
    "large, or inspect it by other means.",
)
UNREGISTERED_EXTENSION: Final = Rule(
    RuleId("MW-PKL-011"), "unregistered-extension", Severity.MEDIUM,
    "An EXT1/EXT2/EXT4 opcode names an extension code that copyreg's registry does not hold. "
    "Loading fails in a clean interpreter but imports whatever a process registered under "
    "that code, so the import cannot be verified.",
    "Do not load this file in a process that registers copyreg extensions.",
    ("https://peps.python.org/pep-0307/#the-extension-registry",),
)

PICKLE_RULES: Final[tuple[Rule, ...]] = (
    DANGEROUS_GLOBAL, UNKNOWN_GLOBAL, REFLECTIVE_CALL, ATTRIBUTE_POISONING, NESTED_PICKLE,
    MALFORMED_PICKLE, DATA_AFTER_STOP, MULTIPLE_PICKLES, SUSPICIOUS_PERSISTENT_ID,
    PICKLE_RESOURCE_LIMIT, UNREGISTERED_EXTENSION,
)
