"""Classification of the callables a pickle imports: safe, dangerous, or unknown.

Allowlist, not denylist: a callable is SAFE only when it is named exactly (module and
qualified name) in the allowlist, or in the user's ``allowed-globals``. DANGEROUS ones come
from a catalogue of capabilities that explains *why* (process execution, file access, ...).
Everything else is UNKNOWN, which the pickle machine reports at least at MEDIUM.

This module is the single place those lists live; the pickle machine only asks `classify`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from modelward.policy import Policy

__all__ = ["Classification", "Verdict", "classify"]


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
    """

    verdict: Verdict
    capability: str | None
    reason: str


# Seed lists; the full allowlist and catalogue are maintained below this line.
_SAFE: Final[frozenset[str]] = frozenset({
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
})

_DANGEROUS_MODULES: Final[dict[str, str]] = {
    "os": "process execution and file system access",
    "posix": "process execution and file system access",
    "nt": "process execution and file system access",
    "subprocess": "process execution",
    "builtins": "arbitrary code evaluation",
    "__builtin__": "arbitrary code evaluation",
}


def classify(module: str, name: str, policy: Policy | None = None) -> Classification:
    """Classify the callable ``module.name`` (``name`` may be a dotted qualified name).

    Args:
        module: the module a pickle imports from.
        name: the attribute path inside it.
        policy: the user's policy; its ``allowed_globals`` lift UNKNOWN to SAFE but never
            DANGEROUS to SAFE.
    """
    dotted = f"{module}.{name}"
    top = module.split(".", 1)[0]
    if top in _DANGEROUS_MODULES:
        capability = _DANGEROUS_MODULES[top]
        return Classification(Verdict.DANGEROUS, capability, f"{dotted} gives {capability}")
    if dotted in _SAFE:
        return Classification(Verdict.SAFE, None, f"{dotted} is on the allowlist")
    if policy is not None and dotted in policy.allowed_globals:
        return Classification(Verdict.SAFE, None, f"{dotted} is allowed by the policy")
    return Classification(Verdict.UNKNOWN, None, f"{dotted} is not on the allowlist")
