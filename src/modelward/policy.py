"""What the user allows: extra allowed globals, ignored rules, fail-on level, limits.

A policy is read from ``modelward.toml`` (top-level keys) or from the ``[tool.modelward]``
table of ``pyproject.toml``, looked up in the *current directory*, or from a file given
explicitly. It is never read from the scanned target: a hostile model folder must not
be able to ship its own allowlist.

```toml
[tool.modelward]
fail-on = "high"                        # info|low|medium|high|critical
allowed-globals = ["mylib.layers.MyBlock"]  # module.qualname (or module:qualname)
ignore = ["MW-CORE-004"]                 # rule ids whose findings are dropped
exclude = [".git"]                       # directory names not walked

[tool.modelward.limits]
max-depth = 8
max-member-bytes = 536870912
max-seconds-per-file = 300
max-pickle-memo = 5000000
```

Safe defaults: nothing extra allowed, nothing ignored, fail on HIGH.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from modelward.errors import InputError
from modelward.findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Limits", "Policy", "load_policy"]

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets every parser honours. Exceeding one yields a finding, never a crash.

    Attributes:
        max_depth: nesting depth of archives / streams inside a file.
        max_members: members of one archive that are analysed.
        max_member_bytes: largest member or decompressed stream held in memory.
        max_total_bytes: decompressed bytes per top-level file, all members together.
        max_compression_ratio: ratio above which a member is treated as a bomb.
        max_header_bytes: largest metadata header (JSON, protobuf, template) parsed.
        max_pickle_ops: opcodes the pickle machine executes per stream.
        max_pickle_depth: stack/mark depth or container nesting in a pickle.
        max_pickle_memo: memo entries one pickle may hold (the machine's memory grows with
            them: about 150 bytes each; 5 million is roughly 750 MB).
        max_graph_nodes: nodes of a model graph analysed (all subgraphs together).
        max_seconds_per_file: wall-clock budget for one top-level file.
    """

    max_depth: int = 8
    max_members: int = 100_000
    max_member_bytes: int = 512 * MiB
    max_total_bytes: int = 4 * GiB
    max_compression_ratio: int = 1000
    max_header_bytes: int = 256 * MiB
    max_pickle_ops: int = 50_000_000
    max_pickle_depth: int = 10_000
    max_pickle_memo: int = 5_000_000
    max_graph_nodes: int = 2_000_000
    max_seconds_per_file: float = 300.0


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a scan is judged by.

    Attributes:
        allowed_globals: extra ``module.qualname`` callables a pickle may import. They lift
            *unknown* imports to allowed; they never downgrade known-dangerous ones.
        ignored_rules: rule ids whose findings are dropped from the report (counted).
        fail_on: lowest severity that makes the exit code 1.
        exclude: directory names skipped when walking a folder.
        limits: parser budgets.
        source: where the policy was read from, for the report.
    """

    allowed_globals: frozenset[str] = frozenset()
    ignored_rules: frozenset[str] = frozenset()
    fail_on: Severity = Severity.HIGH
    exclude: frozenset[str] = frozenset({".git"})
    limits: Limits = field(default_factory=Limits)
    source: str | None = None

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form (what attestations record)."""
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The policy as plain JSON data (sorted lists, level names)."""
        return {
            "allowed_globals": sorted(self.allowed_globals),
            "ignored_rules": sorted(self.ignored_rules),
            "fail_on": self.fail_on.label,
            "exclude": sorted(self.exclude),
            "limits": asdict(self.limits),
        }

    def with_overrides(self, **changes: Any) -> Policy:
        """A copy with some fields replaced (CLI flags over the file)."""
        return replace(self, **changes)


_LIMIT_KEYS = {f.name.replace("_", "-"): f.name for f in fields(Limits)}


def _string_list(table: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: '{key}' must be a list of strings")
    return frozenset(value)


def policy_from_mapping(table: Mapping[str, Any], where: str = "policy") -> Policy:
    """Build a policy from a parsed TOML table.

    Raises:
        InputError: unknown keys or values of the wrong type.
    """
    known = {"fail-on", "allowed-globals", "ignore", "exclude", "limits"}
    unknown = set(table) - known
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )
    fail_on = Severity.HIGH
    if "fail-on" in table:
        if not isinstance(table["fail-on"], str):
            raise InputError(f"{where}: 'fail-on' must be a level name")
        try:
            fail_on = Severity.parse(table["fail-on"])
        except ValueError as err:
            raise InputError(f"{where}: {err}") from None
    allowed = frozenset(
        g.replace(":", ".") for g in _string_list(table, "allowed-globals", where)
    )
    ignored = frozenset(r.upper() for r in _string_list(table, "ignore", where))
    exclude = _string_list(table, "exclude", where) if "exclude" in table else frozenset({".git"})
    limits = Limits()
    raw_limits = table.get("limits", {})
    if not isinstance(raw_limits, Mapping):
        raise InputError(f"{where}: 'limits' must be a table")
    changes: dict[str, Any] = {}
    for key, value in raw_limits.items():
        if key not in _LIMIT_KEYS:
            raise InputError(f"{where}: unknown limit {key!r}", hint=", ".join(sorted(_LIMIT_KEYS)))
        name = _LIMIT_KEYS[key]
        integral = name != "max_seconds_per_file"
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
                or (integral and not isinstance(value, int))):
            kind = "a positive whole number" if integral else "a positive number"
            raise InputError(f"{where}: limit {key!r} must be {kind}")
        changes[name] = value
    if changes:
        limits = replace(limits, **changes)
    return Policy(
        allowed_globals=allowed,
        ignored_rules=ignored,
        fail_on=fail_on,
        exclude=exclude,
        limits=limits,
        source=where,
    )


def load_policy(explicit: Path | None = None, cwd: Path | None = None) -> Policy:
    """Load the policy from `explicit`, else from ``modelward.toml`` or ``pyproject.toml``.

    Args:
        explicit: a policy file named by the user (``--config``).
        cwd: directory to look in; defaults to the current directory.

    Returns:
        The policy, or the safe default when no file configures one.

    Raises:
        InputError: the file is missing, not TOML, or holds bad values.
    """
    candidates: list[tuple[Path, bool]]
    if explicit is not None:
        if not explicit.is_file():
            raise InputError(f"policy file {explicit} does not exist")
        candidates = [(explicit, explicit.name == "pyproject.toml")]
    else:
        base = cwd or Path.cwd()
        candidates = [(base / "modelward.toml", False), (base / "pyproject.toml", True)]
    for path, is_pyproject in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise InputError(f"cannot read policy file {path}: {err}") from err
        tool = data.get("tool", {})
        if not isinstance(tool, Mapping):
            raise InputError(f"{path}: 'tool' must be a table")
        if is_pyproject:
            table = tool.get("modelward")
            if table is None:
                continue
        else:
            table = tool.get("modelward", data)
        if not isinstance(table, Mapping):
            raise InputError(f"{path}: the modelward policy must be a table")
        return policy_from_mapping(table, str(path))
    return Policy()
