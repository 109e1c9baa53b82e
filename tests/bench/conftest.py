"""The toy task registered for the runner, suite and sweep tests, with a tiny config file."""

from __future__ import annotations

import pytest
import yaml

import tasks


def register_toy(monkeypatch: pytest.MonkeyPatch, tmp_path, max_epochs: int):
    monkeypatch.setitem(tasks.TASK_MODULES, "toy", "tests.bench._toy_task")
    config = {"data": {"n": 120, "length": 5, "batch_size": 32}, "optim": {"lr": 0.05},
              "trainer": {"max_epochs": max_epochs}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
