"""The shared runner behind ``attnbench train``, on a tiny task."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import yaml

import attention
import tasks
from bench.cli import main
from bench.step_cost import step_cost
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


class AllocatesWhenCalled(attention.UniformAttention):
    """Uniform attention that also touches ``BYTES`` of scratch memory on every call."""

    BYTES = 64 * 2**20

    def _attend(self, query, key, value, attn_mask, *, is_causal, dropout_p, scale, need_weights):
        scratch = torch.ones(self.BYTES // 4)  # touched, so resident
        out = super()._attend(query, key, value, attn_mask, is_causal=is_causal, dropout_p=dropout_p,
                              scale=scale, need_weights=need_weights)
        return out._replace(output=out.output + 0.0 * scratch[0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory limits and peaks need Linux")
def test_a_run_beyond_its_memory_budget_is_an_oom_record_not_a_crash(toy, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(AllocatesWhenCalled, "BYTES", 2 * 2**30)
    monkeypatch.setitem(attention.REGISTRY, "uniform", AllocatesWhenCalled)
    record = train_and_test("toy", "uniform", config=str(toy), run_dir=str(tmp_path / "run"), progress=False,
                            memory_budget=512 * 2**20)
    assert record["status"] == "oom", record.get("reason")
    assert record["reason"].startswith("out of memory (budget 0.5 GiB): ") and "allocate" in record["reason"]
    torch.ones(2**20)  # the limit was lifted


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory peaks need Linux")
def test_the_step_cost_is_measured_on_the_tested_model_and_leaves_its_weights(toy, tmp_path,
                                                                              monkeypatch) -> None:
    monkeypatch.setitem(attention.REGISTRY, "uniform", AllocatesWhenCalled)
    record = train_and_test("toy", "uniform", config=str(toy), run_dir=str(tmp_path / "run"), progress=False,
                            measure_step=True)
    cost = record["step_cost"]
    assert record["status"] == "ok" and cost["batch"] == 32 and cost["runs"] >= 1
    assert cost["time_median_s"] > 0 and cost["concurrent_runs"] == 1
    # measured, not computed: pages the process already held count less
    assert cost["peak_mem_bytes"] >= 0.9 * AllocatesWhenCalled.BYTES
    assert train_and_test("toy", "reference", config=str(toy), progress=False)["step_cost"] is None

    task = tasks.get_task("toy")
    datamodule, module = task.build(task.config(str(toy)), "uniform", None, seed=0)
    before = [p.detach().clone() for p in module.parameters()]
    step_cost(module, datamodule, concurrent_runs=2, min_run_time=0.01)
    assert all(torch.equal(a, b) and p.grad is None for a, b, p in zip(before, module.parameters(),
                                                                       module.parameters(), strict=True))
