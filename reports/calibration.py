"""Seed noise: how far one variant's headline metric moves from one training seed to another.

A paired bootstrap over the test items (``reports.paired``) sees the noise of a finite test set,
not the noise of training: another seed draws another initialisation and another batch order, and
for unstable variants that moves the result by many times the bootstrap's standard error. One seed
alone cannot measure it, so it is measured once, by running a suite at seeds of its own (the
quick suite's are 3, 4 and 5: ``configs/suites/quick-calibrate.yaml``, disjoint from the 0, 1 and
2 that the quick suites report, so the one-seed test is checked on runs it was not calibrated on),
and shipped as a calibration file (``configs/calibration/*.yaml``, written by ``attnbench
calibrate``):

    provenance: {suite, seeds, date, commit, command}
    entries:
      - {task, data, variant, cfg, metric, sd, n, values}

An entry applies only to runs of the same task, data, variant and configuration (``cfg``: the
runs' ``config_tag``, so a preset changed since the calibration gets no entry, and the report
falls back to its uncalibrated rule rather than borrow a noise figure measured for another
protocol). ``sd`` is the sample standard deviation of the metric over the ``n`` calibration seeds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

import configs

SHIPPED = configs.path("calibration")
MIN_SEEDS = 2
Key = tuple[str, str, str, str, str]  # task, data, variant, cfg, metric (e.g. "test/acc")


@dataclass(frozen=True)
class SeedNoise:
    """One variant's seed-to-seed standard deviation of a metric, over ``n`` calibration seeds."""

    sd: float
    n: int
    source: str  # e.g. "quick-calibrate, seeds 3, 4, 5 (2026-12-03, 1a2b3c4d5e6f)"


class CalibrationError(ValueError):
    pass


def _source(provenance: dict, path: Path) -> str:
    seeds = ", ".join(str(s) for s in provenance.get("seeds") or [])
    when = ", ".join(str(provenance[k]) for k in ("date", "commit") if provenance.get(k))
    return (f"{provenance.get('suite') or path.name}" + (f", seeds {seeds}" if seeds else "")
            + (f" ({when})" if when else ""))


def read(path: str | os.PathLike) -> dict[Key, SeedNoise]:
    """The entries of one calibration file; CalibrationError (naming the file) when it is not one."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CalibrationError(f"{path}: cannot read a calibration file: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise CalibrationError(f"{path}: a calibration file is a mapping with an 'entries' list "
                               "(attnbench calibrate writes one)")
    source = _source(document.get("provenance") or {}, path)
    found: dict[Key, SeedNoise] = {}
    for i, entry in enumerate(document["entries"]):
        try:
            key = tuple(str(entry[k]) for k in ("task", "data", "variant", "cfg", "metric"))
            sd, n = float(entry["sd"]), int(entry["n"])
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"{path}: entry {i} needs task, data, variant, cfg, metric, sd and n "
                                   f"({err!r})") from err
        if not math.isfinite(sd) or sd < 0 or n < MIN_SEEDS:
            raise CalibrationError(f"{path}: entry {i}: sd must be a finite number >= 0 and n >= "
                                   f"{MIN_SEEDS}, got sd={sd}, n={n}")
        found[key] = SeedNoise(sd, n, source)
    return found


def load(paths: Iterable[str | os.PathLike]) -> dict[Key, SeedNoise]:
    """Entries of several files; a key in two files takes the later file's entry."""
    found: dict[Key, SeedNoise] = {}
    for path in paths:
        found.update(read(path))
    return found


@lru_cache(maxsize=1)
def shipped() -> dict[Key, SeedNoise]:
    """The calibration files shipped in ``configs/calibration``, in name order."""
    return load(sorted(SHIPPED.glob("*.yaml"))) if SHIPPED.is_dir() else {}


def measure(runs: list[dict]) -> list[dict]:
    """Calibration entries from training records: per task, data, variant and configuration with
    ``MIN_SEEDS`` seeds or more, the sample standard deviation of the headline metric (the test
    counterpart of the metric the runs monitored), newest record per seed."""
    from .runs import headline_metric, runs_frame

    frame, _ = runs_frame(runs, calibration={})
    if frame.empty:
        return []
    ok = frame[frame["status"] == "ok"]
    entries = []
    for (task, data), section in ok.groupby(["task", "data"], sort=True):
        headline = headline_metric(section)
        if headline is None:
            continue
        for (variant, cfg), group in section.groupby(["variant", "cfg"], sort=True):
            values = [float(v) for v in group[headline].dropna()]
            if len(values) < MIN_SEEDS:
                continue
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            entries.append({"task": str(task), "data": str(data), "variant": str(variant), "cfg": str(cfg),
                            "metric": headline.removeprefix("metric:"), "sd": round(sd, 6),
                            "n": len(values), "seeds": sorted(int(s) for s in group["seed"]),
                            "values": [round(v, 6) for v in values]})
    return entries


def document(runs: list[dict], suite: str | None = None, command: str | None = None) -> dict:
    """A calibration file's content from records: entries (``measure``) and their provenance."""
    entries = measure(runs)
    seeds = sorted({s for e in entries for s in e["seeds"]})
    commits = sorted({str(r.get("env_git_commit"))[:12] for r in runs if r.get("env_git_commit")})
    stamps = sorted(str(r.get("env_timestamp")) for r in runs if r.get("env_timestamp"))
    provenance = {"suite": suite, "seeds": seeds, "runs": sum(e["n"] for e in entries),
                  "date": stamps[-1][:10] if stamps else date.today().isoformat(),
                  "commit": ", ".join(commits) or None, "command": command}
    return {"provenance": {k: v for k, v in provenance.items() if v is not None}, "entries": entries}
