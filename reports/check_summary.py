"""The gate's Markdown summary, written to be pasted as a pull-request comment."""

from __future__ import annotations

from .check_types import CheckResult, Finding, Tolerances

COLUMNS = ["device", "kind", "item", "baseline", "current", "change", "evidence"]
MAX_LISTED = 60


def _row(finding: Finding) -> str:
    cells = [finding.device, finding.kind, f"`{finding.item}`", finding.baseline, finding.current,
             finding.change, finding.note]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(findings: list[Finding], limit: int | None = None) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [_row(f) for f in findings[:limit]]
    if limit is not None and len(findings) > limit:
        lines.append(f"\n... and {len(findings) - limit} more")
    return lines


def _headline(result: CheckResult) -> str:
    if result.exit_code == 2:
        return "## attnbench check: ⚠️ bad input (exit 2)"
    if result.regressions:
        return f"## attnbench check: ❌ {len(result.regressions)} regression(s) (exit 1)"
    return f"## attnbench check: ✅ all {len(result.findings)} comparisons hold (exit 0)"


def rules(tol: Tolerances) -> str:
    train = ("shown, not judged" if tol.train_speed is None
             else f"flagged when more than {tol.train_speed:.0%} slower relative to the task's `none` runs")
    return (f"Rules: speed = time relative to a reference measured in the same run, flagged when more "
            f"than {tol.speed:.0%} slower; training throughput {train}; accuracy = headline metric, "
            f"flagged when it drops by more than {tol.accuracy:g}; memory flagged when more than "
            f"{tol.memory:.0%} and at least {tol.memory_floor_mib:g} MiB higher. With 2+ runs or seeds on "
            f"each side a change must also be significant (one-sided t-test over runs, Welch's over "
            f"seeds, p < {tol.alpha:g}). A case or seed that ran and no longer does is a regression.")


def markdown_summary(result: CheckResult, baseline: str, tol: Tolerances) -> str:
    lines = [_headline(result), "", f"Baseline: `{baseline}`. {rules(tol)}", ""]
    if result.errors:
        lines += ["### Bad input", "", *(f"- {e}" for e in result.errors), ""]
    regressions = result.regressions
    improved = [f for f in result.findings if f.verdict == "improved"]
    if regressions:
        lines += ["### Regressions", "", *_table(regressions), ""]
    if improved:
        lines += ["### Improvements", "", *_table(improved), ""]
    if result.findings:
        lines += ["<details><summary>All comparisons "
                  f"({len(result.findings)})</summary>", "", *_table(result.findings, MAX_LISTED), "",
                  "</details>", ""]
    if result.not_compared:
        lines += ["<details><summary>Not compared "
                  f"({len(result.not_compared)})</summary>", "", *(f"- {n}" for n in result.not_compared),
                  "", "</details>", ""]
    return "\n".join(lines)
