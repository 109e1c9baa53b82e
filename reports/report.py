"""``attnbench report <records...> -o <dir>``: a Markdown and a self-contained HTML report.

Writes ``<dir>/report.md`` (GitHub renders it, with the charts as ``<dir>/img/*.png``) and
``<dir>/report.html`` (the same charts embedded, no external files). Inputs are any mix of
micro-benchmark CSV files, JSON records and folders (see ``reports.sources``); a report is always
written for what could be read, and inputs that could not be read are listed at its top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import paired
from .attention_section import attention_blocks
from .calibration import Key, SeedNoise
from .document import IMAGE_DIR, Block, Bullets, Document, Figure, Heading, Table, Text, to_html, to_markdown
from .long_section import long_blocks
from .micro_section import micro_blocks
from .records import ENV_FIELDS
from .runs import runs_frame
from .sources import Collection, collect
from .summary_section import summary_blocks
from .sweep_section import sweep_blocks
from .task_section import capability_blocks, pareto_blocks, task_blocks

TITLE = "attnbench report"


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: int
    problems: list[str]


def write_report(inputs: list[str | os.PathLike], out: str | os.PathLike,
                 calibration: Mapping[Key, SeedNoise] | None = None) -> ReportFiles:
    """Read ``inputs``, build the report, write it under ``out``; problems are listed, never raised.
    ``calibration``: the seed noise of one-seed tests (default: the shipped calibration files)."""
    found = collect(list(inputs))
    doc = build_document(found, calibration)
    out = Path(out)
    images = out / IMAGE_DIR
    images.mkdir(parents=True, exist_ok=True)
    names = {f.name for f in doc.figures}
    for stale in images.glob("*.png"):
        if stale.stem not in names:
            stale.unlink()  # a figure of an earlier report into the same folder
    for figure in doc.figures:
        (images / f"{figure.name}.png").write_bytes(figure.png)
    markdown, page = out / "report.md", out / "report.html"
    markdown.write_text(to_markdown(doc))
    page.write_text(to_html(doc))
    return ReportFiles(markdown, page, len(doc.figures), found.problems)


def build_document(found: Collection, calibration: Mapping[Key, SeedNoise] | None = None) -> Document:
    runs, superseded = runs_frame(found.runs, calibration)
    paired.forget()
    doc = Document(TITLE)
    doc.add(*_summary_blocks(found, runs, superseded))
    doc.add(*summary_blocks(runs))
    doc.add(*task_blocks(runs), *long_blocks(runs), *pareto_blocks(runs), *micro_blocks(found.micro))
    doc.add(*capability_blocks(runs, found.missing), *attention_blocks(runs))
    doc.add(*sweep_blocks(found.trials, found.journals), *_partial_blocks(found, runs))
    doc.add(*_environment_blocks(found))
    _unique_names(doc)
    paired.forget()
    return doc


def _unique_names(doc: Document) -> None:
    seen: dict[str, int] = {}
    for i, block in enumerate(doc.blocks):
        if isinstance(block, Figure):
            count = seen.get(block.name, 0)
            seen[block.name] = count + 1
            if count:
                doc.blocks[i] = replace(block, name=f"{block.name}-{count}")


def _summary_blocks(found: Collection, runs: pd.DataFrame, superseded: int) -> list[Block]:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    statuses = runs["status"].value_counts().to_dict() if not runs.empty else {}
    items = [f"inputs: {', '.join(f'`{p}`' for p in found.inputs) or 'none'}",
             f"training runs: {len(runs)} ({_counts(statuses)})",
             f"sweep trials: {len(found.trials)}; micro-benchmark rows: {len(found.micro)} "
             f"({_counts(found.micro['status'].value_counts().to_dict()) if len(found.micro) else 'none'})",
             f"runs without a record (interrupted or running): {len(found.missing)}"]
    if superseded:
        items.append(f"{superseded} older record(s) of the same run superseded by newer ones")
    if found.ignored:
        ignored = ", ".join(f"{n} {kind}" for kind, n in sorted(found.ignored.items()))
        items.append(f"ignored (not records): {ignored}")
    blocks: list[Block] = [Heading("Summary"), Text(
        f"Generated {now}. Intervals are Student-t 95% intervals over seeds and differences are tested "
        "with Welch's t-test; the t distribution is computed in `reports/stats.py` (regularised "
        "incomplete beta function)."), Bullets(items)]
    if found.problems:
        blocks += [Text(f"**{len(found.problems)} input(s) could not be read** (left out of this report):"),
                   Bullets([f"`{p}`" for p in found.problems])]
    if found.empty:
        blocks.append(Text("Nothing could be read from the inputs: this report is empty."))
    return blocks


def _counts(counts: dict) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


def _partial_blocks(found: Collection, runs: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Partial and failed runs")]
    rows = [[str(r["task"]), str(r["variant"]), str(r["seed"]), str(r["status"]), str(r["reason"] or ""),
             str(r["_source"])] for _, r in runs.iterrows()
            if r["status"] not in ("ok", "unsupported", "equivalent")]
    rows += [[m["task"], m["variant"] or m["key"], m["seed"], "missing", m["reason"], m["source"]]
             for m in found.missing]
    rows += [[str(t["task"]), f"{t['sweep']} trial {t['trial']}", str(t["seed"]), str(t["status"]),
              str(t.get("reason") or ""), str(t["_source"])] for t in found.trials
             if t["status"] not in ("ok", "pruned")]
    failed_cases = found.micro[found.micro["status"].isin(["incorrect", "oom", "error"])]
    if not rows and failed_cases.empty:
        return [*blocks, Text("None: every run that started has a record, and none failed.")]
    if rows:
        blocks.append(Table(["task", "variant", "seed", "status", "reason", "source"], rows))
    if not failed_cases.empty:
        blocks.append(Text(f"{len(failed_cases)} micro-benchmark case(s) incorrect, out of memory or failed: "
                           "see the table at the end of Micro-benchmarks."))
    return blocks


def _cell(value: object) -> str:
    """CSV columns with gaps are read as floats: show 1.0 as 1, a gap as nothing."""
    if pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


ENV_SHOWN = ("env_device", "env_cpu", "env_threads", "env_torch", "env_cuda", "env_cudnn", "env_xformers",
             "env_python", "env_platform", "env_git_commit", "env_schema")


def _environment_blocks(found: Collection) -> list[Block]:
    blocks: list[Block] = [Heading("Environment"), Text(
        "Where and with what every source of records was measured (one row per distinct environment).")]
    parts = [pd.DataFrame([{**r, "source": r["_source"]} for r in [*found.runs, *found.trials]]), found.micro]
    parts = [p.reindex(columns=["source", *ENV_FIELDS]) for p in parts if len(p)]
    if not parts:
        return [*blocks, Text("No records.")]
    envs = pd.concat(parts, ignore_index=True).astype(object)
    rows = []
    for key, group in envs.groupby(["source", *ENV_SHOWN], dropna=False, sort=True):
        stamps = group["env_timestamp"].dropna().astype(str)
        when = f"{stamps.min()} .. {stamps.max()}" if len(stamps) else ""
        rows.append([*(_cell(v) for v in key), str(len(group)), when])
    columns = ["source", *(c.removeprefix("env_") for c in ENV_SHOWN), "records", "measured"]
    return [*blocks, Table(columns, rows)]
