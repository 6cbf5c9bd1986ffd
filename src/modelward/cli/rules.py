"""``modelward rules``: every rule id modelward can report, as text, Markdown or JSON.

``modelward rules --format markdown > docs/rules.md`` regenerates the rules documentation.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelward.cli._common import add_verbose, write_output
from modelward.reporting.rulesdoc import collect_rules, rules_json, rules_markdown, rules_text

__all__ = ["add_parser", "run"]

_FORMATS = {"text": rules_text, "markdown": rules_markdown, "json": rules_json}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rules`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rules", help="list every rule id (docs/rules.md is its Markdown output)",
        description="List every rule modelward can report.",
    )
    parser.add_argument("-f", "--format", choices=tuple(_FORMATS), default="text",
                        help="output format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the rules; always 0 unless the output cannot be written."""
    write_output(_FORMATS[args.format](collect_rules()), args.output)
    return 0
