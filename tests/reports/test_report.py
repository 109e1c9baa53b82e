"""``attnbench report``: inputs of every kind, the statistics in the tables, pictures, problems listed."""

from __future__ import annotations

import json
import re

import pytest

from bench.cli import main
from reports.document import Document, Figure, Heading, Table, Text, to_html, to_markdown
from reports.micro_section import micro_blocks
from reports.records import MICRO_COLUMNS, read_csv_records
from reports.report import build_document, write_report
from reports.runs import runs_frame
from reports.sources import collect
from reports.stats import mean_interval
from reports.task_section import task_blocks

from ._records import attention_file, run_record, write_json_atomic, write_micro, write_suite, write_sweep

ACCS = {"none": [0.80, 0.81, 0.79], "gat": [0.85, 0.86, 0.84], "mlp": [0.60, 0.62, 0.61]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    suite = write_suite(root / "suite", ACCS)
    unsupported = run_record("graph", "sdpa", 0, 0.0, status="unsupported", reason="sdpa needs sequences")
    write_json_atomic(suite / "records" / "graph__sdpa__s0.json", unsupported)
    (suite / "runs" / "graph__gatv2__s0" / "checkpoints").mkdir(parents=True)  # interrupted, no record
    (suite / "runs" / "graph__gat__s0" / "logs").mkdir(parents=True)
    (suite / "runs" / "graph__gat__s0" / "logs" / "metrics.csv").write_text("epoch,step,val/acc\n0,1,0.5\n")
    micro = write_micro(root / "micro.csv", runs=2)
    sweep = write_sweep(root / "sweep")
    bad_json = root / "broken.json"
    bad_json.write_text("{not json")
    bad_csv = root / "other.csv"
    bad_csv.write_text("a,b\n1,2\n")
    return {"suite": suite, "micro": micro, "sweep": sweep, "bad_json": bad_json, "bad_csv": bad_csv}


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = [inputs["suite"], inputs["micro"], inputs["sweep"], inputs["bad_json"], inputs["bad_csv"]]
    code = main(["report", *map(str, paths), "-o", str(out)])
    return {"code": code, "out": out, "md": (out / "report.md").read_text(),
            "html": (out / "report.html").read_text()}


def test_report_is_written_with_every_section(report) -> None:
    for section in ("Summary", "Tasks", "Accuracy against cost", "Micro-benchmarks", "Capability matrix",
                    "Attention maps", "Sweeps", "Partial and failed runs", "Environment"):
        assert f"## {section}" in report["md"]
        assert f">{section}</h2>" in report["html"]


def test_unreadable_inputs_are_named_and_exit_2(report, inputs) -> None:
    assert report["code"] == 2
    for name in ("bad_json", "bad_csv"):
        assert str(inputs[name]) in report["md"]
    assert "not valid JSON" in report["md"] and "not a micro-benchmark record file" in report["md"]


def test_any_folder_is_searched_and_known_non_records_counted(tmp_path) -> None:
    run_dir = tmp_path / "a" / "run-gat-s0"
    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    examples = attention_file(run_dir / "attention.json", "pooling")
    write_json_atomic(tmp_path / "a" / "gat-s0.json", run_record("graph", "gat", 0, 0.8,
                                                                 attention_file=str(examples)))
    (logs / "metrics.csv").write_text("epoch,step,val/acc\n0,1,0.5\n")
    write_micro(tmp_path / "a" / "micro.csv", runs=1)
    found = collect([tmp_path, tmp_path / "a" / "micro.csv"])
    assert found.problems == [] and len(found.runs) == 1 and len(found.micro) == 15
    assert dict(found.ignored) == {"Lightning CSV log": 1, "attention examples file": 1,
                                   "repeated micro-benchmark row": 15}


def test_markdown_images_exist_and_html_embeds_them(report) -> None:
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+\.png)\)", report["md"])
    assert len(images) >= 5
    for image in images:
        assert (report["out"] / image).stat().st_size > 1000
    assert report["html"].count('src="data:image/png;base64,') == len(images)
    assert not re.search(r"<script|<link|src=\"http|url\(", report["html"])  # self-contained, no scripts


