"""Calibrated seed noise (reports/calibration.py) and the one-seed test that uses it (reports/verdicts.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.protocol import items_entry
from reports.calibration import CalibrationError, SeedNoise, document, load, read
from reports.document import Document, to_markdown
from reports.paired import paired_bootstrap
from reports.records import write_json_atomic
from reports.runs import config_tag, runs_frame, variant_stats
from reports.task_section import task_blocks
from reports.verdicts import calibrated, difference

from ._records import run_record
from .test_paired import _items

CONFIG = {"model": {"hidden": 8}}
CFG = config_tag(CONFIG)


def _seeded(variant: str, correct: list[float], seed: int = 0) -> dict:
    record = run_record("graph", variant, seed, sum(correct) / len(correct), config=CONFIG)
    record["test_items"] = items_entry({"kind": "mean", "scale": 1.0, "values": correct,
                                        "keys": list(range(len(correct)))}, "test/acc", record["metrics"])
    record["protocol"] = {"lr": 0.01, "lr_source": "preset optim.lr", "train_steps": 50}
    record["convergence"] = {"converged": True}
    return {**record, "run_id": f"{variant}-{seed}"}


def _accuracy(rng: random.Random, p: float, n: int = 3000) -> list[float]:
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def _noise(sd: float, n: int = 3) -> SeedNoise:
    return SeedNoise(sd, n, "test-calibration, seeds 3, 4, 5")


def _key(variant: str) -> tuple[str, str, str, str, str]:
    return ("graph", "embedded", variant, CFG, "test/acc")


def test_calibration_entries_are_the_seed_to_seed_sd_of_the_headline_per_variant_and_config(
        tmp_path: Path) -> None:
    runs = [run_record("graph", "gat", seed, acc, config=CONFIG) for seed, acc in enumerate([0.7, 0.8, 0.9])]
    runs += [run_record("graph", "dot", seed, acc, config=CONFIG) for seed, acc in enumerate([0.5, 0.5])]
    runs += [run_record("graph", "mlp", 0, 0.4, config=CONFIG)]  # one seed: no entry
    runs += [run_record("graph", "mlp", 1, 0.4, config={"model": {"hidden": 16}})]  # another config
    content = document(runs, "test-suite", "attnbench calibrate x")
    by_variant = {e["variant"]: e for e in content["entries"]}
    assert set(by_variant) == {"gat", "dot"}
    assert by_variant["gat"]["sd"] == pytest.approx(0.1) and by_variant["gat"]["n"] == 3
    assert by_variant["dot"]["sd"] == 0.0 and by_variant["gat"]["cfg"] == CFG
    assert content["provenance"]["seeds"] == [0, 1, 2] and content["provenance"]["suite"] == "test-suite"
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(content))
    found = read(path)
    gat = found[_key("gat")]
    assert gat.sd == pytest.approx(0.1) and "test-suite, seeds 0, 1, 2" in gat.source


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "a mapping with an 'entries' list"),
    ("entries: [{task: graph}]", "entry 0 needs task, data, variant, cfg, metric, sd and n"),
    ("entries: [{task: g, data: e, variant: v, cfg: c, metric: m, sd: -1, n: 3}]", "sd must be"),
    ("entries: [{task: g, data: e, variant: v, cfg: c, metric: m, sd: 1, n: 1}]", "n >= 2"),
])
def test_a_file_that_is_not_a_calibration_is_refused_naming_it(tmp_path: Path, text: str,
                                                               message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message) as caught:
        load([path])
    assert str(path) in str(caught.value)


def test_seed_noise_widens_a_one_seed_test_and_a_large_enough_gap_still_counts() -> None:
    rng = random.Random(3)
    truth = _accuracy(rng, 0.6)
    better = _items([1.0 if t or rng.random() < 0.1 else 0.0 for t in truth])  # ~4 points above
    result = paired_bootstrap(better, _items(truth))
    assert result.p_two_sided < 0.01 and result.se > 0  # the test items alone: clearly different
    noisy = calibrated(result, _noise(0.05), _noise(0.05), 0)
    assert not noisy.significant and noisy.p > 0.3 and noisy.low < 0 < noisy.high
    quiet = calibrated(result, _noise(0.002), _noise(0.002), 0)
    assert quiet.significant and quiet.low > 0
    exact = calibrated(result, _noise(0.0), _noise(0.0), 0)  # no training noise: the bootstrap's error
    assert exact.significant and exact.p == pytest.approx(result.p_two_sided, abs=0.01)
    few = calibrated(result, _noise(0.015, n=2), _noise(0.015, n=2), 0)
    many = calibrated(result, _noise(0.015, n=30), _noise(0.015, n=30), 0)
    assert few.p > many.p  # a noise figure from two seeds is itself uncertain: heavier tails


def test_the_report_applies_a_calibration_only_to_the_configuration_it_was_measured_for() -> None:
    rng = random.Random(6)
    records = [_seeded("none", _accuracy(rng, 0.60)), _seeded("gat", _accuracy(rng, 0.64))]
    plain = to_markdown(Document("t", task_blocks(runs_frame(records, calibration={})[0])))
    gat = next(line for line in plain.splitlines() if line.startswith("| gat |"))
    assert "paired bootstrap, seed 0, 3000 items; significant" in gat and "▲" in gat

    calibration = {_key("gat"): _noise(0.05), _key("none"): _noise(0.04)}
    text = to_markdown(Document("t", task_blocks(runs_frame(records, calibration)[0])))
    gat = next(line for line in text.splitlines() if line.startswith("| gat |"))
    assert "with seed noise sd 0.05 and 0.04 calibrated on test-calibration, seeds 3, 4, 5" in gat
    assert "not significant" in gat and "▲" not in gat
    assert "seed noise calibrated for 2 of 2 variants (test-calibration, seeds 3, 4, 5)" in text

    other = {("graph", "embedded", v, "ffffff", "test/acc"): _noise(0.05) for v in ("gat", "none")}
    stats = variant_stats(runs_frame(records, other)[0])
    assert all(s.seed_noise is None for s in stats)  # another configuration's noise is not borrowed
    gat_stats, none_stats = sorted(stats, key=lambda s: s.variant)
    assert difference(gat_stats, none_stats, "metric:test/acc", "metric:test/acc").significant


def test_robustness_counts_the_calibrated_rule_beside_the_uncalibrated_ones() -> None:
    rng = random.Random(8)
    # linear beats gat by ~4 points at seed 0 and loses by ~4 at seed 1: the bootstrap calls both;
    # reference and sdpa happen to agree closely, so the run-noise floor does not catch it, while the
    # calibrated seed noise of linear and gat (5 points) does
    records = []
    for seed, (gat, linear) in enumerate([(0.60, 0.64), (0.64, 0.60)]):
        ref = _accuracy(rng, 0.8)
        sdpa = list(ref)
        sdpa[:5] = [1.0 - v for v in sdpa[:5]]
        records += [_seeded("reference", ref, seed), _seeded("sdpa", sdpa, seed),
                    _seeded("gat", _accuracy(rng, gat), seed),
                    _seeded("linear", _accuracy(rng, linear), seed)]
    calibration = {_key("gat"): _noise(0.05), _key("linear"): _noise(0.05)}
    text = to_markdown(Document("t", task_blocks(runs_frame(records, calibration)[0])))
    floored, judged = text.split("Paired bootstrap and larger than")[1].split("As the report judges one seed")
    assert "linear vs gat (seed 1)" in floored or "gat vs linear (seed 1)" in floored
    assert "calibrated seed noise (measured on seeds of its own) for 1 of 6 pairs, the run-noise rule for " \
           "the rest" in judged
    assert "linear vs gat" not in judged and "gat vs linear" not in judged  # calibrated: not a reversal


def test_calibrate_writes_a_file_that_report_reads(tmp_path: Path, capsys) -> None:
    rng = random.Random(2)
    suite = tmp_path / "suite"
    for seed in (3, 4, 5):
        for variant, p in (("none", 0.6), ("gat", 0.64 + 0.03 * (seed - 4))):
            write_json_atomic(suite / "records" / f"graph__{variant}__s{seed}.json",
                              _seeded(variant, _accuracy(rng, p, 500), seed))
    out = tmp_path / "cal" / "noise.yaml"
    assert main(["calibrate", str(suite), "-o", str(out), "--suite", "mine"]) == 0
    printed = capsys.readouterr().out
    assert "graph (embedded, test/acc sd over seeds): gat 0.03" in printed
    assert "2 entries from seeds 3, 4, 5" in printed
    assert out.read_text().startswith("# Seed noise per task")
    one = tmp_path / "one"
    write_json_atomic(one / "records" / "graph__none__s0.json", _seeded("none", _accuracy(rng, 0.6, 500)))
    write_json_atomic(one / "records" / "graph__gat__s0.json", _seeded("gat", _accuracy(rng, 0.7, 500)))
    report = tmp_path / "report"
    assert main(["report", str(one), "-o", str(report), "--calibration", str(out)]) == 0
    assert "calibrated on mine, seeds 3, 4, 5" in (report / "report.md").read_text()


def test_calibrate_and_report_refuse_bad_input_in_one_line(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", str(empty), "-o", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["attnbench calibrate: no variant has 2 or more seeds of successful runs in the inputs; "
                   "nothing written"]
    assert not (tmp_path / "c.yaml").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("[]")
    assert main(["report", str(empty), "-o", str(tmp_path / "r"), "--calibration", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"attnbench report: --calibration: {bad}: a calibration file")
    missing = str(tmp_path / "no.yaml")
    assert main(["report", str(empty), "-o", str(tmp_path / "r"), "--calibration", missing]) == 2
    assert "cannot read a calibration file" in capsys.readouterr().err
