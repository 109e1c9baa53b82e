"""``attnbench check`` and ``baseline``: planted regressions fail, honest repeats pass, bad input is 2."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from reports.baseline import BaselineError, load, summarise, update
from reports.check import judge_accuracy, judge_memory, judge_ratio, run_check
from reports.check_types import Tolerances
from reports.sources import collect

from ._records import run_record, write_json_atomic, write_micro, write_suite

NOISE = 0.03  # 3% timing noise per case and run
ACCS = {"none": [0.800, 0.805, 0.810], "gat": [0.850, 0.853, 0.848]}


def _baseline(tmp_path, *records) -> str:
    path = tmp_path / "baseline.json"
    assert main(["baseline", *map(str, records), "-o", str(path)]) == 0
    return str(path)


@pytest.fixture()
def micro_baseline(tmp_path):
    return _baseline(tmp_path, write_micro(tmp_path / "base.csv", noise=NOISE))


def _check(capsys, baseline: str, *records, extra=()) -> tuple[int, str]:
    code = main(["check", "--baseline", baseline, *map(str, records), *extra])
    return code, capsys.readouterr().out


def test_honest_repeat_passes(tmp_path, micro_baseline, capsys) -> None:
    code, out = _check(capsys, micro_baseline, write_micro(tmp_path / "again.csv", noise=NOISE))
    assert code == 0, out
    assert "✅" in out and "speed" in out and "n=3/3, one-sided t-test" in out


def test_planted_speed_regression_fails(tmp_path, micro_baseline, capsys) -> None:
    slow = write_micro(tmp_path / "slow.csv", noise=NOISE, slower={"sdpa": 1.2})
    code, out = _check(capsys, micro_baseline, slow)
    assert code == 1
    regressions = out.split("### Regressions", 1)[1].split("<details>", 1)[0]
    assert "| cpu | speed | `sdpa|" in regressions.replace("\\|", "|") and "linear" not in regressions


def test_a_shift_of_every_ratio_is_removed(tmp_path, micro_baseline, capsys) -> None:
    # the reference measured 15% slow in every run: all other ratios drop together
    code, out = _check(capsys, micro_baseline,
                       write_micro(tmp_path / "ref.csv", noise=NOISE, slower={"reference": 1.15}))
    assert code == 0, out
    assert "moved by 0.87" in out and "together" in out and "common shift 0.87" in out


def test_few_variants_are_judged_on_raw_ratios(tmp_path, capsys) -> None:
    few = ("reference", "sdpa", "linear")
    baseline = _baseline(tmp_path, write_micro(tmp_path / "a.csv", noise=NOISE, variants=few))
    code, out = _check(capsys, baseline, write_micro(tmp_path / "b.csv", noise=NOISE, variants=few,
                                                     slower={"linear": 1.2}))
    assert code == 1 and "fewer than 5 variants: raw ratios" in out


def test_everything_slower_is_not_a_regression(tmp_path, micro_baseline, capsys) -> None:
    # a slower machine (or a busier one) slows the reference too: ratios do not move
    slower = dict.fromkeys(("reference", "sdpa", "linear", "local", "performer"), 1.7)
    code, out = _check(capsys, micro_baseline, write_micro(tmp_path / "busy.csv", noise=NOISE, slower=slower))
    assert code == 0, out


def test_planted_memory_regression_fails(tmp_path, micro_baseline, capsys) -> None:
    code, out = _check(capsys, micro_baseline,
                       write_micro(tmp_path / "big.csv", noise=NOISE, bigger={"linear": 1.3}))
    assert code == 1
    assert "| cpu | memory | `linear|" in out.replace("\\|", "|") and "1.30x" in out


def test_case_that_stops_running_is_a_regression(tmp_path, micro_baseline, capsys) -> None:
    code, out = _check(capsys, micro_baseline,
                       write_micro(tmp_path / "oom.csv", noise=NOISE, status={"linear": "oom"}))
    assert code == 1 and "stopped running" in out and "oom at L=1024" in out


def test_accuracy_drop_outside_the_seed_spread_fails(tmp_path, capsys) -> None:
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", ACCS))
    honest = write_suite(tmp_path / "b", ACCS)
    assert _check(capsys, baseline, honest)[0] == 0
    dropped = {"none": ACCS["none"], "gat": [v - 0.02 for v in ACCS["gat"]]}
    code, out = _check(capsys, baseline, write_suite(tmp_path / "c", dropped))
    assert code == 1 and "| cpu | accuracy | `graph|embedded|gat` |" in out.replace("\\|", "|")
    assert "-0.0200 test/acc" in out


def test_accuracy_drop_inside_the_seed_spread_passes(tmp_path, capsys) -> None:
    noisy = {"none": [0.70, 0.80, 0.90], "gat": [0.75, 0.85, 0.95]}
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", noisy))
    dropped = {"none": noisy["none"], "gat": [0.78, 0.80, 0.91]}  # 2 points lower, seeds spread 10
    code, out = _check(capsys, baseline, write_suite(tmp_path / "b", dropped))
    assert code == 0, out


def test_training_memory_only_judged_when_measured_per_run(tmp_path, capsys) -> None:
    gpu = "NVIDIA H100 80GB HBM3"
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", ACCS, device=gpu, peak=2**30))
    code, out = _check(capsys, baseline, write_suite(tmp_path / "b", ACCS, device=gpu, peak=1.3 * 2**30))
    assert code == 1 and "training memory" in out
    cpu = _baseline(tmp_path / "cpu", write_suite(tmp_path / "c", ACCS, peak=2**30))
    assert _check(capsys, cpu, write_suite(tmp_path / "d", ACCS, peak=1.3 * 2**30))[0] == 0


def test_bad_inputs_exit_2(tmp_path, micro_baseline, capsys) -> None:
    records = write_micro(tmp_path / "ok.csv", runs=1)
    code, out = _check(capsys, str(tmp_path / "absent.json"), records)
    assert code == 2 and "baseline file not found" in out
    assert _check(capsys, micro_baseline, tmp_path / "absent.csv")[0] == 2
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, out = _check(capsys, micro_baseline, other)
    assert code == 2 and "not a micro-benchmark record file" in out
    gpu = write_micro(tmp_path / "gpu.csv", runs=1, device="NVIDIA A100")
    code, out = _check(capsys, micro_baseline, gpu)
    assert code == 2 and "no baseline for device 'NVIDIA A100'" in out
    not_baseline = tmp_path / "x.json"
    not_baseline.write_text(json.dumps({"devices": {}}))
    assert _check(capsys, str(not_baseline), records)[0] == 2
    assert main(["check", "--baseline", micro_baseline, "--alpha", "2", str(records)]) == 2
    other_grid = write_micro(tmp_path / "grid.csv", runs=1, lengths=(4096,), variants=("linear",))
    code, out = _check(capsys, micro_baseline, other_grid)
    assert code == 2 and "nothing compared" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = _check(capsys, micro_baseline, empty)
    assert code == 2 and "no micro-benchmark rows or training runs" in out


def test_baseline_update_keeps_other_devices(tmp_path) -> None:
    path = _baseline(tmp_path, write_micro(tmp_path / "cpu.csv", runs=1))
    assert main(["baseline", str(write_micro(tmp_path / "gpu.csv", runs=1, device="NVIDIA H100")),
                 "-o", path]) == 0
    assert sorted(load(path)["devices"]) == ["NVIDIA H100", "cpu"]
    found = collect([tmp_path / "cpu.csv"])
    with pytest.raises(BaselineError, match="references"):
        update(load(path), summarise(found, "sdpa", "none"))
    broken = tmp_path / "broken.csv"
    broken.write_text("x\n")
    assert main(["baseline", str(broken), "-o", path]) == 2


def test_training_throughput_is_judged_only_when_asked(tmp_path, capsys) -> None:
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", ACCS))
    slow = write_suite(tmp_path / "b", {"none": ACCS["none"]})
    write_suite(slow, {"gat": ACCS["gat"]}, samples_per_s=700.0)  # 1.43x the time per sample
    code, out = _check(capsys, baseline, slow)
    assert code == 0 and "not judged (enable with --train-speed-tol)" in out
    code, out = _check(capsys, baseline, slow, extra=["--train-speed-tol", "0.2"])
    assert code == 1 and "| cpu | training speed | `graph|embedded|gat` |" in out.replace("\\|", "|")


def test_config_change_is_not_compared(tmp_path, capsys) -> None:
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", ACCS))
    changed = write_suite(tmp_path / "b", {"gat": [0.5, 0.5, 0.5]}, config={"model": {"hidden": 64}})
    write_suite(changed, {"none": ACCS["none"]})
    code, out = _check(capsys, baseline, changed)
    assert code == 0 and "configuration changed" in out
    only_changed = write_suite(tmp_path / "c", {"gat": [0.5, 0.5, 0.5]}, config={"model": {"hidden": 64}})
    assert _check(capsys, baseline, only_changed)[0] == 2  # nothing left to compare


def test_variant_that_becomes_unsupported_fails(tmp_path, capsys) -> None:
    baseline = _baseline(tmp_path, write_suite(tmp_path / "a", ACCS))
    records = tmp_path / "b"
    write_suite(records, {"none": ACCS["none"]})
    for seed in range(3):
        write_json_atomic(records / "records" / f"graph__gat__s{seed}.json",
                          run_record("graph", "gat", seed, 0.0, status="unsupported", reason="refused"))
    code, out = _check(capsys, baseline, records)
    assert code == 1 and "run status" in out and "refused" in out


def test_judges() -> None:
    tol = Tolerances()
    limits = (tol.speed, tol.alpha)
    assert judge_ratio([[0.0, 0.01], [0.0, -0.01]], [[0.2, 0.21], [0.2, 0.19]], *limits)[0] == "regression"
    assert judge_ratio([[0.0, 0.01]], [[0.05, 0.06]], *limits)[0] == "ok"  # 5% slower: inside the tolerance
    verdict, _, note = judge_ratio([[0.0]], [[0.2]], *limits)
    assert verdict == "regression" and "tolerance only" in note
    assert judge_ratio([[0.3, 0.31]], [[0.0, 0.01]], *limits)[0] == "improved"
    assert judge_ratio([[0.0, 0.3]], [[0.25, 0.5]], *limits)[0] == "ok"  # 28% slower but within the noise
    assert judge_accuracy([0.8, 0.81, 0.79], [0.78, 0.79, 0.77], "max", tol)[0] == "regression"
    assert judge_accuracy([1.0, 1.01, 0.99], [1.02, 1.03, 1.01], "min", tol)[0] == "regression"  # a loss
    assert judge_memory(100 * 2**20, 130 * 2**20, tol) == "regression"
    assert judge_memory(10 * 2**20, 13 * 2**20, tol) == "ok"  # below the 12 MiB floor
    with pytest.raises(ValueError, match="alpha"):
        Tolerances(alpha=0.0)


def test_summary_file_for_pr_comments(tmp_path, micro_baseline) -> None:
    summary = tmp_path / "summary.md"
    result = run_check(micro_baseline, [write_micro(tmp_path / "again.csv", noise=NOISE)], Tolerances())
    assert main(["check", "--baseline", micro_baseline, str(tmp_path / "again.csv"),
                 "--summary", str(summary)]) == result.exit_code == 0
    assert summary.read_text().startswith("## attnbench check: ✅")
