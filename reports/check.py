"""``attnbench check --baseline <file> [records...]``: the regression gate.

The records are reduced exactly as ``attnbench baseline`` reduces them (``reports.baseline``) and
compared, device by device, with the baseline's entry for the same device name:

- **speed** (micro-benchmarks): each variant's time relative to the ``reference`` variant measured
  in the same run at the same shape, never absolute time, so a slower or busier machine moves
  nothing. Per variant configuration, the change is the geometric mean over the lengths both
  sides measured of (current ratio / baseline ratio), with runs averaged per length, beyond the
  median change of all variants of the same grid configuration (``reports.speed``: what moves
  every ratio together is the machine or the reference's measurement, not a variant). It is a
  regression when it is slower by more than ``speed`` (default 10%) and, where both sides have at
  least two runs, a one-sided t-test finds it significant at ``alpha`` (default 0.10); the test
  pools the run-to-run spread within each length (``reports.stats.shift_test``). With a single run
  on a side the tolerance alone decides, and the summary says so. Training throughput (time per
  sample relative to the task's ``none`` runs, seeds as runs) is judged the same way only when
  ``train_speed`` is set: separate training runs do not share their moment on a shared machine,
  and honest repeats here moved it by up to 2.6x.
- **memory**: a case's peak memory (median over runs) grown by more than ``memory`` (default 10%)
  and by at least ``memory_floor_mib`` (default 12 MiB: the CPU peak moves in 4 MiB steps of the
  allocator, and honest repeats here moved a case by up to 8 MiB in single runs, 4 MiB in
  medians of three; CUDA's allocator counts bytes exactly, so GPU gates can use 1). Training
  memory is judged only where it was measured per run (``cuda_max_memory_allocated``); a
  process-wide CPU peak RSS accumulates over the runs of a suite.
- **accuracy**: the task's headline metric (mean over seeds) dropped by more than ``accuracy``
  (default 0.01, one point of a 0..1 metric) and, with two or more seeds on each side, Welch's
  one-sided t-test over the seeds finds the drop significant at ``alpha``: a drop inside the seed
  spread does not fail the gate.
- **status**: a case or seed that ran in the baseline and now does not (unsupported, incorrect,
  out of memory, failed) is a regression.

The tolerances bound the size of a change that may pass; the tests only keep a change that lies
inside the run-to-run (seed-to-seed) spread from failing. Hence the lenient ``alpha``: on two
cores shared with other jobs, three runs per side leave little power, and at 0.05 two of 24
planted 20% slowdowns passed (p = 0.056 and 0.057) while no honest repeat came near the 10%
tolerance (largest 6%).

Exit status: 0 when everything holds, 1 on any regression, 2 on bad input (a missing or malformed
file, a schema mismatch, records of a device the baseline does not have).
"""

from __future__ import annotations

import math
import os

from .baseline import BaselineError, load, summarise
from .check_summary import markdown_summary
from .check_types import CheckResult, Finding, Tolerances
from .sources import collect
from .speed import MIN_VARIANTS, common_shifts, corrected, speed_series
from .stats import shift_test, welch_test

PER_RUN_MEMORY = ("cuda_max_memory_allocated",)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _evidence(p: float | None, n_base: int, n_cur: int, alpha: float, test: str) -> tuple[bool, str]:
    """Whether a change counts as significant, and how that was decided."""
    if p is None:
        return True, f"n={n_base}/{n_cur}: tolerance only (a test needs 2 per side)"
    return p < alpha, f"n={n_base}/{n_cur}, one-sided {test} p={p:.3g}"


def judge_ratio(base: list[list[float]], cur: list[list[float]], tolerance: float, alpha: float
                ) -> tuple[str, float, str]:
    """Verdict, change factor and note for log time ratios (larger = slower); one list of runs per case."""
    test = shift_test(base, cur)
    change = math.exp(test.shift)
    n_base, n_cur = min(map(len, base)), min(map(len, cur))
    slower, note = _evidence(test.p_greater, n_base, n_cur, alpha, "t-test")
    if change > 1.0 + tolerance and slower:
        return "regression", change, note
    faster, _ = _evidence(test.p_less, n_base, n_cur, alpha, "t-test")
    return ("improved" if change < 1.0 / (1.0 + tolerance) and faster else "ok"), change, note


