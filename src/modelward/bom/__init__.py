"""ML-BOM: a CycloneDX 1.6 bill of materials for a model (``modelward bom``).

`build_bom` hashes the model's files, reads model-card facts from config files and tensor
headers (``modelcard``), and records the scan verdict and lineage; the document is
validated against the CycloneDX 1.6 JSON schema before it is returned.
"""

from __future__ import annotations

from modelward.bom.cyclonedx import build_bom

__all__ = ["build_bom"]
