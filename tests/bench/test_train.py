"""The shared runner behind ``attnbench train``, on a tiny task."""

from __future__ import annotations

import json

import pytest
import yaml

import attention
import tasks
from bench.cli import main
from bench.train import train_and_test
from reports.records import TRAIN_FIELDS


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setitem(tasks.TASK_MODULES, "toy", "tests.bench._toy_task")
    config = {"data": {"n": 200, "length": 6, "batch_size": 32}, "optim": {"lr": 0.05},
              "trainer": {"max_epochs": 3, "patience": 5}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_writes_a_complete_record(toy, tmp_path) -> None:
    out = tmp_path / "record.json"
    record = train_and_test("toy", "reference", config=str(toy), out=str(out), run_dir=str(tmp_path / "run"),
                            progress=False, seed=3)
    assert record["status"] == "ok"
    assert set(TRAIN_FIELDS) <= set(record)
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0
    assert record["params"] > 0 and record["samples_per_s"] > 0 and record["peak_mem_bytes"] > 0
    assert record["best_checkpoint"].endswith("best.ckpt")
    # the whole validation curve, not the best checkpoint's (testing restores callback states from it)
    assert len(record["val_history"]) == record["epochs"] == 3
    assert record["convergence"]["validations"] == 3
    assert record["protocol"]["lr"] == 0.05 and record["protocol"]["train_steps"] > 0
    assert json.loads(out.read_text())["run_id"] == record["run_id"]


def test_unsupported_variant_is_a_record_with_a_reason(toy) -> None:
    record = train_and_test("toy", "linformer", config=str(toy), progress=False)
    assert record["status"] == "unsupported" and "linformer" in record["reason"]


class RefusesWhenCalled(attention.UniformAttention):
    """Passes every up-front check, then refuses on its first call (a kernel's own verdict)."""

    def _attend(self, query, key, value, attn_mask, *, is_causal, dropout_p, scale, need_weights):
        raise attention.NotSupportedError(self.name, ["no kernel for head dim 4", "second reason"])


def test_a_refusal_while_running_is_a_record_not_a_crash(toy, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(attention.REGISTRY, "uniform", RefusesWhenCalled)
    record = train_and_test("toy", "uniform", config=str(toy), run_dir=str(tmp_path / "run"), progress=False)
    assert record["status"] == "unsupported"
    assert record["reason"] == "refused while running: no kernel for head dim 4; second reason"


def test_overrides_must_name_existing_keys(toy) -> None:
    with pytest.raises(ValueError, match="unknown key 'width'"):
        train_and_test("toy", "reference", config=str(toy), overrides={"model.width": 3})
    with pytest.raises(ValueError, match="unknown key 'lr_typo'"):
        train_and_test("toy", "reference", config=str(toy), overrides={"optim.lr_typo": 3})


def test_cli_reports_bad_input_with_exit_2(toy, capsys) -> None:
    assert main(["train", "nosuchtask", "--variant", "reference"]) == 2
    assert "unknown task 'nosuchtask'" in capsys.readouterr().err
    assert main(["train", "toy", "--variant", "reference", "--config", "missing"]) == 2


def test_cli_trains_and_prints_metrics(toy, tmp_path, capsys) -> None:
    code = main(["train", "toy", "--variant", "none", "--config", str(toy), "--no-progress",
                 "--set", "trainer.max_epochs=1", "--run-dir", str(tmp_path / "r")])
    assert code == 0
    assert "test/acc" in capsys.readouterr().out


def test_refusals_see_the_run_config() -> None:
    # sdpa forms no weights: fine for captioning until the doubly stochastic regulariser needs them
    record = train_and_test("captioning", "sdpa", overrides={"model.doubly_stochastic": 0.5}, progress=False)
    assert record["status"] == "unsupported" and "need_weights" in record["reason"]


def test_a_checkpoint_from_other_settings_is_set_aside_not_resumed(toy, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    first = train_and_test("toy", "reference", config=str(toy), run_dir=str(run), progress=False)
    assert first["discarded_checkpoint"] is None and (run / "checkpoints" / "last.ckpt").is_file()
    again = train_and_test("toy", "reference", config=str(toy), run_dir=str(run), progress=False)
    assert again["discarded_checkpoint"] is None and again["resumed_from_epoch"] is not None
    changed = train_and_test("toy", "reference", config=str(toy), run_dir=str(run), progress=False,
                             overrides={"optim.lr": 0.01})
    reason = changed["discarded_checkpoint"]
    assert "optim.lr" in reason and "other settings" in reason
    assert changed["resumed_from_epoch"] is None and changed["epochs"] == 3
    assert changed["protocol"]["lr"] == 0.01
    assert (run / "checkpoints.discarded" / "last.ckpt").is_file()  # kept aside, not deleted
    assert "not resuming" in capsys.readouterr().err
    (run / "run_spec.json").unlink()  # a folder from before specs were written: unknown, not trusted
    unknown = train_and_test("toy", "reference", config=str(toy), run_dir=str(run), progress=False,
                             overrides={"optim.lr": 0.01})
    assert "no run_spec.json" in unknown["discarded_checkpoint"] and unknown["resumed_from_epoch"] is None
