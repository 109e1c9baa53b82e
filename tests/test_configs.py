"""Every shipped config parses and validates (the runs themselves are smoke-tested per task)."""

from __future__ import annotations

import pytest

import configs
from bench.grid import load_grid
from bench.suite import load_suite
from bench.sweep import load_sweep
from tasks import TASK_MODULES, get_task


@pytest.mark.parametrize("path", sorted(configs.path("sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_sweeps(path) -> None:
    assert load_sweep(path).n_trials > 0


@pytest.mark.parametrize("path", sorted(configs.path("suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_suites(path) -> None:
    suite = load_suite(str(path))
    assert suite.runs and {run.task for run in suite.runs} <= set(TASK_MODULES)


@pytest.mark.parametrize("path", sorted(configs.path("bench").glob("*.yaml")), ids=lambda p: p.stem)
def test_bench_grids(path) -> None:
    assert load_grid(str(path)).cases


@pytest.mark.parametrize("task", sorted(TASK_MODULES))
def test_every_task_ships_quick_and_full(task) -> None:
    for preset in ("quick", "full"):
        config = get_task(task).config(preset)
        assert config["trainer"].get("max_epochs"), f"{task} {preset} sets no trainer.max_epochs"
