"""Run a micro-benchmark grid: progress bar, rows appended as they finish, a console summary."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reports.micro_analysis import growth_slopes, ratios_to_reference, score_matrix_check
from reports.records import MICRO_COLUMNS, append_csv_rows, environment, new_run_id

from .case import RAW_SDPA, run_case
from .grid import Grid
from .memory import address_space_limit, available_bytes


def run_grid(grid: Grid, out: str | Path, *, console: Console | None = None, progress: bool = True
             ) -> pd.DataFrame:
    """Run every case of ``grid``, appending each row to ``out`` as soon as it is measured."""
    console = console or Console()
    settings = grid.settings
    run_id = new_run_id("micro")
    env = environment(settings["device"])
    rows = []
    cpu = settings["device"] == "cpu"
    budget = int(float(settings["memory_budget"]) * available_bytes()) if cpu else None
    limit = address_space_limit(budget) if budget else contextlib.nullcontext()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with limit, Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("micro", total=len(grid.cases))
        for case in grid.cases:
            bar.update(task, description=f"{case.spec.label} L={case.lq} {case.dtype} {case.pass_}")
            row = {"run_id": run_id, **run_case(case, check_max_len=settings["check_max_len"],
                                                min_run_time=float(settings["min_run_time"])), **env}
            append_csv_rows(out, [row], MICRO_COLUMNS)
            rows.append(row)
            bar.advance(task)
    frame = pd.DataFrame(rows, columns=list(MICRO_COLUMNS))
    print_summary(frame, console)
    console.print(f"{len(frame)} rows of run {run_id} appended to {out}")
    return frame


def _ms(seconds: object) -> str:
    return "" if pd.isna(seconds) else f"{float(seconds) * 1e3:.2f}"


def print_summary(frame: pd.DataFrame, console: Console) -> None:
    constant = [c for c in ("device", "dtype", "pass", "causal", "mask") if frame[c].nunique() == 1]
    title = ", ".join(f"{c}={frame[c].iloc[0]}" for c in constant) if len(frame) else ""
    table = Table(title=f"micro-benchmark ({title})", header_style="bold")
    varying = [c for c in ("dtype", "pass", "causal", "mask") if c not in constant]
    for column in ("variant", *varying, "L", "status", "median ms", "IQR ms", "peak MiB", "GFLOP/s", "note"):
        table.add_column(column, justify="left" if column in ("variant", "status", "note") else "right",
                         no_wrap=column == "variant")
    for _, r in frame.iterrows():
        ok = r["status"] == "ok"
        table.add_row(r["variant"], *(str(r[c]) for c in varying), str(r["lq"]), r["status"],
                      _ms(r["time_median_s"]), _ms(r["time_iqr_s"]),
                      f"{r['peak_mem_bytes'] / 2**20:.1f}" if ok else "",
                      f"{r['flops_per_s'] / 1e9:.1f}" if ok else "",
                      "" if ok else str(r["reason"])[:50])
    console.print(table)
    _print_slopes(frame, console)
    _print_checks(frame, console)


def _print_slopes(frame: pd.DataFrame, console: Console) -> None:
    slopes = growth_slopes(frame)
    if slopes.empty:
        return
    table = Table(title="cost growth: log-log slope against L (four largest lengths)", header_style="bold")
    for column in ("variant", "dtype", "pass", "lengths", "time slope", "memory slope"):
        table.add_column(column)
    for _, r in slopes.iterrows():
        table.add_row(r["variant"], r["dtype"], r["pass"], r["lengths"], f"{r['time_slope']:.2f}",
                      f"{r['memory_slope']:.2f}")
    console.print(table)


def _print_checks(frame: pd.DataFrame, console: Console) -> None:
    ratios = ratios_to_reference(frame)
    if not ratios.empty:
        longest = ratios[ratios["lq"] == ratios["lq"].max()]
        for _, r in longest[longest["variant"] != "reference"].iterrows():
            console.print(f"L={r['lq']} {r['dtype']} {r['pass']}: {r['variant']:<32} "
                          f"speed {r['speedup']:7.2f}x reference's, peak memory "
                          f"{r['memory_fraction']:.3f}x reference's",
                          highlight=False)
    overhead = ratios_to_reference(frame, reference=RAW_SDPA)
    for _, r in overhead[overhead["variant"] == "sdpa"].iterrows():
        console.print(f"sdpa through attnbench vs raw F.scaled_dot_product_attention at L={r['lq']}: "
                      f"{1 / r['speedup']:.3f}x the time", highlight=False)
    for _, r in score_matrix_check(frame).iterrows():
        verdict = "ok" if r["covers_scores"] else "FAILED"
        console.print(f"memory validation L={r['lq']} {r['dtype']}: reference peak "
                      f"{r['peak_mem_bytes'] / 2**20:.0f} MiB >= score matrix "
                      f"{r['score_bytes'] / 2**20:.0f} MiB: {verdict}", highlight=False)
