"""Registry errors, each carrying the HTTP status the API answers with.

Every refusal a client can cause maps to a 4xx here; the API turns anything else into a
generic 500 without details (and logs it), so hostile input never sees a traceback.
"""

from __future__ import annotations

from typing import ClassVar

from modelward.errors import RegistryError
from modelward.registry.database import ConflictError
from modelward.registry.names import InvalidNameError

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "InvalidNameError",
    "NotFoundError",
    "TooLargeError",
    "http_status",
]


class BadRequestError(RegistryError):
    """Malformed request (400)."""

    status: ClassVar[int] = 400


class AuthError(RegistryError):
    """Missing, unknown, revoked or expired token (401)."""

    status: ClassVar[int] = 401


class ForbiddenError(RegistryError):
    """Authenticated, but the role or visibility does not allow it (403)."""

    status: ClassVar[int] = 403


class NotFoundError(RegistryError):
    """No such model, version, upload or file, or not visible to the caller (404)."""

    status: ClassVar[int] = 404


class TooLargeError(RegistryError):
    """Upload or request body larger than the configured limits (413)."""

    status: ClassVar[int] = 413


def http_status(err: RegistryError) -> int:
    """The HTTP status for a registry error (400 when none is more specific)."""
    if isinstance(err, ConflictError):
        return 409
    if isinstance(err, InvalidNameError):
        return 400
    return int(getattr(err, "status", 400))
