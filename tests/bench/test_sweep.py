"""attnbench sweep: a seeded Optuna study on a tiny task, records per trial, exported best suite."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

import tasks
from bench.suite import load_suite
from bench.sweep import SweepError, load_sweep, make_storage, requeue_dead_trials, run_sweep

from .conftest import register_toy


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path):
    return register_toy(monkeypatch, tmp_path, max_epochs=3)


def _sweep_file(tmp_path, config, **extra):
    spec = {"task": "toy", "preset": str(config), "n_trials": 4, "seed": 1,
            "variants": ["reference", "uniform"],
            "params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}, **extra}
    spec = {k: v for k, v in spec.items() if v is not None}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_runs_records_trials_and_exports_a_runnable_suite(toy, tmp_path) -> None:
    sweep = load_sweep(_sweep_file(tmp_path, toy, overrides={"trainer.max_epochs": 2}, export_seeds=[5, 6]))
    out = tmp_path / "out"
    best = run_sweep(sweep, out)
    study = optuna.load_study(study_name=sweep.study, storage=make_storage(None, out))
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 4
    records = [json.loads(p.read_text()) for p in sorted((out / "trials").iterdir())]
    assert len(records) == 4 and all(r["status"] in ("ok", "pruned") for r in records)
    assert all(r["config"]["trainer"]["max_epochs"] == 2 for r in records if r["status"] == "ok")
    suite = load_suite(best["suite"])  # the export is a valid suite for `attnbench run`
    assert suite.runs[0].variant == best["variant"] and "optim.lr" in suite.runs[0].overrides
    assert suite.runs[0].overrides["trainer.max_epochs"] == 2 and "trainer.max_epochs" not in best["params"]
    assert [run.seed for run in suite.runs] == [5, 6]  # the sweep's export_seeds
    run_sweep(sweep, out)  # resuming a finished study adds no trial
    assert len(optuna.load_study(study_name=sweep.study, storage=make_storage(None, out)).trials) == 4


def test_a_learning_rate_grid_gives_every_variant_its_own_best_rate(toy, tmp_path) -> None:
    lrs = [0.003, 0.1]
    sweep = load_sweep(_sweep_file(tmp_path, toy, n_trials=None, sampler={"type": "grid"}, pruner="none",
                                   variants="all", params={"optim.lr": {"type": "categorical",
                                                                          "choices": lrs}}))
    assert set(sweep.variants) >= {"reference", "uniform", "none"}
    assert sweep.n_trials == 2 * len(sweep.variants)
    out = tmp_path / "grid"
    best = run_sweep(sweep, out, workers=2)  # parallel workers must not run a cell twice
    trials = [json.loads(p.read_text()) for p in (out / "trials").iterdir()]
    ran = sorted((t["variant"], t["params"]["optim.lr"]) for t in trials)
    assert ran == sorted((v, lr) for v in sweep.variants for lr in lrs)  # each cell of the grid once
    document = yaml.safe_load(Path(best["per_variant"]).read_text())
    for variant in sweep.variants:
        mine = [t for t in trials if t["variant"] == variant]
        top = max(mine, key=lambda t: t["best_val"])
        assert document["best"][variant]["value"] == pytest.approx(top["best_val"])
        assert document["preset_optim"]["variant_lr"][variant] == top["params"]["optim.lr"]
    provenance = document["preset_optim"]["lr_provenance"]
    assert provenance["study"] == sweep.study and provenance["trials"] == sweep.n_trials
    assert set(provenance) >= {"date", "commit", "metric", "command"}
    suite = load_suite(_write(tmp_path / "per_variant_suite.yaml", document["suite"]))
    assert {(r.variant, r.overrides["optim.lr"]) for r in suite.runs if r.seed == 0} == \
        {(v, lr) for v, lr in document["preset_optim"]["variant_lr"].items()}


def test_a_trial_with_several_training_seeds_is_worth_their_mean(toy, tmp_path) -> None:
    sweep = load_sweep(_sweep_file(tmp_path, toy, n_trials=None, sampler={"type": "grid"}, pruner="none",
                                   variants=["reference"], train_seeds=[3, 4],
                                   params={"optim.lr": {"type": "categorical", "choices": [0.003, 0.1]}}))
    out = tmp_path / "seeds"
    best = run_sweep(sweep, out)
    study = optuna.load_study(study_name=sweep.study, storage=make_storage(None, out))
    records = [json.loads(p.read_text()) for p in sorted((out / "trials").iterdir())]
    assert sorted(p.name for p in (out / "trials").iterdir()) == [
        f"{sweep.study}__trial{n}_s{s}.json" for n in (0, 1) for s in (3, 4)]
    for trial in study.trials:
        mine = [r for r in records if r["trial"] == trial.number]
        assert sorted(r["seed"] for r in mine) == [3, 4]
        mean = sum(r["best_val"] for r in mine) / 2
        assert trial.value == pytest.approx(mean) and all(r["objective"] == pytest.approx(mean) for r in mine)
        assert trial.user_attrs["seed_values"] == {str(r["seed"]): r["best_val"] for r in mine}
    document = yaml.safe_load(Path(best["per_variant"]).read_text())
    assert document["provenance"]["train_seeds"] == [3, 4]


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_dead_workers_trials_are_requeued(toy, tmp_path) -> None:
    storage = make_storage(None, tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("worker", f"{__import__('socket').gethostname()}:999999999")
    assert requeue_dead_trials(study) == 1
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]


@pytest.mark.parametrize(("extra", "match"), [
    ({"task": "chess"}, "unknown task"),
    ({"variants": ["gat"]}, "not applicable"),
    ({"params": {"optim.learning_rate": {"type": "float", "low": 0.1, "high": 1}}}, "unknown key"),
    ({"params": {"optim.lr": {"type": "float", "low": 1, "high": 0.1}}}, "low < high"),
    ({"variants": ["reference"], "params": {}}, "search space is empty"),
    ({"overrides": {"optim.lr": 0.1}}, r"\['optim.lr'\] are both fixed"),
    ({"overrides": {"optim.momentum": 0.9}}, "unknown key 'momentum'"),
    ({"pruner": {"type": "asha"}}, "unknown pruner type 'asha'; valid: median, percentile"),
    ({"pruner": {"type": "percentile", "percentile": 250.0}}, "pruner .* is not valid"),
    ({"pruner": {"n_warmup": 3}}, "pruner .* is not valid: .*n_warmup"),
    ({"pruner": 3}, "pruner must be a mapping"),
    ({"sampler": {"type": "simplex"}}, "unknown sampler type .simplex.; valid: tpe, random, grid"),
    ({"sampler": {"type": "tpe", "n_startup": 2}}, "sampler .* is not valid"),
    ({"export_seeds": []}, "export_seeds must be a non-empty list of integers"),
    ({"train_seeds": [0, 0]}, "train_seeds must be a non-empty list of distinct integers"),
    ({"train_seeds": [0, 1]}, r"train_seeds \[0, 1\] trains each trial several times.*pruner: none"),
])
def test_bad_sweeps_fail_before_any_trial(toy, tmp_path, extra, match) -> None:
    with pytest.raises(ValueError, match=match):
        load_sweep(_sweep_file(tmp_path, toy, **extra))


def test_pruner_and_sampler_types_are_built_as_written(toy, tmp_path) -> None:
    default = load_sweep(_sweep_file(tmp_path, toy))
    assert isinstance(default.make_pruner(), optuna.pruners.MedianPruner)
    assert isinstance(default.make_sampler(), optuna.samplers.TPESampler)
    sweep = load_sweep(_sweep_file(tmp_path, toy, sampler={"type": "random"},
                                   pruner={"type": "successive_halving", "min_resource": 2,
                                           "reduction_factor": 3}))
    pruner = sweep.make_pruner()
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner) and pruner._min_resource == 2
    assert isinstance(sweep.make_sampler(), optuna.samplers.RandomSampler)
    assert load_sweep(_sweep_file(tmp_path, toy, pruner="none")).pruner is None


def test_variants_are_judged_with_the_sweeps_preset_and_overrides(tmp_path) -> None:
    spec = {"task": "translation", "variants": ["none", "additive"],
            "params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert load_sweep(path).variants == ["none", "additive"]  # the quick preset is the RNN family
    path.write_text(yaml.safe_dump({**spec, "overrides": {"model.family": "transformer"}}))
    with pytest.raises(ValueError, match=r"variants \['none'\] are unknown or not applicable .* overrides"):
        load_sweep(path)


def test_a_study_in_which_no_trial_completes_stops_and_says_why(toy, tmp_path) -> None:
    lr = {"optim.lr": {"type": "float", "low": -2.0, "high": -1.0}}  # every trial fails to build Adam
    sweep = load_sweep(_sweep_file(tmp_path, toy, params=lr))
    with pytest.raises(SweepError, match=r"no trial completed \(4 fail\).*Invalid learning rate"):
        run_sweep(sweep, tmp_path / "out")  # stops after n_trials failures instead of looping
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "trials").iterdir()]
    assert len(records) == 4 and {r["status"] for r in records} == {"failed"}


def test_a_worker_that_dies_is_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(tasks.TASK_MODULES, "crash", "tests.bench._crash_task")
    config = tmp_path / "crash.yaml"
    config.write_text(yaml.safe_dump({"data": {"n": 60, "length": 5, "batch_size": 32}, "optim": {"lr": 0.05},
                                      "trainer": {"max_epochs": 1}}))
    spec = yaml.safe_load(_sweep_file(tmp_path, config).read_text())
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({**spec, "task": "crash"}))
    sweep = load_sweep(tmp_path / "sweep.yaml")
    with pytest.raises(SweepError, match="worker 0 exited with code 3; worker 1 exited with code 3"):
        run_sweep(sweep, tmp_path / "out", workers=2)


def test_provenance_names_the_commits_the_trials_ran(tmp_path) -> None:
    import json
    import os

    from bench.sweep import _trial_commits

    assert _trial_commits(tmp_path) is None
    (tmp_path / "trials").mkdir()
    for i, (commit, status) in enumerate([("a" * 40, "ok"), ("b" * 40, "failed"), ("c" * 40, "ok"),
                                          ("a" * 40, "ok")]):
        path = tmp_path / "trials" / f"{i}.json"
        path.write_text(json.dumps({"env_git_commit": commit, "status": status}))
        os.utime(path, (i, i))
    assert _trial_commits(tmp_path) == f"{'a' * 12}, {'c' * 12}"  # finished trials, in order of first use


def test_a_process_records_the_commit_of_the_code_it_imported() -> None:
    from reports.records import _git_commit, environment

    assert _git_commit.cache_info().currsize == 1  # read when bench.train was imported
    assert environment()["env_git_commit"] == _git_commit()


def test_all_variants_leave_out_those_a_suite_records_as_equivalent_to_reference() -> None:
    import configs

    sweep = load_sweep(configs.path("sweeps", "captioning-lr.yaml"))
    assert "reference" in sweep.variants and "sdpa" in sweep.variants and "none" in sweep.variants
    assert "sparse" not in sweep.variants and "local" not in sweep.variants  # they see all 9 regions


def test_a_best_rate_at_the_edge_of_the_grid_is_named() -> None:
    from bench.sweep import grid_edges

    params = {"optim.lr": {"type": "categorical", "choices": [3e-3, 3e-4, 1e-3]},
              "model.cell": {"type": "categorical", "choices": ["gru", "lstm", "rnn"]},
              "model.hidden": {"type": "categorical", "choices": [8, 16]}}  # two choices: both are edges
    settings = {"reference": {"optim.lr": 3e-4, "model.cell": "gru", "model.hidden": 8},
                "memory": {"optim.lr": 1e-3, "model.cell": "rnn", "model.hidden": 16},
                "luong": {"optim.lr": 3e-3, "model.hidden": 8}}
    assert grid_edges(params, settings) == {
        "reference": ["optim.lr=0.0003 is the lowest of [0.0003, 0.001, 0.003]"],
        "luong": ["optim.lr=0.003 is the highest of [0.0003, 0.001, 0.003]"]}


def test_surplus_trials_are_kept_off_the_console_and_real_failures_are_not() -> None:
    import logging
    import sys

    from bench.sweep import SurplusTrial, SurplusTrialFilter

    def record(message: str, error: Exception | None = None) -> logging.LogRecord:
        exc_info = None
        if error is not None:
            try:
                raise error
            except type(error):
                exc_info = sys.exc_info()
        return logging.LogRecord("optuna.study._optimize", logging.WARNING, __file__, 1, message, None,
                                 exc_info)

    keep = SurplusTrialFilter()
    assert not keep.filter(record("Trial 7 failed with parameters: {}", SurplusTrial(7, 12)))
    assert not keep.filter(record("Trial 7 failed with value None."))
    assert keep.filter(record("Trial 8 failed with parameters: {}", ValueError("lr must be > 0")))
    assert keep.filter(record("Trial 8 failed with value None."))  # a real failure is still shown
    assert keep.filter(record("Trial 70 failed with value None."))  # not trial 7's line