def judge_accuracy(base: list[float], cur: list[float], direction: str, tol: Tolerances
                   ) -> tuple[str, float, str]:
    """Verdict, drop (positive = worse, in metric units) and note."""
    sign = 1.0 if direction == "max" else -1.0
    drop = sign * (_mean(base) - _mean(cur))
    worse = welch_test(base, cur) if sign > 0 else welch_test(cur, base)
    p = worse.p_greater if worse is not None else None
    significant, note = _evidence(p, len(base), len(cur), tol.alpha, "Welch")
    if drop > tol.accuracy and significant:
        return "regression", drop, note
    return ("improved" if drop < -tol.accuracy else "ok"), drop, note


def judge_memory(base: float, cur: float, tol: Tolerances) -> str:
    grew = cur - base
    if cur > base * (1.0 + tol.memory) and grew >= tol.memory_floor_mib * 2**20:
        return "regression"
    return "improved" if base > cur * (1.0 + tol.memory) and -grew >= tol.memory_floor_mib * 2**20 else "ok"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def _micro_group(device: str, group: str, base: dict, cur: dict, tol: Tolerances
                 ) -> tuple[list[Finding], list[str]]:
    """Status and memory findings of one variant configuration (speed is judged per configuration family)."""
    findings, skipped = _statuses(device, "micro status", group, base["statuses"], cur["statuses"])
    for case in sorted(set(base["memory"]) & set(cur["memory"])):
        (b, b_method), (c, c_method) = base["memory"][case], cur["memory"][case]
        if b_method != c_method:
            skipped.append(f"{device} {group} {case}: memory methods differ ({b_method} vs {c_method})")
            continue
        change = f"{c / b:.2f}x" if b > 0 else f"+{_mib(c - b)}"
        findings.append(Finding(device, "memory", f"{group} {case}", _mib(b), _mib(c), change,
                                judge_memory(b, c, tol), b_method))
    return findings, skipped


def _micro_speed(device: str, base: dict, cur: dict, reference: str, tol: Tolerances
                 ) -> tuple[list[Finding], list[str]]:
    """Each variant configuration's shift of its time ratio, beyond its grid configuration's common shift."""
    series, skipped = [], []
    for group in sorted(set(base) & set(cur)):
        found = speed_series(group, base[group]["log_ratios"], cur[group]["log_ratios"])
        if found is None:
            skipped.append(f"{device} {group}: speed not compared (no length measured with the reference "
                           "in every run)")
        else:
            series.append(found)
    common = common_shifts(series)
    for family, shift in common.items():
        if shift is not None and abs(shift) > math.log1p(tol.speed):
            skipped.append(f"{device} {family}: every ratio moved by {math.exp(shift):.3f}x together (the "
                           f"machine, or `{reference}` itself): removed before judging the variants")
    findings = []
    for s in series:
        if s.group.startswith(f"{reference}|"):
            continue  # its ratio is 1 by definition
        shift = common[s.family]
        verdict, change, note = judge_ratio(s.base, corrected(s, shift), tol.speed, tol.alpha)
        anchor = (f"common shift {math.exp(shift):.3f}x removed" if shift is not None
                  else f"fewer than {MIN_VARIANTS} variants: raw ratios")
        findings.append(Finding(device, "speed", s.group, f"{s.ratio('base'):.3f}x ref",
                                f"{s.ratio('cur'):.3f}x ref", f"{change:.3f}x time", verdict,
                                f"{note}; {anchor}; lengths {', '.join(s.cases)}"))
    return findings, skipped


def _statuses(device: str, kind: str, item: str, base: dict, cur: dict) -> tuple[list[Finding], list[str]]:
    findings = []
    for key in sorted(set(base) & set(cur)):
        (b, _), (c, reason) = base[key], cur[key]
        if b == "ok" and c not in ("ok", "equivalent"):  # equivalent: provably the reference, not trained
            findings.append(Finding(device, kind, f"{item} {key}", "ok", c, "stopped running", "regression",
                                    reason))
        elif b != "ok" and c == "ok":
            findings.append(Finding(device, kind, f"{item} {key}", b, "ok", "runs now", "improved"))
    return findings, []


