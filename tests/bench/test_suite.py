"""attnbench run: the matrix, records for every cell, skipping what is done, clear errors."""

from __future__ import annotations

import sys

import pytest
import yaml
from rich.console import Console

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


def test_records_made_with_other_settings_are_set_aside_and_rerun(toy, tmp_path) -> None:
    out = tmp_path / "out"
    first = run_suite(load_suite(str(_suite(tmp_path, toy, variants=["none", "reference"]))), out,
                      progress=False)
    edited = load_suite(str(_suite(tmp_path, toy, variants=["none", "reference"],
                                   variant_overrides={"reference": {"optim.lr": 0.01}})))
    console = Console(record=True, width=200)
    again = run_suite(edited, out, progress=False, console=console, report=False)
    by_key = {(r["variant"], r["seed"]): r for r in again}
    assert by_key["reference", 0]["config"]["optim"]["lr"] == 0.01  # retrained at the suite's new rate
    assert by_key["none", 0]["run_id"] == first[0]["run_id"]  # unchanged settings: kept
    assert sorted(p.name for p in (out / "records.stale").iterdir()) == ["toy__reference__s0.json",
                                                                        "toy__reference__s1.json"]
    said = console.export_text()
    assert "2 records were made with other settings" in said and "optim.lr" in said


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


def test_constructor_arguments_a_variant_rejects_fail_before_training(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    bad = {"sdpa": {"model.variant_kwargs": {"sdpa": {"backend": "fastest"}}}}
    path.write_text(yaml.safe_dump({"tasks": {"vqa": {"variants": ["sdpa"], "variant_overrides": bad}}}))
    with pytest.raises(ValueError, match=r"task 'vqa', variant 'sdpa': model.variant_kwargs for 'sdpa'"):
        load_suite(str(path))


def test_unknown_task_and_missing_suite(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"chess": {}}}))
    with pytest.raises(ValueError, match="unknown task"):
        load_suite(str(path))
    with pytest.raises(ValueError, match="not found"):
        load_suite("no-such-suite")


def test_parallel_jobs_record_the_same_matrix(toy, tmp_path) -> None:
    suite = load_suite(str(_suite(tmp_path, toy, variants=["none", "reference", "linformer"])))
    records = run_suite(suite, tmp_path / "out", progress=False, report=False, jobs=2)
    assert [(r["variant"], r["seed"], r["status"]) for r in records] == [
        ("none", 0, "ok"), ("none", 1, "ok"), ("reference", 0, "ok"), ("reference", 1, "ok"),
        ("linformer", 0, "unsupported"), ("linformer", 1, "unsupported")]
    assert {r["concurrent_runs"] for r in records} == {2}
    assert {r["mem_method"] for r in records if r["status"] == "ok"} == {"cpu_run_peak_rss"}


def test_a_failing_run_stops_the_suite_after_the_runs_under_way(toy, tmp_path) -> None:
    suite = load_suite(str(_suite(tmp_path, toy, variants=["none", "reference"],
                                  variant_overrides={"reference": {"optim.lr": -1.0}})))
    with pytest.raises(RuntimeError, match=r"(?s)toy__reference__s\d failed:.*Invalid learning rate"):
        run_suite(suite, tmp_path / "out", progress=False, report=False, jobs=2)
    recorded = sorted(p.name for p in (tmp_path / "out" / "records").glob("*.json"))
    assert "toy__none__s0.json" in recorded and not any("reference" in name for name in recorded)


def test_a_run_recorded_elsewhere_while_waiting_for_its_lock_is_skipped(toy, tmp_path, monkeypatch) -> None:
    import threading

    from bench import suite as suite_module

    suite = load_suite(str(_suite(tmp_path, toy, variants=["none"])))
    run, out = suite.runs[0], tmp_path / "out"
    trained = []
    monkeypatch.setattr(suite_module, "train_and_test", lambda *a, **k: trained.append(a) or {"status": "ok"})
    with suite_module._run_lock(out, run.key):  # another process is training this run
        waiter = threading.Thread(target=suite_module.execute_run, args=(suite, run, out, 1))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive()  # blocked on the lock
        (out / "records").mkdir(parents=True)
        (out / "records" / f"{run.key}.json").write_text("{}")  # ... which records it
    waiter.join(timeout=10)
    assert not waiter.is_alive() and trained == []


