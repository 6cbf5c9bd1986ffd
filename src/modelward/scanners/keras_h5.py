"""HDF5 files, above all Keras' legacy ``.h5`` models.

A Keras HDF5 model keeps its architecture as JSON in root attributes (``model_config``,
``training_config``) next to the weights. Keras rebuilds whatever the JSON names and, for
HDF5, ignores ``safe_mode`` entirely (CVE-2025-9905): a ``Lambda`` layer's marshalled
bytecode runs on load. This scanner reads the root attributes with modelward's own bounded
HDF5 reader (`modelward._internal.hdf5`, never h5py) and analyses the configs with the
shared Keras config walker (dense attribute storage included). When the reader meets
storage it does not follow (filtered heaps, shared messages, malformed structures) it
falls back to locating
``{"class_name": ...`` JSON in the raw bytes, and says so; when neither works it fails
closed.

Rules:
    MW-KERAS-001 lambda-bytecode (CRITICAL): Lambda layer with marshalled Python bytecode.
    MW-KERAS-002 dangerous-reference (CRITICAL): config names os, builtins or a Keras gadget.
    MW-KERAS-003 custom-object (MEDIUM): class or function outside Keras' own API.
    MW-KERAS-004 external-resource (HIGH): layer reads a file or URL (TFSMLayer, vocabulary path).
    MW-KERAS-005 malformed-config (MEDIUM): model config is not valid, bounded JSON.
    MW-KERAS-006 missing-config (MEDIUM): could not locate model_config.
    MW-KERAS-007 hdf5-unparsed (MEDIUM): root attributes not fully read; byte search used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.hdf5 import SIGNATURE, RootAttributes, read_root_attributes
from modelward.errors import FormatError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners._keras_config import (
    CONFIG_RULES,
    MISSING_CONFIG,
    analyze_config,
    decode_config,
)
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["HDF5_UNPARSED", "SCANNER", "KerasH5Scanner"]

HDF5_UNPARSED: Final = Rule(
    RuleId("MW-KERAS-007"), "hdf5-unparsed", Severity.MEDIUM,
    "The HDF5 root attributes could not be read structurally (unsupported or malformed "
    "storage); the model config was looked for by byte search instead, which can miss a "
    "config that HDF5 libraries would still find.",
    "Re-save the model with default HDF5 settings from a trusted environment, or inspect it "
    "by other means before loading.",
)

_CONFIG_ATTRS: Final = ("model_config", "training_config")
_JSON_START: Final = b'{"class_name"'
_MAX_CANDIDATES: Final = 16


class KerasH5Scanner(Scanner):
    """HDF5 files: Keras model configs in root attributes."""

    name: ClassVar[str] = "hdf5"
    suffixes: ClassVar[frozenset[str]] = frozenset({".h5", ".hdf5", ".he5"})
    rules: ClassVar[tuple[Rule, ...]] = (*CONFIG_RULES, HDF5_UNPARSED)
    priority: ClassVar[int] = 10

    @override
    def claims(self, artifact: Artifact) -> bool:
        head = artifact.head
        pos = 0
        while pos + 8 <= len(head):
            if head[pos : pos + 8] == SIGNATURE:
                return True
            pos = 512 if pos == 0 else pos * 2
        return False

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        problems: list[str]
        root: RootAttributes | None
        try:
            root = read_root_attributes(artifact.view(), max_value=artifact.limits.max_header_bytes)
            problems = list(root.problems)
        except FormatError as err:
            root = None
            problems = [f"{err.message}" + (f" at offset {err.offset}" if err.offset else "")]
        found = False
        if root is not None:
            for attr_name in _CONFIG_ATTRS:
                attr = root.get(attr_name)
                if attr is None:
                    continue
                found = found or attr_name == "model_config"
                if not attr.is_string or len(attr.values) != 1:
                    yield artifact.finding(MISSING_CONFIG,
                                           f"{attr_name} is not a single string attribute",
                                           offset=attr.offset)
                    continue
                config, bad = decode_config(artifact, attr.values[0], attr_name, attr.offset)
                if bad is not None:
                    yield bad
                    continue
                yield from analyze_config(artifact, config, what=attr_name, legacy_h5=True,
                                          offset=attr.offset)
            if found:
                artifact.format_detail = "keras-hdf5"
            elif root.get("keras_version") or root.get("layer_names"):
                artifact.format_detail = "keras-hdf5-weights"
        if not problems:
            return
        reason = "; ".join(problems)[:300]
        located = list(self._byte_search(artifact))
        if located:
            yield artifact.finding(HDF5_UNPARSED,
                                   f"HDF5 root attributes not fully read ({reason}); "
                                   f"{len(located)} JSON config(s) located by byte search",
                                   evidence=reason)
            for offset, config in located:
                yield from analyze_config(artifact, config, what="model_config", legacy_h5=True,
                                          offset=offset)
        elif not found:
            yield artifact.finding(MISSING_CONFIG,
                                   f"could not locate model_config: {reason}", evidence=reason)

    def _byte_search(self, artifact: Artifact) -> Iterator[tuple[int, object]]:
        """JSON objects starting with ``{"class_name"`` in the raw bytes (bounded)."""
        data = artifact.view()
        raw = bytes(data) if len(data) <= artifact.limits.max_member_bytes else bytes(
            data[: artifact.limits.max_member_bytes])
        decoder = json.JSONDecoder()
        pos = raw.find(_JSON_START)
        tries = 0
        while pos >= 0 and tries < _MAX_CANDIDATES:
            tries += 1
            artifact.check_deadline()
            end = min(len(raw), pos + min(artifact.limits.max_header_bytes, 64 << 20))
            text = raw[pos:end].decode("utf-8", errors="replace")
            try:
                config, used = decoder.raw_decode(text)
            except (ValueError, RecursionError):
                pos = raw.find(_JSON_START, pos + 1)
                continue
            yield pos, config
            pos = raw.find(_JSON_START, pos + max(1, len(text[:used].encode("utf-8"))))


SCANNER: Final = KerasH5Scanner()