def _run_item(device: str, key: str, base: dict, cur: dict, tol: Tolerances
              ) -> tuple[list[Finding], list[str]]:
    if base["cfg"] != cur["cfg"]:
        return [], [f"{device} {key}: configuration changed ({base['cfg']} -> {cur['cfg']}): "
                    "update the baseline"]
    findings, skipped = _statuses(device, "run status", key, base["statuses"], cur["statuses"])
    if base["values"] and cur["values"] and base["metric"] == cur["metric"]:
        verdict, drop, note = judge_accuracy(list(base["values"].values()), list(cur["values"].values()),
                                             cur["direction"], tol)
        findings.append(Finding(device, "accuracy", key, _spread(base["values"]), _spread(cur["values"]),
                                f"{-drop:+.4f} {cur['metric'].removeprefix('metric:')}", verdict, note))
    if base["log_ratios"] and cur["log_ratios"] and tol.train_speed is not None:
        verdict, change, note = judge_ratio([list(base["log_ratios"].values())],
                                            [list(cur["log_ratios"].values())], tol.train_speed, tol.alpha)
        findings.append(Finding(device, "training speed", key, "", "", f"{change:.3f}x time per sample",
                                verdict, note))
    findings += _run_memory(device, key, base["memory"], cur["memory"], tol)
    return findings, skipped


def _spread(values: dict) -> str:
    numbers = list(values.values())
    return f"{_mean(numbers):.4f} ({len(numbers)} seeds, {min(numbers):.4f}..{max(numbers):.4f})"


def _run_memory(device: str, key: str, base: list | None, cur: list | None, tol: Tolerances) -> list[Finding]:
    if not base or not cur or base[1] != cur[1] or cur[1] not in PER_RUN_MEMORY:
        return []
    verdict = judge_memory(base[0], cur[0], tol)
    return [Finding(device, "training memory", key, _mib(base[0]), _mib(cur[0]), f"{cur[0] / base[0]:.2f}x",
                    verdict, cur[1])]


def compare_device(device: str, base: dict, cur: dict, tol: Tolerances) -> tuple[list[Finding], list[str]]:
    findings, skipped = _micro_speed(device, base["micro"], cur["micro"], base["reference"], tol)
    for group in sorted(set(cur["micro"]) & set(base["micro"])):
        more, notes = _micro_group(device, group, base["micro"][group], cur["micro"][group], tol)
        findings, skipped = findings + more, skipped + notes
    for key in sorted(cur["runs"]):
        if key in base["runs"]:
            more, notes = _run_item(device, key, base["runs"][key], cur["runs"][key], tol)
            findings, skipped = findings + more, skipped + notes
    if tol.train_speed is None and any(e["log_ratios"] for e in cur["runs"].values()):
        skipped.append(f"{device}: training throughput shown, not judged (enable with --train-speed-tol)")
    for kind in ("micro", "runs"):
        new = sorted(set(cur[kind]) - set(base[kind]))
        gone = sorted(set(base[kind]) - set(cur[kind]))
        if new:
            skipped.append(f"{device}: {len(new)} {kind} item(s) not in the baseline: {', '.join(new[:5])}"
                           + (" ..." if len(new) > 5 else ""))
        if gone:
            skipped.append(f"{device}: {len(gone)} baseline {kind} item(s) not in these records")
    return findings, skipped


def run_check(baseline_path: str | os.PathLike, inputs: list[str | os.PathLike], tol: Tolerances
              ) -> CheckResult:
    """Compare the records with the baseline; never raises on bad input (exit code 2 instead)."""
    result = CheckResult(0, [], [], [])
    try:
        baseline = load(baseline_path)
        found = collect(list(inputs))
        result.errors += found.problems
        current = {} if result.errors else summarise(found, *_references(baseline["devices"]))
    except BaselineError as err:
        result.errors.append(str(err))
        current = {}
    if not current and not result.errors:
        result.errors.append("no micro-benchmark rows or training runs in the inputs")
    for device, entry in current.items():
        if device not in baseline["devices"]:
            result.errors.append(f"no baseline for device {device!r} (the baseline has: "
                                 f"{', '.join(sorted(baseline['devices'])) or 'none'})")
            continue
        findings, skipped = compare_device(device, baseline["devices"][device], entry, tol)
        result.findings += findings
        result.not_compared += skipped
    if current and not result.findings and not result.errors:
        # a gate that compared nothing (a renamed grid, another suite) must not pass unnoticed
        result.errors.append("nothing compared: no record matches an entry of the baseline")
    result.exit_code = 2 if result.errors else (1 if result.regressions else 0)
    result.markdown = markdown_summary(result, str(baseline_path), tol)
    return result


def _references(devices: dict) -> tuple[str, str]:
    """The micro and training references the baseline was built with (one pair per file)."""
    pairs = {(d["reference"], d["train_reference"]) for d in devices.values()}
    if len(pairs) > 1:
        raise BaselineError(f"the baseline mixes references {sorted(pairs)}")
    return pairs.pop() if pairs else ("reference", "none")
