"""``python -m modelward``: the same as the ``modelward`` command."""

from __future__ import annotations

from modelward.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
