"""Every command answers bad input with one line naming the argument, exit code 2, no traceback;
the long-running commands share one set of flags (--out, --no-progress, --threads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SWEEP = str(ROOT / "configs" / "sweeps" / "graph.yaml")


def _one_line_error(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse: its usage line, then one error line
        code = exit.code
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("attnbench")]
    assert code == 2, captured
    assert len(errors) == 1 and "Traceback" not in captured.err + captured.out, captured
    return errors[0]


@pytest.fixture
def places(tmp_path):
    folder, file = tmp_path / "folder", tmp_path / "file.txt"
    folder.mkdir()
    file.write_text("x")
    return str(folder), str(file)


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "graph", "--variant", "gat", "--set", "data.image_pattern={image_id}.png"],
     "--set data.image_pattern={image_id}.png: the value is not valid YAML"),
    (["train", "graph", "--variant", "gat", "--set", "trainer.max_epochs"], "--set expects KEY=VALUE"),
    (["train", "graph", "--variant", "gat", "--out", "{folder}"], "--out {folder}: is a folder"),
    (["train", "graph", "--variant", "gat", "--run-dir", "{file}"], "--run-dir {file}: is a file"),
    (["train", "graph", "--variant", "gat", "--threads", "0"], "argument --threads: expected a positive"),
    (["micro", "--out", "{folder}"], "--out {folder}: is a folder; expected a file path"),
    (["micro", "--out", "{file}/micro.csv"], "{file} is a file, so nothing can be written beneath it"),
    (["micro", "--grid", "no-such-grid"], "grid 'no-such-grid' not found"),
    (["run", "--out", "{file}"], "--out {file}: is a file; expected a folder"),
    (["run", "--jobs", "0"], "argument --jobs: expected a positive integer, got '0'"),
    (["run", "no-such-suite"], "suite 'no-such-suite' not found"),
    (["run", "real", "--data", "cora"], "--data expects ENTRY=PATH (e.g. cora=~/planetoid), got 'cora'"),
    (["run", "real", "--data", "corra=/x"], "--data for corra: the suite has no such entry; its entries"),
    (["sweep", "no-such-sweep.yaml"], "sweep file not found"),
    (["sweep", SWEEP, "--workers", "0"], "argument --workers: expected a positive integer"),
    (["sweep", SWEEP, "--out", "{file}"], "--out {file}: is a file"),
    (["sweep", SWEEP, "--storage", "nonsense"], "--storage 'nonsense': not a database URL"),
    (["sweep", SWEEP, "--storage", "postgresql://me:secret@127.0.0.1:1/db"],
     "--storage postgresql://me:***@127.0.0.1:1/db: cannot connect to the database"),
    (["report", "x.json", "-o", "{file}"], "--out {file}: is a file; expected a folder"),
    (["baseline", "x.csv", "-o", "{folder}"], "--out {folder}: is a folder"),
    (["check", "x.csv", "--baseline", "b.json", "--summary", "{folder}"], "--summary {folder}: is a folder"),
])
def test_bad_arguments_are_one_line(argv, expected, places, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    def fill(text: str) -> str:
        return text.replace("{folder}", places[0]).replace("{file}", places[1])

    line = _one_line_error([fill(a) for a in argv], capsys)
    assert fill(expected) in line
    assert "secret" not in line


def test_a_missing_database_driver_names_the_extra(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as after a plain `pip install -e .`
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    line = _one_line_error(["sweep", SWEEP, "--storage", "postgresql://me@127.0.0.1/db"], capsys)
    assert "no database driver" in line and "pip install -e '.[postgres]'" in line


@pytest.mark.parametrize("command", [["train", "graph", "--variant", "gat"], ["run"], ["sweep", SWEEP],
                                     ["micro"]])
def test_long_running_commands_share_their_flags(command) -> None:
    args = build_parser().parse_args([*command, "--no-progress", "--threads", "2", "--out", "x"])
    assert args.no_progress and args.threads == 2 and args.out == "x"


def test_run_and_sweep_pass_threads_on(monkeypatch, tmp_path) -> None:
    from bench import suite, sweep

    seen = {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(suite, "run_suite", lambda s, out, **kw: seen.update(suite=s.threads, **kw))
    monkeypatch.setattr(sweep, "run_sweep", lambda s, out, **kw: seen.update(sweep=kw["threads"]) or {
        "trial": 0, "value": 1.0, "variant": "gat", "params": {}, "suite": "x", "at_grid_edge": {}})
    assert main(["run", "--threads", "3", "--no-progress", "--out", "o"]) == 0
    assert seen["suite"] == 3 and seen["progress"] is False
    assert main(["sweep", SWEEP, "--threads", "2", "--no-progress", "--out", "o"]) == 0
    assert seen["sweep"] == 2


def test_train_keeps_lightnings_tips_and_device_lines_quiet(tmp_path) -> None:
    command = [sys.executable, "-m", "bench.cli", "train", "graph", "--variant", "gat", "--no-progress",
               "--set", "trainer.max_epochs=1", "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "test/acc" in shown
    assert "GPU available" not in shown and "litlogger" not in shown and "Tip" not in shown
