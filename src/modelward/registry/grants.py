"""Read grants on private models: who besides the owner and admins may see and pull one.

A private model is visible to its owner and to admins; a grant adds one named principal
(the name its tokens were created for, so every token of that principal, of any role,
gains read access: listing, search, the model and version pages, and pulls). Grants give
read access only: pushing stays with the owner. The owner or an admin grants and revokes;
anyone else asking about a private model they cannot see gets 404, as for any private
model, so a grant request does not reveal that the model exists. Every grant and
revocation is in the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelward.registry.errors import BadRequestError, ForbiddenError, NotFoundError
from modelward.registry.names import check_model_name

if TYPE_CHECKING:
    from modelward.registry.database import Transaction
    from modelward.registry.service import Principal, Registry

__all__ = ["grant", "list_grants", "revoke_grant"]


def _check_principal(principal: object) -> str:
    if (not isinstance(principal, str) or not principal or len(principal) > 128
            or not principal.isprintable()):
        raise BadRequestError("principal must be a token's principal name")
    return principal


def _managed_model(registry: Registry, tx: Transaction, who: Principal,
                   name: str) -> tuple[str, str]:
    """The (owner, visibility) of a model whose grants `who` may manage.

    Raises:
        NotFoundError: no such model, or one `who` cannot see.
        ForbiddenError: `who` sees it but neither owns it nor is an admin.
    """
    model = registry._model_row(tx, name)
    if model is None:
        raise NotFoundError(f"no model {name}")
    owner, visibility = model[0], model[1]
    if who.has("admin") or (who.role is not None and who.name == owner):
        return owner, visibility
    if not registry._can_read(who, owner, visibility,
                              bool(registry._granted(tx, who, name))):
        raise NotFoundError(f"no model {name}")
    raise ForbiddenError(f"only the owner of {name} or an admin manages its grants")


def list_grants(registry: Registry, who: Principal, model: object) -> list[dict[str, Any]]:
    """The principals granted read access to `model` (owner or admin only)."""
    name = check_model_name(model)
    with registry.db.transaction() as tx:
        _managed_model(registry, tx, who, name)
        rows = tx.execute("SELECT principal, granted_by, granted_at FROM grants "
                          "WHERE model = ? ORDER BY principal", (name,))
    return [{"principal": r[0], "granted_by": r[1], "granted_at": r[2]} for r in rows]


def grant(registry: Registry, who: Principal, model: object,
          principal: object) -> dict[str, Any]:
    """Give `principal` read access to the private `model`; idempotent.

    Raises:
        NotFoundError: no such model (or not visible to `who`), or no token was ever
            created for `principal` (a typo would otherwise grant nothing, silently).
        ForbiddenError: `who` is neither the owner nor an admin.
        BadRequestError: a public model, or the owner itself.
    """
    from modelward.registry.service import now

    name = check_model_name(model)
    principal = _check_principal(principal)
    with registry.db.transaction() as tx:
        owner, visibility = _managed_model(registry, tx, who, name)
        if visibility == "public":
            raise BadRequestError(f"{name} is public; grants apply to private models")
        if principal == owner:
            raise BadRequestError(f"{principal} owns {name}")
        if tx.one("SELECT 1 FROM tokens WHERE principal = ? LIMIT 1", (principal,)) is None:
            raise NotFoundError(f"no token was created for principal {principal!r}",
                                hint="see 'modelward registry token ls'")
        existed = tx.one("SELECT 1 FROM grants WHERE model = ? AND principal = ?",
                         (name, principal)) is not None
        if not existed:
            tx.execute("INSERT INTO grants VALUES (?, ?, ?, ?)",
                       (name, principal, who.name, now()))
    registry.audit(who.name, "model.grant", name,
                   {"principal": principal, "already": existed})
    return {"model": name, "principal": principal, "granted": True, "already": existed}


def revoke_grant(registry: Registry, who: Principal, model: object,
                 principal: object) -> dict[str, Any]:
    """Take `principal`'s read access to `model` away (next request on).

    Raises:
        NotFoundError: no such model (or not visible to `who`), or no such grant.
        ForbiddenError: `who` is neither the owner nor an admin.
    """
    name = check_model_name(model)
    principal = _check_principal(principal)
    with registry.db.transaction() as tx:
        _managed_model(registry, tx, who, name)
        if tx.one("SELECT 1 FROM grants WHERE model = ? AND principal = ?",
                  (name, principal)) is None:
            raise NotFoundError(f"{principal!r} has no grant on {name}")
        tx.execute("DELETE FROM grants WHERE model = ? AND principal = ?", (name, principal))
    registry.audit(who.name, "model.revoke-grant", name, {"principal": principal})
    return {"model": name, "principal": principal, "granted": False}
