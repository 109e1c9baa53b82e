"""The ``attnbench`` command line. Subcommands grow with the project; each lives in its module."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    try:
        return version("attnbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _cmd_variants(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .capabilities import COLUMNS, capability_rows, markdown_table

    rows = capability_rows()
    if args.markdown:
        print(markdown_table(rows))
        return 0
    console = Console()
    shown = COLUMNS[:-1]  # the oracle limits are sentences: listed under the table
    table = Table(title=f"attnbench attention variants ({len(rows)})", header_style="bold")
    for column in shown:
        table.add_column(column, no_wrap=column == "variant")
    for row in rows:
        table.add_row(*(row[c] for c in shown))
    console.print(table)
    console.print("[bold]oracle limit[/] (where the variant computes softmax(QK^T*scale + mask) V):")
    for row in rows:
        console.print(f"  {row['variant']:<10} {row['oracle limit']}", highlight=False)
    return 0


def _parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``--set KEY=VALUE`` pairs, each value read as YAML; ValueError names a bad pair."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. model.hidden=64), got {pair!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = str(getattr(err, "problem", None) or err).splitlines()[0]
            raise ValueError(f"--set {pair}: the value is not valid YAML ({problem}); to pass it as a "
                             f"string, quote it: --set '{key}=\"{value}\"'") from err
    return overrides


def _path_problem(arg: str, value: str | None, want: str) -> str | None:
    """Why ``value`` cannot be written as a ``want`` ("file" or "folder"), or None when it can."""
    if value is None:
        return None
    path = Path(value)
    if want == "file" and path.is_dir():
        return f"{arg} {value}: is a folder; expected a file path"
    if want == "folder" and path.exists() and not path.is_dir():
        return f"{arg} {value}: is a file; expected a folder"
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        return f"{arg} {value}: {blocked} is a file, so nothing can be written beneath it"
    return None


def _error(command: str, message: object) -> None:
    """A user error: one plain line on stderr (no markup to misread, no wrapping, no traceback)."""
    text = " ".join(str(message).split())
    print(f"attnbench {command}: {text}", file=sys.stderr)


def _refuse(command: str, *problems: str | None) -> bool:
    """Print the first problem as attnbench's one-line error; True when there was one."""
    problem = next((p for p in problems if p), None)
    if problem:
        _error(command, problem)
    return problem is not None


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .train import quiet_lightning, train_and_test

    console = Console()
    if _refuse("train", _path_problem("--out", args.out, "file"),
               _path_problem("--run-dir", args.run_dir, "folder")):
        return 2
    try:
        overrides = _parse_overrides(args.set)
        with quiet_lightning():
            record = train_and_test(args.task, args.variant, data=args.data, seed=args.seed,
                                    config=args.config, overrides=overrides, out=args.out,
                                    run_dir=args.run_dir, progress=not args.no_progress, threads=args.threads)
    except ValueError as err:
        _error("train", err)
        return 2
    if record["status"] != "ok":
        _error("train", f"{args.task} cannot use variant {args.variant!r}: {record['reason']}")
        return 2
    table = Table(title=f"{args.task} / {args.variant} / seed {args.seed} (best-validation checkpoint)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(record["metrics"].items()):
        table.add_row(name, f"{value:.4f}")
    table.add_row("parameters", f"{record['params']:,}")
    table.add_row("train time (s)", f"{record['train_time_s']:.1f}")
    table.add_row("train samples/s", f"{record['samples_per_s'] or 0:.1f}")
    table.add_row("peak memory (MiB)", f"{record['peak_mem_bytes'] / 2**20:.0f} ({record['mem_method']})")
    console.print(table)
    if args.out:
        console.print(f"record written to {args.out}")
    return 0


def _csv_list(kind):
    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return [kind(t) for t in items]
        except ValueError as err:
            message = f"expected comma-separated {kind.__name__} values: {err}"
            raise argparse.ArgumentTypeError(message) from err
    return parse


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def _cmd_micro(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .micro.grid import load_grid
    from .micro.run import run_grid

    console = Console()
    overrides = {"device": args.device, "dtypes": args.dtypes, "batch": args.batch, "heads": args.heads,
                 "head_dim": args.head_dim, "lengths": args.lengths, "passes": args.passes,
                 "causal": args.causal, "masks": args.masks, "lk_ratio": args.lk_ratio,
                 "min_run_time": args.min_run_time,
                 "variants": args.variants}
    if _refuse("micro", _path_problem("--out", args.out, "file")):
        return 2
    try:
        grid = load_grid(args.grid, overrides)
    except ValueError as err:
        _error("micro", err)
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)  # every row records env_threads
    console.print(f"{len(grid.cases)} cases on {grid.settings['device']}; rows appended to {args.out}")
    run_grid(grid, args.out, console=console, progress=not args.no_progress)
    return 0


def _entry_data(pairs: list[str]) -> dict[str, str]:
    """``--data ENTRY=PATH`` pairs; ValueError names a bad pair."""
    data = {}
    for pair in pairs:
        entry, sep, path = pair.partition("=")
        if not sep or not entry.strip() or not path.strip():
            raise ValueError(f"--data expects ENTRY=PATH (e.g. cora=~/planetoid), got {pair!r}")
        path = path.strip()
        data[entry.strip()] = path if path.startswith("package:") else str(Path(path).expanduser())
    return data


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .suite import load_suite, run_suite

    console = Console()
    if _refuse("run", _path_problem("--out", args.out, "folder")):
        return 2
    try:
        suite = load_suite(args.suite, _entry_data(args.data))
    except ValueError as err:
        _error("run", err)
        return 2
    if args.threads is not None:
        suite = dataclasses.replace(suite, threads=args.threads)
    run_suite(suite, args.out or f"runs/suites/{suite.name}", console=console, progress=not args.no_progress,
              jobs=args.jobs)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .sweep import SweepError, load_sweep, make_storage, run_sweep

    console = Console()
    if _refuse("sweep", _path_problem("--out", args.out, "folder")):
        return 2
    try:
        sweep = load_sweep(args.sweep)
        out = Path(args.out or f"runs/sweeps/{sweep.study}")
        make_storage(args.storage, out, sweep.heartbeat)  # no driver, not a URL, unreachable: say so now
    except (ValueError, SweepError) as err:
        _error("sweep", err)
        return 2
    console.print(f"sweep {sweep.study}: {sweep.n_trials} trials of {sweep.task} with {args.workers} "
                  f"worker(s), storage {args.storage or out / 'journal.log'}", highlight=False)
    try:
        best = run_sweep(sweep, out, storage_url=args.storage, workers=args.workers, threads=args.threads,
                         progress=not args.no_progress, console=console)
    except SweepError as err:
        _error("sweep", err)
        return 1
    console.print(f"best trial {best['trial']}: {best['value']:.4f} with {best['variant']} {best['params']}",
                  highlight=False)
    console.print(f"exported as a suite: attnbench run {best['suite']}")
    for variant, where in best["at_grid_edge"].items():
        console.print(f"warning: {variant}'s best {'; '.join(where)}: its optimum may lie outside the grid",
                      highlight=False)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reports.calibration import CalibrationError, load
    from reports.report import write_report

    console = Console()
    if _refuse("report", _path_problem("--out", args.out, "folder")):
        return 2
    try:
        calibration = load(args.calibration) if args.calibration else None
    except CalibrationError as err:
        _error("report", f"--calibration: {err}")
        return 2
    files = write_report(args.records, args.out, calibration)
    console.print(f"report written: {files.markdown} and {files.html} ({files.figures} figures)",
                  highlight=False)
    for problem in files.problems:
        _error("report", problem)
    return 2 if files.problems else 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import yaml

    from reports.calibration import document
    from reports.sources import collect

    if _refuse("calibrate", _path_problem("--out", args.out, "file")):
        return 2
    found = collect(args.records)
    for problem in found.problems:
        _error("calibrate", problem)
    suite = ["--suite", args.suite] if args.suite else []
    command = " ".join(["attnbench calibrate", *args.records, *suite])
    content = document(found.runs, args.suite, command)
    if found.problems or not content["entries"]:
        _error("calibrate", "nothing written: fix the inputs above" if found.problems else
               "no variant has 2 or more seeds of successful runs in the inputs; nothing written")
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Seed noise per task, data, variant and configuration (reports/calibration.py), written by\n"
              f"#   {command}\n")
    out.write_text(header + yaml.safe_dump(content, sort_keys=False, width=110, default_flow_style=None))
    rows = {}
    for entry in content["entries"]:
        rows.setdefault((entry["task"], entry["data"], entry["metric"]), []).append(
            f"{entry['variant']} {entry['sd']:.3g}")
    for (task, data, metric), cells in rows.items():
        print(f"{task} ({data}, {metric} sd over seeds): " + ", ".join(cells))
    print(f"{out}: {len(content['entries'])} entries from seeds "
          + ", ".join(map(str, content["provenance"]["seeds"])))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from reports.data import export, load

    if _refuse("export", _path_problem("--out", args.out, "folder")):
        return 2
    results = load(args.records)
    for problem in results.problems:
        _error("export", problem)
    try:
        written = export(results, args.out, args.format)
    except ValueError as err:
        _error("export", err)
        return 2
    counts = {"runs": len(results.runs), "trials": len(results.trials), "micro": len(results.micro)}
    print(f"exported to {args.out}: " + ", ".join(f"{name} {n} rows" for name, n in counts.items())
          + (f" ({', '.join(p.name for p in written)})" if written else " (nothing to write)"))
    return 2 if results.problems else 0


