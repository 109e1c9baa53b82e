"""The cache of the embedded (generated) data sets, one for every task.

Generated data (the translation and sentiment corpora, the captioning and VQA scenes, the CSBM
graphs) is kept under ``$ATTNBENCH_CACHE/<task>/`` when that variable is set, else under
``~/.cache/attnbench/<task>/``, in a file named by a hash of every generator parameter. Files are
written atomically (``configs.atomic.atomic_write``), so a concurrent reader never sees half a file.

``cached_json`` serves data that JSON can hold; a data set that needs another format (the graph
task's tensors) names its file with ``cache_file`` and writes it through ``configs.atomic.atomic_write``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from configs.atomic import atomic_write


def cache_dir(task: str) -> Path:
    """``$ATTNBENCH_CACHE/<task>`` if set, else ``~/.cache/attnbench/<task>``."""
    root = os.environ.get("ATTNBENCH_CACHE") or Path.home() / ".cache" / "attnbench"
    return Path(root) / task


def cache_file(task: str, params: Mapping, *, prefix: str = "", suffix: str = ".json") -> Path:
    """The cache file of ``task`` for ``params``: named by the hash of their sorted JSON."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir(task) / f"{prefix}{key}{suffix}"


def cached_json(task: str, params: dict, generate: Callable[[], object]) -> object:
    """``generate()`` once per distinct ``params``; later calls read the cached JSON file."""
    path = cache_file(task, params)
    if path.is_file():
        return json.loads(path.read_text())["data"]
    data = generate()
    with atomic_write(path) as handle:
        json.dump({"params": params, "data": data}, handle)
    # Return what a cache hit returns (JSON turns tuples into lists), so both paths agree.
    return json.loads(path.read_text())["data"]
