"""Every shipped config parses and validates, and every task preset builds its model and trains a step.

The task presets keep their models as shipped; only the embedded data is shrunk (sizes and batch
sizes below), so a preset whose network cannot be built, or cannot take one optimiser step on its
own data, fails here rather than hours into a suite.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import yaml

import configs
from bench.micro.grid import load_grid
from bench.suite import load_suite
from bench.sweep import load_sweep
from tasks import TASK_MODULES, get_task
from tasks._base import apply_overrides


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


TINY_DATA = {  # data sizes only: the model sections stay as shipped
    "translation": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8},
    "sentiment": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8},
    "captioning": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8},
    "vqa": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8},
    "graph": {"num_nodes": 60, "num_val": 10, "num_test": 10, "train_per_class": 2},
    "listops": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8,
                "min_length": 10, "max_length": 60},  # the full preset's 2,000 tokens: minutes a step
    "recall": {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 8, "eval_batch_size": 8},
}
VARIANT = {"translation": "reference", "sentiment": "reference", "captioning": "reference",
           "vqa": "reference", "graph": "gat", "listops": "reference", "recall": "reference"}


@pytest.mark.parametrize("preset", ["quick", "full"])
@pytest.mark.parametrize("task_name", sorted(TASK_MODULES))
def test_every_preset_builds_and_trains_one_step(task_name, preset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))
    task = get_task(task_name)
    config = apply_overrides(task.config(preset), {f"data.{k}": v for k, v in TINY_DATA[task_name].items()})
    assert task.variant_reasons(VARIANT[task_name], config) == []
    datamodule, module = task.build(config, VARIANT[task_name], None, seed=0)
    before = [p.detach().clone() for p in module.parameters()]
    trainer = L.Trainer(fast_dev_run=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)  # one training step and one validation step
    assert trainer.global_step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_the_robustness_seeds_run_the_quick_suite_itself() -> None:
    quick, seeds = (yaml.safe_load(configs.path("suites", f"{name}.yaml").read_text())
                    for name in ("quick", "quick-seeds"))
    def rest(suite: dict) -> dict:
        return {k: v for k, v in suite.items() if k != "seeds"}

    assert rest(seeds) == rest(quick)
    assert set(seeds["seeds"]).isdisjoint(quick["seeds"])
