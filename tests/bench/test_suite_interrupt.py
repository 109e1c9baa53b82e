"""Interrupting ``attnbench run`` (SIGINT, SIGKILL) and running it again records every run exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tasks import get_task

pytestmark = pytest.mark.slow


def _suite(tmp_path: Path) -> Path:
    config = get_task("graph").config("quick")
    config["data"].update(num_nodes=120, num_val=30, num_test=30, train_per_class=4)
    config["trainer"] = {"max_epochs": 60, "patience": 0}
    preset = tmp_path / "graph-tiny.yaml"
    preset.write_text(yaml.safe_dump(config))
    suite = {"preset": str(preset), "seeds": [0, 1], "threads": 1,
             "tasks": {"graph": {"variants": ["none", "mlp", "sdpa"]}}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _run(suite: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_records(out: Path, count: int, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(list((out / "records").glob("*.json"))) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} records after {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_suite_completes_with_each_run_once(tmp_path, sig) -> None:
    suite, out = _suite(tmp_path), tmp_path / "out"
    first = _run(suite, out)
    _wait_for_records(out, 3)  # two unsupported cells (sdpa) are instant; then one trained run
    first.send_signal(sig)
    first.wait(timeout=60)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert len(before) < 6
    second = _run(suite, out)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    records = {p.name: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert len(records) == 6  # 3 variants x 2 seeds, one record each
    assert {n: p.stat().st_mtime_ns for n, p in ((n, out / "records" / n) for n in before)} == before
    assert sorted(r["status"] for r in records.values()) == ["ok"] * 4 + ["unsupported"] * 2
    assert len({r["run_id"] for r in records.values()}) == 6
