"""Synthetic records for the report and gate tests: micro CSV rows, training runs, sweeps, attention files."""

from __future__ import annotations

import json
import random
from pathlib import Path

from reports.records import ENV_FIELDS, MICRO_COLUMNS, SCHEMA_VERSION, append_csv_rows, write_json_atomic

ENV = {"env_schema": SCHEMA_VERSION, "env_timestamp": "2026-01-01T00:00:00+00:00", "env_torch": "2.15.0",
       "env_cuda": "none", "env_cudnn": "none", "env_xformers": "0.0.35", "env_device": "cpu",
       "env_cpu": "test CPU", "env_threads": 1, "env_python": "3.11.7", "env_platform": "Linux",
       "env_git_commit": "abc123"}
assert set(ENV) == set(ENV_FIELDS)

# time at L=1024 relative to reference, and how it grows with L (log-log slope)
MICRO_VARIANTS = {"reference": (1.0, 2.0), "sdpa": (0.4, 2.0), "linear": (0.2, 1.0), "local": (0.3, 1.2),
                  "performer": (0.5, 1.0)}


def micro_rows(run_id: str, *, lengths=(256, 512, 1024), noise: float = 0.0, seed: int = 0,
               slower: dict[str, float] | None = None, bigger: dict[str, float] | None = None,
               device: str = "cpu", status: dict[str, str] | None = None,
               variants: tuple[str, ...] = tuple(MICRO_VARIANTS)) -> list[dict]:
    """One micro run: every variant in MICRO_VARIANTS at ``lengths``, times with relative ``noise``."""
    rng = random.Random(seed)
    rows = []
    for length in lengths:
        for variant in variants:
            speed, slope = MICRO_VARIANTS[variant]
            time = 1e-3 * speed * (length / 1024) ** slope * (1 + rng.gauss(0, noise))
            time *= (slower or {}).get(variant, 1.0)
            memory = 64 * 2**20 * (length / 1024) ** slope * (bigger or {}).get(variant, 1.0)
            state = (status or {}).get(variant, "ok")
            flops = 4.0 * 2 * 4 * length * length * 32
            rows.append({
                "run_id": run_id, "case": f"{variant}|{length}", "variant": variant, "variant_kwargs": "{}",
                "device": "cpu" if device == "cpu" else "cuda", "dtype": "float32", "batch": 2, "heads": 4,
                "lq": length, "lk": length, "head_dim": 32, "causal": False, "mask": "none",
                "pass": "forward",
                "status": state, "reason": "" if state == "ok" else f"{state} at L={length}",
                "max_abs_err": 1e-7, "time_median_s": time if state == "ok" else None,
                "time_iqr_s": time * 0.01 if state == "ok" else None, "runs": 5,
                "peak_mem_bytes": memory if state == "ok" else None, "reserved_mem_bytes": None,
                "mem_method": "cpu_peak_rss" if device == "cpu" else "cuda_max_memory_allocated",
                "flops": flops, "flops_per_s": flops / time if state == "ok" else None,
                "utilisation": None if device == "cpu" else 0.4, **ENV, "env_device": device})
    return rows


def write_micro(path: Path, runs: int = 3, **kwargs) -> Path:
    for i in range(runs):
        append_csv_rows(path, micro_rows(f"micro-{path.stem}-{i}", seed=i + 100 * len(path.stem), **kwargs),
                        MICRO_COLUMNS)
    return path


def run_record(task: str, variant: str, seed: int, acc: float, *, status: str = "ok", reason: str = "",
               samples_per_s: float = 1000.0, peak: float = 900 * 2**20, attention_file: str | None = None,
               config: dict | None = None, device: str = "cpu") -> dict:
    record = {"run_id": f"{task}-{variant}-s{seed}", "task": task, "variant": variant, "seed": seed,
              "data": "embedded", "config": config or {"model": {"hidden": 8}}, "status": status,
              "reason": reason, **ENV, "env_device": device}
    if status != "ok":
        return record
    return {**record, "metrics": {"test/acc": acc, "test/loss": 1.0 - acc}, "params": 1234,
            "train_time_s": 10.0, "samples_per_s": samples_per_s, "peak_mem_bytes": peak,
            "mem_method": "cpu_process_peak_rss" if device == "cpu" else "cuda_max_memory_allocated",
            "epochs": 5, "best_checkpoint": "best.ckpt", "monitor": "val/acc", "best_val": acc,
            "attention_file": attention_file}


def write_suite(out: Path, accs: dict[str, list[float]], task: str = "graph", **kwargs) -> Path:
    """A suite folder: one record per (variant, seed) with the given test accuracies."""
    for variant, values in accs.items():
        for seed, acc in enumerate(values):
            write_json_atomic(out / "records" / f"{task}__{variant}__s{seed}.json",
                              run_record(task, variant, seed, acc, **kwargs))
    return out


def attention_file(path: Path, kind: str) -> Path:
    if kind == "alignment":
        examples = [{"source": ["a", "b", "c"], "target": ["x", "y"],
                     "weights": [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]}]
    elif kind == "pooling":
        examples = [{"tokens": ["not", "bad", "at", "all"], "weights": [0.4, 0.4, 0.1, 0.1], "label": 1,
                     "prediction": 1}]
    else:
        image = [[[(r + c) / 14 for c in range(8)] for r in range(8)] for _ in range(3)]
        examples = [{"image": image, "grid": [2, 2], "weights": [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]],
                     "text": "a red square", "steps": ["a", "red"]}]
    path.write_text(json.dumps({"kind": kind, "examples": examples}))
    return path


def write_sweep(out: Path, study: str = "tiny", values=(0.5, 0.7, None, 0.6, 0.65)) -> Path:
    """A sweep folder: trial records and an Optuna journal with the same trials (None: pruned)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(out / "journal.log")))
    study_ = optuna.create_study(study_name=study, storage=storage, direction="maximize")
    space = {"variant": CategoricalDistribution(["gat", "dot"]),
             "optim.lr": FloatDistribution(1e-3, 1e-1, log=True)}
    for number, value in enumerate(values):
        params = {"variant": ["gat", "dot"][number % 2], "optim.lr": 10 ** (-3 + number * 0.4)}
        state = TrialState.PRUNED if value is None else TrialState.COMPLETE
        study_.add_trial(create_trial(params=params, distributions=space, value=value, state=state))
        base = {"sweep": study, "trial": number, "params": params}
        if value is None:
            record = {**base, "task": "graph", "variant": params["variant"], "seed": 0, "status": "pruned",
                      "reason": "pruned by the median pruner"}
        else:
            record = {**run_record("graph", params["variant"], 0, value), **base}
        write_json_atomic(out / "trials" / f"{study}__trial{number}.json", record)
    return out