def _cmd_check(args: argparse.Namespace) -> int:
    from reports.check import run_check
    from reports.check_types import Tolerances

    try:
        tol = Tolerances(speed=args.speed_tol, memory=args.mem_tol, memory_floor_mib=args.mem_floor_mib,
                         accuracy=args.acc_drop, alpha=args.alpha, train_speed=args.train_speed_tol)
    except ValueError as err:
        print(f"attnbench check: {err}", file=sys.stderr)
        return 2
    if not args.records:
        print("attnbench check: give the records to check (files or folders)", file=sys.stderr)
        return 2
    if _refuse("check", _path_problem("--summary", args.summary, "file")):
        return 2
    result = run_check(args.baseline, args.records, tol)
    print(result.markdown)
    if args.summary:
        Path(args.summary).write_text(result.markdown)
    return result.exit_code


def _cmd_baseline(args: argparse.Namespace) -> int:
    from reports.baseline import BaselineError, load, save, summarise, update
    from reports.sources import collect

    if _refuse("baseline", _path_problem("--out", args.out, "file")):
        return 2
    found = collect(args.records)
    for problem in found.problems:
        print(f"attnbench baseline: {problem}", file=sys.stderr)
    if found.problems or found.empty:
        print("attnbench baseline: nothing written (fix the inputs above)" if found.problems
              else "attnbench baseline: no records in the inputs; nothing written", file=sys.stderr)
        return 2
    try:
        summary = summarise(found, args.reference, args.train_reference)
        data = update(load(args.out) if Path(args.out).exists() else None, summary)
    except BaselineError as err:
        print(f"attnbench baseline: {err}", file=sys.stderr)
        return 2
    save(args.out, data)
    for device, entry in summary.items():
        print(f"{args.out}: {device}: {len(entry['micro'])} micro-benchmark configurations, "
              f"{len(entry['runs'])} task/variant entries updated")
    return 0


