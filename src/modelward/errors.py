"""Exceptions modelward raises, each able to explain itself to a user.

```
ModelwardError                .diagnostics(): what happened, where, what to try
├── InputError                missing path, wrong kind of file, conflicting options
├── FormatError               malformed artifact
│   └── ResourceLimitError    size, depth, count or time budget exceeded
├── VerificationError         signature, manifest or seal does not match
├── SealError                 cannot seal or unseal
├── BackendUnavailableError   an optional backend's extra is not installed
└── RegistryError             the web service refused or failed a request
```

Third-party exceptions are wrapped where they enter (``raise FormatError(...) from err``);
programming errors such as ``TypeError`` propagate.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "FormatError",
    "InputError",
    "ModelwardError",
    "RegistryError",
    "ResourceLimitError",
    "SealError",
    "VerificationError",
]


class ModelwardError(Exception):
    """Base of every error modelward raises on purpose.

    Args:
        message: what happened, one sentence.
        hint: what the user can try, if anything.
        offset: byte offset in the artifact the error refers to, if known.
    """

    def __init__(self, message: str, *, hint: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.offset = offset

    def diagnostics(self) -> str:
        """Return a human-readable explanation: what, where, and what to try."""
        text = self.message
        if self.offset is not None:
            text += f" (at byte offset {self.offset})"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(ModelwardError):
    """The user asked for something that cannot be done (missing path, bad option)."""


class FormatError(ModelwardError):
    """The artifact is malformed: it does not follow its format's rules."""


class ResourceLimitError(FormatError):
    """Analysing the artifact would exceed a size, depth, count or time budget."""


class VerificationError(ModelwardError):
    """A signature, manifest or seal does not match what is on disk."""


class SealError(ModelwardError):
    """A model package could not be sealed or unsealed."""


class BackendUnavailableError(ModelwardError):
    """An optional backend is needed but its extra is not installed."""


class RegistryError(ModelwardError):
    """The registry web service refused or failed a request."""
