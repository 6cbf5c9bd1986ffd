"""modelward registry: a model registry where only scanned, signed models are published.

- ``service``: push (upload, verify, commit), background scan/sign/publish, reads, auth.
- ``pipeline``: the scan job (scan, sign, attest, ML-BOM, lineage).
- ``database``: SQLite or PostgreSQL by URL; ``blobs``: local folder or S3, by digest.
- ``api`` (``/api/v1``, OpenAPI in ``openapi``), ``web`` (HTML pages), ``app`` (ASGI).
- ``client``: what ``modelward push``/``pull``/``registry ls`` speak.

Needs the ``registry`` extra (starlette, uvicorn; psycopg for PostgreSQL, boto3 for S3).
"""

from __future__ import annotations

__all__: list[str] = []
