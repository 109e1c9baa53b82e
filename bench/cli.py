"""The ``attnbench`` command line. Subcommands grow with the project; each lives in its module."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("attnbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _cmd_variants(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .capabilities import COLUMNS, capability_rows, markdown_table

    rows = capability_rows()
    if args.markdown:
        print(markdown_table(rows))
        return 0
    table = Table(title=f"attnbench attention variants ({len(rows)})", header_style="bold")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in COLUMNS))
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnbench",
                                     description="Benchmark suite for attention mechanisms.")
    parser.add_argument("--version", action="version", version=f"attnbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    variants = sub.add_parser("variants", help="print the variant x capability matrix")
    variants.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    variants.set_defaults(func=_cmd_variants)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