def _add_report_commands(sub) -> None:
    report = sub.add_parser("report", help="Markdown + HTML report from records (files or folders)")
    report.add_argument("records", nargs="+", help="micro CSV files, JSON records, suite/sweep folders")
    report.add_argument("-o", "--out", default="results/report", help="output folder (default %(default)s)")
    report.add_argument("--calibration", action="append", metavar="FILE",
                        help="seed-noise calibration file(s) for one-seed tests, instead of the shipped "
                             "configs/calibration/*.yaml (attnbench calibrate writes them); repeatable")
    report.set_defaults(func=_cmd_report)
    export = sub.add_parser("export", help="records as tidy tables (runs, trials, micro) in CSV or Parquet")
    export.add_argument("records", nargs="+", help="micro CSV files, JSON records, suite/sweep folders")
    export.add_argument("-o", "--out", default="results/export", help="output folder (default %(default)s)")
    export.add_argument("--format", default="csv", help="csv or parquet (default %(default)s)")
    export.set_defaults(func=_cmd_export)
    calibrate = sub.add_parser("calibrate", help="per-variant seed noise from multi-seed records, for the "
                                                 "report's one-seed tests")
    calibrate.add_argument("records", nargs="+",
                           help="suite folders or JSON records with 2+ seeds per variant")
    calibrate.add_argument("-o", "--out", default="results/calibration.yaml",
                           help="calibration file to write (default %(default)s; the report reads the "
                                "shipped ones from configs/calibration/)")
    calibrate.add_argument("--suite", help="the suite the records come from, for the provenance")
    calibrate.set_defaults(func=_cmd_calibrate)
    check = sub.add_parser("check", help="regression gate: compare records with a baseline (exit 0/1/2)")
    check.add_argument("records", nargs="*", help="micro CSV files, JSON records, suite folders")
    check.add_argument("--baseline", required=True, help="baseline JSON (attnbench baseline)")
    check.add_argument("--speed-tol", type=float, default=0.10,
                       help="flag a time ratio to its same-run reference grown by more (%(default)s)")
    check.add_argument("--mem-tol", type=float, default=0.10,
                       help="flag peak memory grown by more than this fraction (%(default)s) ...")
    check.add_argument("--mem-floor-mib", type=float, default=12.0,
                       help="... and by at least this many MiB (%(default)s: CPU allocator granularity)")
    check.add_argument("--acc-drop", type=float, default=0.01,
                       help="flag a headline-metric drop larger than this, in metric units (%(default)s)")
    check.add_argument("--alpha", type=float, default=0.10,
                       help="with 2+ runs or seeds per side, a change must also be significant at this "
                            "level (one-sided Welch's t-test; %(default)s)")
    check.add_argument("--train-speed-tol", type=float,
                       help="also judge training time per sample relative to the task's 'none' runs, "
                            "flagging growth beyond this fraction (default: not judged, too noisy when "
                            "runs do not share their moment)")
    check.add_argument("--summary", help="also write the Markdown summary to this file")
    check.set_defaults(func=_cmd_check)
    baseline = sub.add_parser("baseline", help="write or update a baseline file from records")
    baseline.add_argument("records", nargs="+", help="micro CSV files, JSON records, suite folders")
    baseline.add_argument("-o", "--out", required=True, help="baseline JSON to create or update")
    baseline.add_argument("--reference", default="reference", help="micro reference variant (reference)")
    baseline.add_argument("--train-reference", default="none", help="training-speed reference variant (none)")
    baseline.set_defaults(func=_cmd_baseline)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _long_running(parser: argparse.ArgumentParser, out_help: str, *, out_default: str | None = None,
                  threads: str = "(default: torch's choice)") -> None:
    """The flags every long-running command shares: where results go, progress, threads."""
    parser.add_argument("--out", default=out_default, help=out_help)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    parser.add_argument("--threads", type=_positive_int, help=f"torch intra-op threads {threads}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnbench",
                                     description="Benchmark suite for attention mechanisms.")
    parser.add_argument("--version", action="version", version=f"attnbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    variants = sub.add_parser("variants", help="print the variant x capability matrix")
    variants.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    variants.set_defaults(func=_cmd_variants)
    train = sub.add_parser("train", help="train one task with one variant, test its best checkpoint")
    train.add_argument("task", help="task name (see tasks.TASK_MODULES)")
    train.add_argument("--variant", required=True, help="attention variant or the task's baseline ('none')")
    train.add_argument("--data", help="folder or file in the task's real format (default: embedded data)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--config", default="quick", help="preset name (quick, full) or a YAML file")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set trainer.max_epochs=3")
    _long_running(train, "write the result record as JSON to this file")
    train.add_argument("--run-dir", help="where logs and checkpoints go (default runs/train/<run id>)")
    train.set_defaults(func=_cmd_train)
    run = sub.add_parser("run", help="run a suite: tasks x variants x seeds, resumable")
    run.add_argument("suite", nargs="?", default="quick", help="suite YAML or shipped name (default quick)")
    _long_running(run, "suite directory (default runs/suites/<suite name>)", threads="per run (default: the "
                  "suite's threads, else torch's choice)")
    run.add_argument("--jobs", type=_positive_int,
                     help="runs at once, each in a worker process (default: the suite's)")
    run.add_argument("--data", action="append", default=[], metavar="ENTRY=PATH",
                     help="data for a suite entry, e.g. --data cora=~/planetoid (a path or package:<module>)")
    run.set_defaults(func=_cmd_run)
    sweep = sub.add_parser("sweep", help="an Optuna study over a task's variants and hyperparameters")
    sweep.add_argument("sweep", help="sweep YAML file (see configs/sweeps/)")
    _long_running(sweep, "sweep directory (default runs/sweeps/<study>)",
                  threads="per trial (default: torch's choice)")
    sweep.add_argument("--storage", help="RDB URL for multi-machine workers, e.g. postgresql://user@host/db "
                                         "(needs pip install -e '.[postgres]'; default: a journal file)")
    sweep.add_argument("--workers", type=_positive_int, default=1, help="local worker processes (default 1)")
    sweep.set_defaults(func=_cmd_sweep)
    micro = sub.add_parser("micro", help="speed and memory micro-benchmarks of the variants")
    micro.add_argument("--grid", default="cpu", help="grid YAML file or shipped name (cpu, cuda, smoke)")
    micro.add_argument("--variants", type=_csv_list(str), help="e.g. reference,sdpa,local")
    micro.add_argument("--lengths", type=_csv_list(int), help="e.g. 256,512,1024")
    micro.add_argument("--dtypes", type=_csv_list(str), help="float16,bfloat16,float32,float64")
    micro.add_argument("--passes", type=_csv_list(str), help="forward,backward")
    micro.add_argument("--causal", type=_csv_list(_bool), help="false,true")
    micro.add_argument("--masks", type=_csv_list(str), help="none,key_padding")
    micro.add_argument("--device", choices=("cpu", "cuda"))
    micro.add_argument("--batch", type=int)
    micro.add_argument("--heads", type=int)
    micro.add_argument("--head-dim", type=int)
    micro.add_argument("--lk-ratio", type=float, help="Lk / Lq (cross-attention shapes)")
    micro.add_argument("--min-run-time", type=float, help="seconds per blocked_autorange")
    _long_running(micro, "CSV the rows are appended to (default %(default)s)",
                  out_default="results/micro.csv")
    micro.set_defaults(func=_cmd_micro)
    _add_report_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
