"""attnbench tasks: one sub-package per task (data module + Lightning module + ``TASK``).

``TASK_MODULES`` is the explicit registry: task name -> module exposing ``TASK`` (a
``tasks._base.Task``). Modules are imported on first use, so ``attnbench variants`` does not pay
for Lightning.
"""

from __future__ import annotations

import importlib

TASK_MODULES: dict[str, str] = {
    "graph": "tasks.graph",
    "translation": "tasks.translation",
    "sentiment": "tasks.sentiment",
    "vqa": "tasks.vqa",
    "captioning": "tasks.captioning",
    "listops": "tasks.listops",
    "recall": "tasks.recall",
}


def get_task(name: str):
    """The registered task called ``name``; an unknown name lists the valid ones."""
    if name not in TASK_MODULES:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASK_MODULES)) or 'none'}")
    return importlib.import_module(TASK_MODULES[name]).TASK
