"""Interrupting ``attnbench run`` (SIGINT, SIGKILL) and running it again records every run exactly once.

The interruption lands in the middle of a run by construction, never by timing: the suite runs the
held task (``tests/bench/_held_task.py``), whose seed-1 runs wait at their second epoch, after their
first checkpoint, until the test lets them go. The signal is sent once every worker is waiting, so
which runs are recorded before it is known exactly, and the held runs must resume from checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.bench._held_task import HOLD_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The suite process registers the held task before parsing its arguments; spawned workers get
# the parent's task registry and sys.path from the suite runner. It also takes Ctrl-C as a shell's
# foreground command does: a test run started in the background (nohup, `cmd &` in a script)
# passes SIGINT on ignored, and Python then never raises KeyboardInterrupt.
BOOT = ("import signal, sys, tasks; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "tasks.TASK_MODULES['held'] = 'tests.bench._held_task'; "
        "from bench.cli import main; sys.exit(main(sys.argv[1:]))")


def _suite(tmp_path: Path, jobs: int) -> Path:
    preset = tmp_path / "held.yaml"
    config = {"data": {"n": 120, "length": 5, "batch_size": 32}, "optim": {"lr": 0.05},
              "trainer": {"max_epochs": 3}}
    preset.write_text(yaml.safe_dump(config))
    suite = {"preset": str(preset), "seeds": [0, 1], "threads": 1, "jobs": jobs,
             "tasks": {"held": {"variants": ["reference", "none", "local"]}}}  # local: refused by the task
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _run(suite: Path, out: Path, hold: Path | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != HOLD_ENV}
    if hold is not None:
        env[HOLD_ENV] = str(hold)
    command = [sys.executable, "-c", BOOT, "run", str(suite), "--out", str(out), "--no-progress"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _wait_until_held(proc: subprocess.Popen, hold: Path, names: set[str], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while {p.name for p in hold.glob("held-*")} != names:
        if proc.poll() is not None:
            raise AssertionError(f"the suite exited ({proc.returncode}) before {sorted(names)} were held:\n"
                                 f"{proc.stderr.read()}")
        if time.time() > deadline:
            raise AssertionError(f"{sorted(names)} not held after {timeout} s")
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we listed /proc
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
    suite, out, hold = _suite(tmp_path, jobs), tmp_path / "out", tmp_path / "hold"
    hold.mkdir()
    (hold / "hold").touch()
    # One worker: reference s0 is recorded, reference s1 waits. Two workers: each takes one seed of
    # reference; the s0 worker goes on to none s0 and then none s1, which waits too.
    held = {"held-reference-s1"} | ({"held-none-s1"} if jobs == 2 else set())
    recorded = {"held__reference__s0.json"} | ({"held__none__s0.json"} if jobs == 2 else set())
    first = _run(suite, out, hold)
    try:
        _wait_until_held(first, hold, held)
        workers = _children(first.pid) if jobs > 1 else []
        assert len(workers) >= jobs or jobs == 1
        first.send_signal(sig)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        (hold / "hold").unlink()
    deadline = time.time() + 5  # the kernel kills them at once (PR_SET_PDEATHSIG)
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "suite workers outlived the suite process"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert set(before) == recorded
    for name in held:  # interrupted mid-run, after the first epoch's checkpoint
        variant = name.split("-")[1]
        assert (out / "runs" / f"held__{variant}__s1" / "checkpoints" / "last.ckpt").is_file()
    second = _run(suite, out, hold=None)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    records = {p.name: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert len(records) == 6  # 3 variants x 2 seeds, one record each
    assert {n: p.stat().st_mtime_ns for n, p in ((n, out / "records" / n) for n in before)} == before
    assert sorted(r["status"] for r in records.values()) == ["ok"] * 4 + ["unsupported"] * 2
    assert len({r["run_id"] for r in records.values()}) == 6
    for name in held:
        record = records[f"held__{name.split('-')[1]}__s1.json"]
        assert record["resumed_from_epoch"] == 1 and record["epochs"] == 3
    assert records["held__reference__s0.json"]["resumed_from_epoch"] is None


def test_sweep_workers_die_with_a_killed_sweep(tmp_path) -> None:
    """Both workers of a sweep are held mid-trial (seed 1), then the sweep process gets SIGKILL."""
    preset = tmp_path / "held.yaml"
    preset.write_text(yaml.safe_dump({"data": {"n": 120, "length": 5, "batch_size": 32},
                                      "optim": {"lr": 0.05}, "trainer": {"max_epochs": 3}}))
    spec = {"task": "held", "preset": str(preset), "seed": 1, "variants": ["reference", "none"],
            "sampler": {"type": "grid"}, "pruner": "none"}
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(spec))
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "hold").touch()
    command = [sys.executable, "-c", BOOT, "sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers",
               "2", "--no-progress"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, HOLD_ENV: str(hold)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_held(proc, hold, {"held-reference-s1", "held-none-s1"})
        workers = _children(proc.pid)
        assert len(workers) >= 2
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.time() + 5  # the kernel kills them at once (PR_SET_PDEATHSIG)
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if _alive(pid)]
    (hold / "hold").unlink()  # lets a surviving worker finish, so the test leaves nothing behind
    assert not alive, "sweep workers outlived the sweep process"
