"""Report section from sweep trial records: best trial per variant, history, parameter importances.

Trial records (``<sweep>/trials/*.json``) give the values, variants and parameters. Parameter
importances are Optuna's fANOVA importances (``optuna.importance.FanovaImportanceEvaluator``,
seeded) of the study in the sweep's journal file; a sweep kept in an RDB has no journal next to
its records, and the report says so instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import plots
from .document import Block, Figure, Heading, Table, Text
from .runs import metric_direction

MIN_IMPORTANCE_TRIALS = 2  # fANOVA needs completed trials that differ


def sweep_blocks(trials: list[dict], journals: list[Path]) -> list[Block]:
    blocks: list[Block] = [Heading("Sweeps")]
    if not trials:
        return [*blocks, Text("No sweep trial records in the inputs.")]
    studies: dict[str, list[dict]] = {}
    for trial in trials:
        studies.setdefault(str(trial["sweep"]), []).append(trial)
    for study, records in sorted(studies.items()):
        blocks += _study_blocks(study, sorted(records, key=lambda r: r["trial"]), journals)
    return blocks


def _maximize(records: list[dict]) -> bool:
    monitor = next((r["monitor"] for r in records if r.get("monitor")), "")
    return metric_direction(monitor) == "max"


def _objective(record: dict) -> float:
    """A trial's value: the mean over its training seeds where it had several, else its run's best."""
    return float(record.get("objective", record["best_val"]))


def _one_per_trial(records: list[dict], seeds: int) -> dict:
    """A trial's row from its seeds' records: the first that did not finish ok (its reason), else
    the first (the trial's ``objective`` is on every one); a trial with seeds still to run is
    ``incomplete``; its test metrics in the table are that first seed's."""
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        return failed[0]
    if len(records) < seeds or not all("objective" in r for r in records):
        return {**records[0], "status": "incomplete", "reason": f"{len(records)} of {seeds} seeds finished"}
    return records[0]


def _study_blocks(study: str, records: list[dict], journals: list[Path]) -> list[Block]:
    seeds = max((len(r.get("train_seeds") or [1]) for r in records), default=1)
    if seeds > 1:  # one record per (trial, seed): show one row per trial
        by_trial: dict[int, list[dict]] = {}
        for r in records:
            by_trial.setdefault(int(r["trial"]), []).append(r)
        records = [_one_per_trial(mine, seeds) for _, mine in sorted(by_trial.items())]
    done = [r for r in records if r["status"] == "ok" and r.get("best_val") is not None]
    pruned = [r for r in records if r["status"] == "pruned"]
    other = [r for r in records if r not in done and r not in pruned]
    maximize = _maximize(records)
    monitor = next((r["monitor"] for r in records if r.get("monitor")), "the validation metric")
    mean = f", the mean of {seeds} training seeds per trial" if seeds > 1 else ""
    blocks: list[Block] = [Heading(f"{study} ({records[0]['task']})", 3), Text(
        f"{len(records)} trials: {len(done)} complete, {len(pruned)} pruned, {len(other)} other "
        f"(failed: {', '.join(str(r['trial']) + ' ' + str(r.get('reason', '')) for r in other) or 'none'}). "
        f"Objective: {monitor} at the best checkpoint{mean} "
        f"({'higher' if maximize else 'lower'} is better).")]
    blocks.append(_best_table(done, records, maximize))
    points = [(int(r["trial"]), _objective(r), str(r["variant"])) for r in done]
    png = plots.history(f"{study}: optimisation history", points, [int(r["trial"]) for r in pruned], maximize)
    caption = f"{study}: objective per trial and best so far"
    blocks.append(Figure(f"sweep-history-{_slug(study)}", png, caption))
    return [*blocks, *_importance_blocks(study, journals, len(done))]


def _best_table(done: list[dict], records: list[dict], maximize: bool) -> Table:
    rows = []
    for variant in sorted({str(r["variant"]) for r in records}):
        mine = [r for r in done if r["variant"] == variant]
        tried = sum(1 for r in records if r["variant"] == variant)
        if not mine:
            rows.append([variant, "", "no completed trial", f"{tried}", "", ""])
            continue
        best = (max if maximize else min)(mine, key=_objective)
        params = {k: v for k, v in (best.get("params") or {}).items() if k != "variant"}
        test = ", ".join(f"{k.removeprefix('test/')}={v:.3f}" for k, v in sorted(best["metrics"].items()))
        rows.append([variant, str(best["trial"]), f"{_objective(best):.4f}", f"{tried}", test,
                     json.dumps(params, sort_keys=True, default=str)])
    return Table(["variant", "best trial", "objective", "trials", "test metrics", "parameters"], rows,
                 caption="Best trial per variant")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())[:60]


def _importance_blocks(study: str, journals: list[Path], completed: int) -> list[Block]:
    journal = _journal_of(study, journals)
    if journal is None:
        return [Text("Parameter importances: no Optuna journal for this study among the inputs "
                     "(a sweep kept in an RDB storage); give the sweep folder to include them.")]
    if completed < MIN_IMPORTANCE_TRIALS:
        return [Text(f"Parameter importances: need at least {MIN_IMPORTANCE_TRIALS} completed trials.")]
    try:
        scores = fanova_importances(journal, study)
    except (ValueError, RuntimeError, KeyError) as err:  # e.g. no parameter varied among the trials
        return [Text(f"Parameter importances unavailable from {journal}: {err}")]
    names = list(scores)
    png = plots.importances(f"{study}: parameter importances", names, [scores[n] for n in names])
    table = Table(["parameter", "importance"], [[n, f"{scores[n]:.3f}"] for n in names])
    return [Text(f"Parameter importances (Optuna fANOVA over {completed} completed trials, from {journal}):"),
            table, Figure(f"sweep-importance-{_slug(study)}", png, f"{study}: fANOVA parameter importances")]


def _journal_of(study: str, journals: list[Path]) -> Path | None:
    for journal in journals:
        for line in journal.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("study_name") == study:
                return journal
    return None


def fanova_importances(journal: Path, study: str) -> dict[str, float]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    loaded = optuna.load_study(study_name=study, storage=storage)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    scores = optuna.importance.get_param_importances(loaded, evaluator=evaluator)
    return {name: float(value) for name, value in scores.items()}