def test_statistics_over_seeds_and_significance(report) -> None:
    glance, tasks = report["md"].split("\n## Tasks\n")
    row = next(line for line in tasks.splitlines() if line.startswith("| gat |"))
    assert mean_interval(ACCS["gat"]).text() in row and "★" in row  # best mean marked
    assert "significant" in row and "not significant" not in row
    assert "| gat | 0.850 (1) ★ ▲ | 1.00 (1) |" in glance  # and first at a glance
    mlp = next(line for line in tasks.splitlines() if line.startswith("| mlp |"))
    assert "▼" in mlp and "-0.190" in mlp  # significantly worse than none, by 0.19


def test_gaps_partial_runs_and_sweeps(report) -> None:
    assert "| this variant needs sequences | graph: sdpa |" in report["md"]  # a reason and its cells
    assert "| graph | gatv2 | 0 | missing | no record: interrupted or still running" in report["md"]
    assert "### tiny (graph)" in report["md"] and "fANOVA" in report["md"]
    assert "5 trials: 4 complete, 1 pruned" in report["md"]


def test_environment_names_every_source(report, inputs) -> None:
    env = report["md"].split("## Environment", 1)[1]
    for name in ("suite", "micro", "sweep"):
        assert f"| {inputs[name]} | cpu | test CPU | 1 |" in env


def test_micro_slopes_ratios_and_gpu_utilisation(tmp_path) -> None:
    frame = read_csv_records([write_micro(tmp_path / "gpu.csv", runs=1, device="NVIDIA H100 80GB HBM3")],
                             MICRO_COLUMNS).assign(source="x")
    text = to_markdown(Document("t", micro_blocks(frame)))
    linear = next(line for line in text.splitlines() if line.startswith("| linear |"))
    cells = [c.strip() for c in linear.split("|")]
    assert cells[3] == "1.00" and cells[4] == "1.00"  # time and memory slopes of a linear variant
    assert cells[5].startswith("5.00x at L=1024") and cells[8] == "40.0%"
    assert "achieved TFLOP/s" not in text  # that is in the figure, whose caption names the config
    assert "NVIDIA H100 80GB HBM3 float32 forward" in text


def test_single_seed_has_no_interval(tmp_path) -> None:
    frame, _ = runs_frame([run_record("graph", "gat", 0, 0.7), run_record("graph", "none", 0, 0.6)])
    text = to_markdown(Document("t", task_blocks(frame)))
    assert "0.700 (n=1)" in text and "n/a (n=1 vs 1, no shared test items: needs 2 seeds each)" in text


def test_speed_shared_with_concurrent_runs_is_said() -> None:
    alone = [run_record("graph", "gat", 0, 0.7), run_record("graph", "none", 0, 0.6)]
    shared = [{**r, "concurrent_runs": 2} for r in alone]
    assert "runs at once" not in to_markdown(Document("t", task_blocks(runs_frame(alone)[0])))
    assert "up to 2 runs at once" in to_markdown(Document("t", task_blocks(runs_frame(shared)[0])))


def test_newer_record_of_a_run_supersedes_older(tmp_path) -> None:
    old = run_record("graph", "gat", 0, 0.5)
    new = {**run_record("graph", "gat", 0, 0.9), "env_timestamp": "2027-01-01T00:00:00+00:00"}
    frame, superseded = runs_frame([new, old])
    assert superseded == 1 and frame["metric:test/acc"].tolist() == [0.9]


def test_attention_maps_of_every_kind(tmp_path) -> None:
    records = []
    for task, kind in (("translation", "alignment"), ("sentiment", "pooling"), ("captioning", "regions")):
        for variant in ("additive", "luong"):
            path = attention_file(tmp_path / f"{task}-{variant}.json", kind)
            records.append(run_record(task, variant, 0, 0.5, attention_file=str(path)))
    records.append(run_record("vqa", "additive", 0, 0.5, attention_file=str(tmp_path / "absent.json")))
    doc = build_document(_collection(tmp_path, records))
    names = [f.name for f in doc.figures if f.name.startswith("attention-")]
    assert len(names) == 3 and all(f.png.startswith(b"\x89PNG") for f in doc.figures)
    text = to_markdown(doc)
    assert "alignment attention" in text and "pooling attention" in text and "regions attention" in text
    assert "absent.json" in text  # an unreadable attention file is reported, not drawn


