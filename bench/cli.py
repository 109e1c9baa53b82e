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
    console = Console()
    shown = COLUMNS[:-1]  # the oracle limits are sentences: listed under the table
    table = Table(title=f"attnbench attention variants ({len(rows)})", header_style="bold")
    for column in shown:
        table.add_column(column, no_wrap=column == "variant")
    for row in rows:
        table.add_row(*(row[c] for c in shown))
    console.print(table)
    console.print("[bold]oracle limit[/] (where the variant computes softmax(QK^T*scale + mask) V):")
    for row in rows:
        console.print(f"  {row['variant']:<10} {row['oracle limit']}", highlight=False)
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
