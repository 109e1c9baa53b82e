"""The report's at-a-glance table and verdicts (reports/summary_section.py)."""

from __future__ import annotations

import random

from reports.document import Document, to_markdown
from reports.runs import runs_frame
from reports.summary_section import ranks, readable, summary_blocks

from .test_paired import _record


def test_ranks_share_ties_and_follow_the_metrics_direction() -> None:
    assert ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.1}, maximise=True) == {"a": 1.5, "c": 1.5, "b": 3,
                                                                             "d": 4}
    assert ranks({"a": 2.0, "b": 1.0}, maximise=False) == {"b": 1, "a": 2}


def test_numbers_read_as_three_significant_digits_without_exponents() -> None:
    assert [readable(v) for v in (1234.5, 84.0, 87.94, 0.7571, 0.0)] == ["1,234", "84.0", "87.9", "0.757",
                                                                          "0.000"]


def test_one_table_ranks_every_variant_on_every_task_and_each_task_gets_a_verdict() -> None:
    rng = random.Random(1)
    draws = {p: [1.0 if rng.random() < p else 0.0 for _ in range(2000)] for p in (0.5, 0.6, 0.8, 0.9)}

    def run(task: str, variant: str, p: float) -> dict:
        speed = {"gat": 100.0, "luong": 300.0}.get(variant, 200.0)
        record = _record(variant, draws[p], samples_per_s=speed)
        return {**record, "task": task, "run_id": f"{task}-{variant}"}

    records = [run("graph", "none", 0.5), run("graph", "gat", 0.8), run("graph", "luong", 0.8),
               run("graph", "linear", 0.6), run("recall", "none", 0.5), run("recall", "gat", 0.9),
               run("recall", "linear", 0.5)]
    text = to_markdown(Document("t", summary_blocks(runs_frame(records, calibration={})[0])))
    assert ("| variant | graph (embedded data): test/acc | recall (embedded data): test/acc | "
            "average rank (tasks) |") in text
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in text.splitlines()
            if line.startswith("| ")}
    assert rows["gat"][0].strip().endswith("(1.5) ★ ▲") and rows["gat"][1].strip().endswith("(1) ★ ▲")
    assert rows["luong"][0].strip().endswith("(1.5) ≈ ▲")  # the same accuracy: within noise of the best
    assert rows["linear"][1].strip() == rows["none"][1].strip() == "0.488 (2.5)"  # ties none: no mark
    assert rows["gat"][2].strip() == "1.25 (2)" and rows["luong"][2].strip() == "1.50 (1)"
    verdicts = [line for line in text.splitlines() if line.startswith("- **")]
    graph, recall = verdicts
    assert "best `gat` (test/acc 0.799)" in graph and "within noise of it: `luong`" in graph
    assert graph.endswith("the cheapest of these by training time per sample (throughput, machine shared "
                          "as recorded): `luong`.")
    assert "best `gat`" in recall and "every other variant is significantly worse" in recall
    order = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")][1:]
    assert order.index("gat") < order.index("linear") < order.index("luong")  # 2 tasks before 1
    assert summary_blocks(runs_frame([])[0]) == []