def _collection(tmp_path, records):
    for i, record in enumerate(records):
        write_json_atomic(tmp_path / "records" / f"r{i}.json", record)
    return collect([tmp_path / "records"])


def test_nothing_readable_still_writes_a_report(tmp_path) -> None:
    files = write_report([tmp_path / "missing.csv"], tmp_path / "out")
    assert files.problems == [f"{tmp_path / 'missing.csv'}: not found"]
    text = files.markdown.read_text()
    assert "Nothing could be read" in text and "not found" in text


def test_schema_mismatch_is_a_problem(tmp_path) -> None:
    record = run_record("graph", "gat", 0, 0.5)
    del record["params"]
    path = write_json_atomic(tmp_path / "r.json", record)
    write_json_atomic(tmp_path / "old.json", {**run_record("graph", "gat", 1, 0.5), "env_schema": 0})
    found = collect([path, tmp_path / "old.json"])
    assert found.problems[0] == f"{path}: schema mismatch: missing ['params']"
    assert "env_schema 0" in found.problems[1]


def test_document_renders_inline_marks_and_escapes() -> None:
    doc = Document("t <x>", [Heading("A: b / c"), Text("use `a|b` and **c** <d>"),
                             Table(["x"], [["1|2"]]), Figure("f", b"\x89PNG", "cap")])
    markdown, page = to_markdown(doc), to_html(doc)
    assert "- [A: b / c](#a-b--c)" in markdown and "| 1\\|2 |" in markdown and "![cap](img/f.png)" in markdown
    assert '<h2 id="a-b--c">' in page and "<code>a|b</code> and <strong>c</strong> &lt;d&gt;" in page
    assert "<title>t &lt;x&gt;</title>" in page


def test_report_json_inputs_given_one_by_one(inputs, tmp_path) -> None:
    files = sorted((inputs["suite"] / "records").glob("*.json"))
    out = write_report(files, tmp_path / "out")
    assert out.problems == []
    assert json.loads(files[0].read_text())["task"] in out.markdown.read_text()


def test_a_sweep_with_several_training_seeds_shows_one_row_per_trial(tmp_path) -> None:
    from reports.sweep_section import sweep_blocks

    records = []
    for trial, (variant, values) in enumerate([("gat", (0.6, 0.8)), ("dot", (0.75, 0.75)), ("gat", (0.5,))]):
        for seed, value in enumerate(values):
            base = {"sweep": "two", "trial": trial, "params": {"variant": variant}, "train_seeds": [0, 1]}
            extra = {"objective": sum(values) / 2} if len(values) == 2 else {}
            records.append({**run_record("graph", variant, seed, value), **base, **extra})
    text = to_markdown(Document("t", sweep_blocks(records, [])))
    assert "3 trials: 2 complete, 0 pruned, 1 other (failed: 2 1 of 2 seeds finished)" in text
    assert "the mean of 2 training seeds per trial" in text
    gat = next(line for line in text.splitlines() if line.startswith("| gat |"))
    assert "| 0 | 0.7000 | 2 |" in gat  # trial 0's mean, not seed 1's 0.8; trial 2 counted, unfinished


def test_a_reason_shared_by_several_cells_is_listed_once_with_them() -> None:
    from reports.task_section import capability_blocks, shared_reason

    assert shared_reason("'sdpa' is dense attention; gat takes edges", "sdpa") == \
        "this variant is dense attention; gat takes edges"
    assert shared_reason("gat is graph attention (gat, gatv2)", "gat") == \
        "this variant is graph attention (gat, gatv2)"
    records = [run_record("graph", v, 0, 0.0, status="unsupported", reason=f"'{v}' is dense attention")
               for v in ("sdpa", "linear")]
    records += [run_record("sentiment", v, 0, 0.0, status="unsupported", reason=f"{v} is graph attention")
                for v in ("gat", "dot")]
    text = to_markdown(Document("t", capability_blocks(runs_frame(records)[0], [])))
    assert "| 1 | this variant is graph attention | sentiment: dot, gat |" in text
    assert "| 2 | this variant is dense attention | graph: linear, sdpa |" in text
    assert "| 3 |" not in text
