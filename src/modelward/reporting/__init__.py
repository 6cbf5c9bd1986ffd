"""Report renderers: text for people, JSON for scripts, SARIF for code-scanning dashboards.

```python
from modelward import scan_path
from modelward.reporting import render

report = scan_path("model_dir/")
print(render(report, "sarif"))
```

``rulesdoc`` generates ``docs/rules.md`` (and ``modelward rules``) from the rules
themselves, so documentation and code cannot drift.
"""

from __future__ import annotations

from typing import Final

from modelward.errors import InputError
from modelward.reporting.base import Renderer, RenderOptions
from modelward.reporting.json import JsonRenderer
from modelward.reporting.sarif import SarifRenderer
from modelward.reporting.text import TextRenderer
from modelward.results import ScanReport

__all__ = ["FORMATS", "RENDERERS", "RenderOptions", "Renderer", "get_renderer", "render"]

RENDERERS: Final[dict[str, Renderer]] = {
    r.name: r for r in (TextRenderer(), JsonRenderer(), SarifRenderer())
}
FORMATS: Final[tuple[str, ...]] = tuple(RENDERERS)


def get_renderer(name: str) -> Renderer:
    """The renderer for a ``--format`` value.

    Raises:
        InputError: no renderer has that name.
    """
    try:
        return RENDERERS[name.lower()]
    except KeyError:
        raise InputError(f"unknown output format {name!r}",
                         hint=f"choose one of {', '.join(FORMATS)}") from None


def render(report: ScanReport, format: str = "text", options: RenderOptions | None = None) -> str:
    """Render `report` as ``text``, ``json`` or ``sarif``.

    Raises:
        InputError: unknown format.
    """
    return get_renderer(format).render(report, options)
