"""bench.pruning: the same sweep with and without its pruner, and the time until a value is reached."""

from __future__ import annotations

import datetime as dt
import json

import optuna
import pytest
import yaml

from bench.pruning import compare, main, time_to_reach
from bench.sweep import load_sweep

from .conftest import register_toy


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path):
    return register_toy(monkeypatch, tmp_path, max_epochs=4)


def _sweep(tmp_path, config, **extra):
    spec = {"task": "toy", "preset": str(config), "n_trials": 4, "seed": 0, "variants": ["reference"],
            "sampler": {"type": "random"}, "pruner": {"type": "median", "n_startup_trials": 1},
            "params": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}, **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _trial(value, start: float, end: float | None, state=optuna.trial.TrialState.COMPLETE):
    t0 = dt.datetime(2026, 1, 1)
    return optuna.trial.FrozenTrial(
        number=0, state=state, value=value, datetime_start=t0 + dt.timedelta(seconds=start),
        datetime_complete=None if end is None else t0 + dt.timedelta(seconds=end), params={},
        distributions={}, user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=0)


def test_time_to_reach_counts_from_the_first_start() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trials([_trial(0.5, 5, 10), _trial(0.9, 25, 30), _trial(0.95, 45, 50),
                      _trial(None, 0, 3, optuna.trial.TrialState.PRUNED)])
    assert time_to_reach(study, 0.9) == 30.0
    assert time_to_reach(study, 0.99) is None
    minimise = optuna.create_study(direction="minimize")
    minimise.add_trials([_trial(3.0, 2, 4), _trial(1.0, 4, 9)])
    assert time_to_reach(minimise, 2.0) == 7.0


def test_compare_runs_both_studies_and_writes_the_figures(toy, tmp_path) -> None:
    out = tmp_path / "cmp"
    result = compare(load_sweep(_sweep(tmp_path, toy)), out)
    assert json.loads((out / "pruning.json").read_text()) == result
    for name in ("unpruned", "pruned"):
        assert result[name]["trials_pruned"] + result[name]["trials_complete"] == 4
    assert result["unpruned"]["trials_pruned"] == 0
    assert result["unpruned"]["time_to_unpruned_best_s"] is not None
    assert result["same_best"] == (result["pruned"]["best_value"] == result["unpruned"]["best_value"])
    with pytest.raises(ValueError, match="already holds results"):
        compare(load_sweep(_sweep(tmp_path, toy)), out)


def test_a_sweep_without_pruner_is_refused(toy, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(_sweep(tmp_path, toy, pruner="none")), "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "has no pruner" in capsys.readouterr().err
