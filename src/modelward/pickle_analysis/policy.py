"""Classification of the callables a pickle imports: safe, dangerous, or unknown.

Allowlist, not denylist: a callable is SAFE only when it is named exactly (module and
qualified name) in the allowlist (`allowlist.py`) or in the user's ``allowed-globals``.
DANGEROUS ones come from a catalogue of capabilities (`catalogue.py`) that explains *why*
(process execution, file access, ...). Everything else is UNKNOWN, which the pickle
machine reports at least at MEDIUM.

Names are judged the way a loader would resolve them, not as written:

- Python 2 names are mapped like ``Unpickler(fix_imports=True)`` does for protocols < 3
  (``__builtin__.eval`` is ``builtins.eval``, ``commands`` is ``subprocess``); the raw and
  the mapped name are both judged and the worse verdict wins.
- Implementation modules count as their public face (``posix``/``nt`` are ``os``,
  ``_operator`` is ``operator``, ``_io`` is ``io``; `catalogue.MODULE_ALIASES`).
- A dotted qualified name is attribute traversal (protocol 4 resolves ``os.system`` inside
  any module that imported ``os``), so every suffix of it is looked up in the catalogue.
- A double-underscore segment (``object.__subclasses__``, ``getattr.__self__``,
  ``pkg.__main__``) is reflection and DANGEROUS unless that exact name is allowlisted
  (``copyreg.__newobj__``).
- ``os.path`` is no exception: checkpoints never need it, and ``posixpath.os`` leads back.

This module is the single place those decisions live; the pickle machine only asks `classify`.
"""

from __future__ import annotations

import _compat_pickle
import enum
import functools
from dataclasses import dataclass

from modelward.pickle_analysis import catalogue
from modelward.pickle_analysis.allowlist import CALLS_ARGUMENTS, SAFE_GLOBALS
from modelward.policy import Policy

__all__ = ["Classification", "Verdict", "classify", "normalize"]


class Verdict(enum.Enum):
    """What an imported callable is known to be."""

    SAFE = "safe"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one imported callable and the reason a user is shown.

    Attributes:
        verdict: safe, unknown or dangerous.
        capability: for dangerous ones, what it can do (``process execution``).
        reason: one sentence a user can read.
        name: the dotted name judged, after normalisation (``builtins.eval`` for
            ``__builtin__`` / ``eval``); empty when not computed.
        matched: the catalogue or allowlist entry that decided, if any (``os``).
        calls_arguments: a SAFE callable that calls one of its arguments while loading
            (``copyreg._reconstructor``, ``torch._tensor._rebuild_from_type_v2``): what
            flows into it must itself be safe, and a computed (non-imported) callable
            there is reflection.
        deserializes_argument: a DANGEROUS nested loader (``pickle.loads``,
            ``torch.storage._load_from_bytes``) whose bytes argument the machine can
            analyse as a nested pickle.
    """

    verdict: Verdict
    capability: str | None
    reason: str
    name: str = ""
    matched: str | None = None
    calls_arguments: bool = False
    deserializes_argument: bool = False


def _is_dunder(segment: str) -> bool:
    return len(segment) > 4 and segment.startswith("__") and segment.endswith("__")


def normalize(module: str, name: str) -> tuple[str, str]:
    """The (module, name) a protocol < 3 loader with ``fix_imports`` actually imports.

    Args:
        module: module as written in the pickle.
        name: qualified name as written.

    Returns:
        The Python 3 names (unchanged when no mapping applies).
    """
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _judge(module: str, name: str) -> Classification:
    """Classify one already-normalised name, ignoring the user's policy."""
    dotted = f"{module}.{name}"
    found = catalogue.lookup(module, name)
    if found is not None:
        entry, capability = found
        return Classification(
            Verdict.DANGEROUS, capability, f"{dotted} gives {capability}", dotted, entry,
            deserializes_argument=capability == catalogue.DESERIALIZE,
        )
    if dotted in SAFE_GLOBALS:
        return Classification(Verdict.SAFE, None, f"{dotted} is on the allowlist", dotted, dotted,
                              calls_arguments=dotted in CALLS_ARGUMENTS)
    if module == "__torch__" or module.startswith("__torch__."):
        # TorchScript class names: torch.jit.load resolves them against the classes compiled
        # from the archive's own code/ (analysed by the pytorch scanner); Python's pickle
        # cannot import a module called __torch__. Either way no Python import happens.
        rest = [*module.split(".")[1:], *name.split(".")]
        if all(s.isidentifier() and not _is_dunder(s) for s in rest):
            return Classification(
                Verdict.SAFE, None,
                f"{dotted} is a TorchScript class compiled from the archive's code, "
                "not a Python import",
                dotted, "__torch__",
            )
    segments = [*module.split("."), *name.split(".")]
    if not module or not name or any(not s for s in segments):
        return Classification(Verdict.DANGEROUS, catalogue.REFLECTION,
                              f"{dotted!r} is not a valid import path; loaders resolve such "
                              "names in surprising ways", dotted)
    # Module dunders: a top-level __main__ is the script that pickled the object (user
    # classes: unknown); a package's __main__ is its command-line entry point.
    dunders = [s for s in name.split(".") if _is_dunder(s)]
    dunders += [s for s in module.split(".")[1:] if _is_dunder(s)]
    if dunders:
        return Classification(
            Verdict.DANGEROUS, catalogue.REFLECTION,
            f"{dotted} reaches the special attribute {dunders[0]}, which leads to arbitrary "
            f"objects; that gives {catalogue.REFLECTION}", dotted, dunders[0],
        )
    last = name.rsplit(".", 1)[-1]
    sink = catalogue.DANGEROUS_NAMES.get(last)
    if sink is not None:
        return Classification(
            Verdict.DANGEROUS, sink,
            f"{dotted} is not on the allowlist and its name {last!r} is a known {sink} sink",
            dotted, last, deserializes_argument=sink == catalogue.DESERIALIZE,
        )
    return Classification(Verdict.UNKNOWN, None, f"{dotted} is not on the allowlist", dotted)


@functools.lru_cache(maxsize=4096)
def _classify_default(module: str, name: str) -> Classification:
    raw = _judge(module, name)
    fixed_module, fixed_name = normalize(module, name)
    if (fixed_module, fixed_name) == (module, name):
        return raw
    fixed = _judge(fixed_module, fixed_name)
    # The raw name is what a protocol >= 3 loader imports. Python 2 module names do not
    # exist on Python 3, so the raw view only matters when it is worse than dangerous-free.
    if raw.verdict is Verdict.DANGEROUS and fixed.verdict is not Verdict.DANGEROUS:
        return raw
    return fixed


def classify(module: str, name: str, policy: Policy | None = None) -> Classification:
    """Classify the callable ``module.name`` (``name`` may be a dotted qualified name).

    Args:
        module: the module a pickle imports from.
        name: the attribute path inside it.
        policy: the user's policy; its ``allowed_globals`` lift UNKNOWN to SAFE but never
            DANGEROUS to SAFE.

    Returns:
        The verdict, with the capability and a sentence explaining it.
    """
    result = _classify_default(module, name)
    if result.verdict is Verdict.UNKNOWN and policy is not None:
        candidates = {f"{module}.{name}", result.name}
        allowed = candidates & policy.allowed_globals
        if allowed:
            entry = sorted(allowed)[0]
            return Classification(Verdict.SAFE, None, f"{entry} is allowed by the policy",
                                  result.name, entry)
    return result
