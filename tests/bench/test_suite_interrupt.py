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


def _suite(tmp_path: Path, jobs: int = 1) -> Path:
    config = get_task("graph").config("quick")
    config["data"].update(num_nodes=120, num_val=30, num_test=30, train_per_class=4)
    config["trainer"] = {"max_epochs": 100, "patience": 0}
    preset = tmp_path / "graph-tiny.yaml"
    preset.write_text(yaml.safe_dump(config))
    suite = {"preset": str(preset), "seeds": [0, 1], "threads": 1, "jobs": jobs,
             "tasks": {"graph": {"variants": ["sdpa", "none", "mlp"]}}}
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


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(("sig", "jobs"), [(signal.SIGINT, 1), (signal.SIGKILL, 1), (signal.SIGINT, 2),
                                           (signal.SIGKILL, 2)])
def test_interrupted_suite_completes_with_each_run_once(tmp_path, sig, jobs) -> None:
    suite, out = _suite(tmp_path, jobs), tmp_path / "out"
    first = _run(suite, out)
    _wait_for_records(out, 3)  # two unsupported cells (sdpa) are instant; then one trained run
    workers = _children(first.pid) if jobs > 1 else []
    assert len(workers) >= jobs or jobs == 1
    first.send_signal(sig)
    first.wait(timeout=60)
    deadline = time.time() + 5  # the kernel kills them at once (PR_SET_PDEATHSIG)
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "suite workers outlived the suite process"
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
