"""The report's long-context section: accuracy and step cost against length, crossovers, oom cells."""

from __future__ import annotations

from reports.document import Document, Figure, to_markdown
from reports.long_section import long_blocks
from reports.runs import runs_frame

from ._records import run_record

LENGTHS = (256, 512, 1024)


def _long(variant: str, length: int, acc: float, seconds: float, mib: float, *, seed: int = 0,
          shared: int = 1) -> dict:
    record = run_record("recall", variant, seed, acc, config={"data": {"seq_len": length}})
    return {**record, "dataset": f"recall-{length}", "seq_len": length,
            "step_cost": {"time_median_s": seconds, "peak_mem_bytes": mib * 2**20, "concurrent_runs": shared}}


def _records(shared: int = 1) -> list[dict]:
    records = []
    for L in LENGTHS:
        quadratic = (L / 256) ** 2
        records += [_long("sdpa", L, 0.99, 0.01 * quadratic, 10 * quadratic, shared=shared),
                    _long("reference", L, 0.99, 0.02 * quadratic, 20 * quadratic),
                    _long("none", L, 0.10, 0.005, 2.0)]
        # linear: time and memory grow with L, cheaper than sdpa from 512 on
        records.append(_long("linear", L, 0.60 - 0.1 * LENGTHS.index(L), 0.02 * L / 256, 20 * L / 256))
        records.append(_long("uniform", L, 0.99 if L == 256 else 0.2, 0.01, 1.0))  # ties the best once
    records.append({**run_record("recall", "local", 0, 0.0, status="oom", reason="out of memory"),
                    "dataset": "recall-1024", "seq_len": 1024})
    records += [_long("local", L, 0.9, 0.015 * L / 256, 12 * L / 256) for L in LENGTHS[:2]]
    return records


def _text(records: list[dict]) -> tuple[str, list]:
    blocks = long_blocks(runs_frame(records)[0])
    return to_markdown(Document("t", blocks)), blocks


def test_accuracy_and_cost_tables_per_length_with_oom_cells() -> None:
    text, blocks = _text(_records())
    assert "### recall: accuracy and cost against length" in text
    assert "| variant | L=256 | L=512 | L=1024 |" in text
    assert "| linear | 0.6 | 0.5 | 0.4 |" in text
    assert "| local | 0.9 | 0.9 | oom |" in text
    assert "| sdpa | **0.99** | **0.99** | **0.99** |" in text  # the best attention variant per length
    assert "| none | 0.1 | 0.1 | 0.1 |" in text  # the baseline and the control are never marked best
    assert "| uniform | 0.99 | 0.2 | 0.2 |" in text
    assert "| sdpa | 10 / 10 | 40 / 40 | 160 / 160 |" in text  # ms / MiB
    assert {b.name for b in blocks if isinstance(b, Figure)} == {"long-recall-metric", "long-recall-cost",
                                                                "long-recall-tradeoff"}
    assert "shared the machine" not in text


def test_the_length_from_which_an_efficient_variant_is_cheaper_than_sdpa_and_what_it_gives_up() -> None:
    text, _ = _text(_records())
    linear = next(line for line in text.splitlines() if line.startswith("| linear | L="))
    # 20 ms vs 10 ms at 256; 40 vs 40 at 512 (not cheaper); 80 vs 160 at 1024; memory the same
    assert linear.split("|")[2:6] == [" L=1024 ", " +0.59 ", " L=1024 ", " +0.59 "]
    assert linear.split("|")[6:8] == [" 1.00 ", " 1.00 "]  # log-log slopes: linear in L
    local = next(line for line in text.splitlines() if line.startswith("| local |") and "L=" in line)
    assert " not up to L=1024 " in local.split("|")[2]  # it ran out of memory at the longest length
    assert "| sdpa | L=" not in text and "| none | L=" not in text  # only efficient variants


def test_costs_measured_while_runs_shared_the_machine_are_flagged() -> None:
    text, _ = _text(_records(shared=2))
    assert "Step costs measured while up to 2 runs shared the machine" in text


def test_no_section_without_two_lengths_of_a_task() -> None:
    assert long_blocks(runs_frame([_long("sdpa", 256, 0.9, 0.1, 1.0)])[0]) == []
    assert long_blocks(runs_frame([run_record("graph", "gat", 0, 0.8)])[0]) == []


def test_a_time_win_inside_the_timers_spread_is_not_counted_cheaper() -> None:
    def with_iqr(record: dict, iqr: float) -> dict:
        return {**record, "step_cost": {**record["step_cost"], "time_iqr_s": iqr}}

    records = []
    for L in (256, 512):
        records.append(with_iqr(_long("sdpa", L, 0.99, 0.100, 10.0), 0.010))
        # 95 ms against 100 ms, but each median +- IQR/2 overlaps the other's: not a measured win
        records.append(with_iqr(_long("linear", L, 0.6, 0.095, 5.0), 0.010 if L == 256 else 0.002))
    text, _ = _text(records)
    assert "| sdpa | 100 (IQR 10) / 10 | 100 (IQR 10) / 10 |" in text
    linear = next(line for line in text.splitlines() if line.startswith("| linear | not") or
                  line.startswith("| linear | L="))
    assert linear.split("|")[2] == " not up to L=512 "  # 95 + 1 is not below 100 - 5 at 512 either
    assert linear.split("|")[4] == " L=256 "  # memory has no timer noise: 5 MiB < 10 MiB counts