def test_jobs_must_be_positive(toy, tmp_path) -> None:
    path = _suite(tmp_path, toy, variants=["none"])
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "jobs": 0}))
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        load_suite(str(path))
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        run_suite(load_suite(str(_suite(tmp_path, toy, variants=["none"]))), tmp_path / "o", jobs=0)


def test_entries_name_their_task_and_runs_without_their_data_are_unsupported_records(toy, tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"preset": str(toy), "seeds": [0], "tasks": {
        "toy-a": {"task": "toy", "variants": ["reference"], "data_hint": "a folder of toy files"},
        "toy-b": {"task": "toy", "variants": ["reference"], "data": "package:attnbench_no_such_package"},
        "toy-c": {"task": "toy", "variants": ["reference"], "data": str(tmp_path / "missing")},
        "toy": {"variants": ["none"]},
    }}))
    given = tmp_path / "toyfiles"
    given.mkdir()
    suite = load_suite(str(path), {"toy-c": str(given)})  # --data toy-c=PATH replaces the suite's path
    assert sorted(run.key for run in suite.runs) == ["toy-a__reference__s0", "toy-b__reference__s0",
                                                     "toy-c__reference__s0", "toy__none__s0"]
    out = tmp_path / "out"
    records = {r["run_id"].split("/")[1]: r for r in run_suite(suite, out, progress=False, report=False)}
    assert records["toy-a__reference__s0"]["status"] == "unsupported"
    assert records["toy-a__reference__s0"]["reason"] == ("no data given: give --data toy-a=PATH "
                                                         "(a folder of toy files)")
    assert "attnbench_no_such_package package is not installed" in records["toy-b__reference__s0"]["reason"]
    assert records["toy-c__reference__s0"]["status"] == "ok" and records["toy__none__s0"]["status"] == "ok"
    assert records["toy-c__reference__s0"]["dataset"] == "toy-c"
    assert records["toy__none__s0"]["dataset"] is None
    assert (out / "records" / "toy-c__reference__s0.json").is_file()
    with pytest.raises(ValueError, match="--data for nope: the suite has no such entry; its entries: toy, "):
        load_suite(str(path), {"nope": "x"})


def test_the_real_suite_names_every_dataset_and_what_it_needs() -> None:
    suite = load_suite("real")
    by_entry = {run.entry: run for run in suite.runs}
    assert set(by_entry) == {"cora", "citeseer", "pubmed", "uci-sentences", "easy-vqa"}
    assert {by_entry[e].task for e in ("cora", "citeseer", "pubmed")} == {"graph"}
    assert all(by_entry[e].data_hint for e in ("cora", "citeseer", "pubmed", "uci-sentences"))
    assert by_entry["easy-vqa"].data == "package:easy_vqa"
    assert by_entry["pubmed"].overrides["model.out_heads"] == 8


@pytest.mark.parametrize(("key", "value", "match"), [
    ("measure_step", "yes", "measure_step must be true or false, got 'yes'"),
    ("memory_budget_gib", 0, "memory_budget_gib must be a positive number of GiB, got 0"),
    ("memory_budget_gib", True, "memory_budget_gib must be a positive number of GiB, got True"),
])
def test_bad_cost_settings_fail_before_training(toy, tmp_path, key, value, match) -> None:
    path = _suite(tmp_path, toy, variants=["none"])
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), key: value}))
    with pytest.raises(ValueError, match=match):
        load_suite(str(path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory budgets need Linux")
def test_a_suite_hands_its_step_measurement_and_memory_budget_to_runs(toy, tmp_path, monkeypatch) -> None:
    from bench import suite as suite_module

    path = _suite(tmp_path, toy, variants=["none"])
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "measure_step": True,
                                    "memory_budget_gib": 1.5}))
    suite = load_suite(str(path))
    asked = []
    monkeypatch.setattr(suite_module, "train_and_test", lambda *a, **k: asked.append(k) or {"status": "ok"})
    suite_module.execute_run(suite, suite.runs[0], tmp_path / "out", 1)
    assert asked[0]["measure_step"] is True and asked[0]["memory_budget"] == 3 * 2**30 // 2
