"""Sweeps on a real PostgreSQL server (loopback): parallel workers and a worker killed mid-trial.

The server is Debian's ``postgresql`` package (``.ci/run`` installs it); without its binaries, or
without the psycopg driver (``pip install -e ".[postgres]"``), these tests skip and say why.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from tasks import get_task

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
pytestmark = [
    pytest.mark.skipif(not PG_BIN, reason="PostgreSQL server binaries not found (Debian package "
                                          "'postgresql', which .ci/run installs)"),
    pytest.mark.slow,
]
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg", reason="the psycopg driver is missing (pip install -e '.[postgres]')")
    bindir = Path(PG_BIN[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="attnbench-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "attnbench",
                    "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
                    "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://attnbench@127.0.0.1:{port}/postgres"  # as users write it: the extra's driver
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _sweep(tmp_path: Path, study: str, n_trials: int, max_epochs: int, grace: int) -> Path:
    config = get_task("graph").config("quick")
    config["data"].update(num_nodes=120, num_val=30, num_test=30, train_per_class=4)
    config["trainer"] = {"max_epochs": max_epochs, "patience": 0}
    preset = tmp_path / "graph-tiny.yaml"
    preset.write_text(yaml.safe_dump(config))
    spec = {"task": "graph", "preset": str(preset), "study": study, "n_trials": n_trials, "seed": 0,
            "variants": ["none", "mlp"], "pruner": "none", "heartbeat": {"interval": 1, "grace": grace},
            "params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True}}}
    path = tmp_path / f"{study}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", *args]


def _trials(url: str, study: str):
    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


def test_two_workers_complete_exactly_the_requested_trials(postgres_url, tmp_path) -> None:
    # No worker dies here: a generous grace, so that a heartbeat delayed by two busy workers on two
    # cores never gets a live trial failed as stale (and retried: one trial too many).
    sweep = _sweep(tmp_path, "pg-parallel", n_trials=4, max_epochs=3, grace=30)
    result = subprocess.run(_cli("sweep", str(sweep), "--storage", postgres_url, "--workers", "2",
                                 "--out", str(tmp_path / "out")), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = _trials(postgres_url, "pg-parallel")
    done = [t for t in trials if t.state in DONE]
    assert len(done) == 4, [t.state for t in trials]
    assert len({t.number for t in trials}) == len(trials)  # no trial recorded twice
    assert len(list((tmp_path / "out" / "trials").iterdir())) >= 4


def test_a_worker_killed_mid_trial_is_finished_by_the_next(postgres_url, tmp_path) -> None:
    sweep = _sweep(tmp_path, "pg-killed", n_trials=2, max_epochs=150, grace=3)
    out = str(tmp_path / "out")
    first = subprocess.Popen(_cli("sweep", str(sweep), "--storage", postgres_url, "--out", out),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            running = [t for t in _trials(postgres_url, "pg-killed")
                       if t.state == optuna.trial.TrialState.RUNNING]
        except KeyError:  # the study is not created yet
            running = []
        if running:
            break
        time.sleep(0.5)
    assert running, "no trial started within 120 s"
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(4)  # past the heartbeat grace period: the trial is stale
    result = subprocess.run(_cli("sweep", str(sweep), "--storage", postgres_url, "--out", out),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    states = [t.state for t in _trials(postgres_url, "pg-killed")]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert optuna.trial.TrialState.FAIL in states and optuna.trial.TrialState.RUNNING not in states
