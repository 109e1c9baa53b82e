"""attnbench run: the matrix, records for every cell, skipping what is done, clear errors."""

from __future__ import annotations

import pytest
import yaml

from bench.suite import load_suite, run_suite

from .conftest import register_toy


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path):
    return register_toy(monkeypatch, tmp_path, max_epochs=1)


def _suite(tmp_path, config, **toy_entry):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"preset": str(config), "seeds": [0, 1], "tasks": {"toy": toy_entry}}))
    return path


def test_matrix_records_every_cell_and_skips_done_runs(toy, tmp_path) -> None:
    suite = load_suite(str(_suite(tmp_path, toy, variants=["none", "reference", "linformer"])))
    assert len(suite.runs) == 6
    out = tmp_path / "out"
    records = run_suite(suite, out, progress=False)
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "ok", "unsupported", "unsupported"]
    assert "linformer" in records[-1]["reason"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()}
    again = run_suite(suite, out, progress=False)  # everything recorded: nothing recomputed
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == stamps
    assert [r["run_id"] for r in again] == [r["run_id"] for r in records]


def test_all_expands_to_every_variant_with_overrides(toy, tmp_path) -> None:
    suite = load_suite(str(_suite(tmp_path, toy, variants="all", overrides={"trainer.max_epochs": 2},
                                  variant_overrides={"reference": {"optim.lr": 0.01}})))
    by_variant = {r.variant: r for r in suite.runs}
    assert {"none", "reference", "sdpa", "gat"} <= set(by_variant)
    assert by_variant["reference"].overrides == {"trainer.max_epochs": 2, "optim.lr": 0.01}


@pytest.mark.parametrize(("entry", "match"), [
    ({"variants": ["nope"]}, "unknown variants"),
    ({"variants": ["none"], "overrides": {"optim.learning_rate": 1}}, "unknown key 'learning_rate'"),
    ({"variants": ["none"], "colour": 1}, "unknown keys"),
    ({"variants": ["none"], "variant_overrides": {"sdpa": {}}}, "does not run"),
])
def test_bad_suites_fail_before_training(toy, tmp_path, entry, match) -> None:
    with pytest.raises(ValueError, match=match):
        load_suite(str(_suite(tmp_path, toy, **entry)))


def test_unknown_task_and_missing_suite(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"chess": {}}}))
    with pytest.raises(ValueError, match="unknown task"):
        load_suite(str(path))
    with pytest.raises(ValueError, match="not found"):
        load_suite("no-such-suite")
