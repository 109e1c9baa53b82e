"""The command line and the README's copy of the capability matrix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import attention
from bench.capabilities import capability_rows, markdown_table
from bench.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_variants_prints_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variants", "--markdown"]) == 0
    printed = capsys.readouterr().out
    for name in attention.VARIANTS:
        assert f"| {name} |" in printed


def test_readme_table_is_in_sync_with_capabilities() -> None:
    text = README.read_text()
    found = re.search(r"<!-- variants:start -->\n(.*?)\n<!-- variants:end -->", text, re.S)
    assert found, "README lacks the variants table markers"
    assert found.group(1).strip() == markdown_table(capability_rows()), (
        "README variant table is stale: refresh it with `attnbench variants --markdown`"
    )


def test_unknown_command_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as err:
        main(["nonsense"])
    assert err.value.code == 2
