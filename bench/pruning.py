"""Pruning's pay-off: one sweep run twice, as written and with ``pruner: none``, compared.

    python -m bench.pruning configs/sweeps/graph.yaml [--out runs/pruning/graph] [--threads 1]

Both studies run in this process, one after the other, with one worker, the same sampler seed and
fresh storage (``<out>/pruned`` and ``<out>/unpruned``; an existing ``--out`` is refused, since a
resumed study would make its time meaningless). For each it reports the wall-clock time, the best
validation value, how many trials were pruned, and the time until a finished trial first reached
the unpruned study's best value. The figures go to ``<out>/pruning.json`` as well.

With a seeded ``random`` sampler both studies draw the same parameters in the same order, so
pruning can only lose the best value by stopping the trial that would have reached it; with
``tpe`` the pruned trials also steer later draws.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from reports.records import write_json_atomic

from .sweep import Sweep, _study, load_sweep, make_storage, run_sweep


def time_to_reach(study: optuna.Study, target: float) -> float | None:
    """Seconds from the first trial's start until a complete trial's value first reached ``target``."""
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return None
    start = min(t.datetime_start for t in trials if t.datetime_start)
    better = (lambda v: v >= target) if study.direction == optuna.study.StudyDirection.MAXIMIZE \
        else (lambda v: v <= target)
    reached = [t.datetime_complete for t in trials
               if t.state == TrialState.COMPLETE and t.value is not None and better(t.value)]
    return (min(reached) - start).total_seconds() if reached else None


def _run(sweep: Sweep, out: Path) -> tuple[optuna.Study, float]:
    started = time.perf_counter()
    run_sweep(sweep, out)
    seconds = time.perf_counter() - started
    return _study(sweep, make_storage(None, out), 0), seconds


def compare(sweep: Sweep, out: Path) -> dict:
    if sweep.pruner is None:
        raise ValueError("the sweep has no pruner (pruner: none): nothing to compare")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out} already holds results; give a new folder (times of a resumed study "
                         "would mean nothing)")
    unpruned, unpruned_s = _run(dataclasses.replace(sweep, pruner=None), out / "unpruned")
    pruned, pruned_s = _run(sweep, out / "pruned")
    target = unpruned.best_value
    result = {"sweep": sweep.study, "task": sweep.task, "n_trials": sweep.n_trials, "pruner": sweep.pruner,
              "sampler": sweep.sampler, "threads": torch.get_num_threads()}
    for name, study, seconds in (("unpruned", unpruned, unpruned_s), ("pruned", pruned, pruned_s)):
        states = [t.state for t in study.trials]
        best = study.best_trial
        result[name] = {"wall_s": seconds, "best_value": best.value, "best_params": best.params,
                        "trials_pruned": states.count(TrialState.PRUNED),
                        "trials_complete": states.count(TrialState.COMPLETE),
                        "time_to_unpruned_best_s": time_to_reach(study, target)}
    result["time_ratio"] = pruned_s / unpruned_s
    reached = result["pruned"]["time_to_unpruned_best_s"]
    result["time_to_best_ratio"] = None if reached is None else reached / result["unpruned"][
        "time_to_unpruned_best_s"]
    result["same_best"] = result["pruned"]["best_value"] == target
    write_json_atomic(out / "pruning.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="sweep YAML with a pruner")
    parser.add_argument("--out", help="folder for both studies (default runs/pruning/<study>)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    try:
        sweep = load_sweep(args.sweep)
        result = compare(sweep, Path(args.out or f"runs/pruning/{sweep.study}"))
    except ValueError as err:
        parser.exit(2, f"bench.pruning: {err}\n")
    for name in ("unpruned", "pruned"):
        r = result[name]
        reach = r["time_to_unpruned_best_s"]
        print(f"{name:>8}: {r['wall_s']:7.1f} s, best {r['best_value']:.4f}, {r['trials_pruned']} of "
              f"{r['trials_pruned'] + r['trials_complete']} trials pruned, unpruned best reached after "
              + ("never" if reach is None else f"{reach:.1f} s"))
    print(f"time ratio pruned/unpruned {result['time_ratio']:.2f}; same best value: {result['same_best']}")
    print(json.dumps({k: result[k] for k in ("time_ratio", "time_to_best_ratio", "same_best")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
