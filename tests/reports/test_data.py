"""Results as data (reports/data.py) and `attnbench export`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from reports.data import load

from ._records import write_micro, write_suite


def _inputs(tmp_path: Path) -> list[str]:
    suite = write_suite(tmp_path / "suite", {"none": [0.6, 0.62], "gat": [0.8, 0.82]})
    return [str(suite), str(write_micro(tmp_path / "micro.csv", runs=1))]


def test_load_gives_tidy_tables_with_the_headline_and_the_environment(tmp_path: Path) -> None:
    results = load(_inputs(tmp_path))
    runs = results.runs
    assert len(runs) == 4 and set(runs["variant"]) == {"none", "gat"} and not results.problems
    assert set(runs["headline"]) == {"test/acc"}
    assert sorted(runs.loc[runs["variant"] == "gat", "headline_value"]) == [0.8, 0.82]
    assert {"env_torch", "env_git_commit", "cfg", "lr", "seed_sd", "source", "metric:test/acc"} <= set(runs)
    assert not {"items", "seed_noise", "_file"} & set(runs)  # report internals are not data
    assert len(results.micro) == 15 and "source" in results.micro and results.trials.empty


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_each_table_and_it_reads_back(tmp_path: Path, fmt: str, capsys) -> None:
    out = tmp_path / "out"
    assert main(["export", *_inputs(tmp_path), "-o", str(out), "--format", fmt]) == 0
    assert "runs 4 rows, trials 0 rows, micro 15 rows" in capsys.readouterr().out
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    runs = read(out / f"runs.{fmt}")
    assert len(runs) == 4 and sorted(runs["headline_value"]) == [0.6, 0.62, 0.8, 0.82]
    assert len(read(out / f"micro.{fmt}")) == 15 and not (out / f"trials.{fmt}").exists()


def test_export_refuses_an_unknown_format_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["export", *_inputs(tmp_path), "-o", str(tmp_path / "o"), "--format", "xlsx"]) == 2
    expected = "attnbench export: --format 'xlsx': expected one of csv, parquet"
    assert capsys.readouterr().err.strip() == expected
