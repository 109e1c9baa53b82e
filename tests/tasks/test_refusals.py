"""A variant whose instance refuses (an explicit sdpa backend the device lacks) is recorded as
unsupported by every dense task, with the instance's reason, before any data or model is built."""

from __future__ import annotations

import pytest

from bench.train import train_and_test

DENSE_TASKS = ("translation", "sentiment", "captioning", "vqa", "listops", "recall")


@pytest.mark.parametrize("task", DENSE_TASKS)
def test_an_explicit_backend_the_device_lacks_is_a_record(task: str, tmp_path) -> None:
    overrides = {"model.variant_kwargs": {"sdpa": {"backend": "cudnn"}}, "trainer.accelerator": "cpu"}
    record = train_and_test(task, "sdpa", overrides=overrides, run_dir=tmp_path / "run", progress=False)
    assert record["status"] == "unsupported"
    assert "backend 'cudnn' is a CUDA kernel; torch has no cpu implementation" in record["reason"]
    assert not (tmp_path / "run").exists()  # refused before training


@pytest.mark.parametrize("task", DENSE_TASKS)
def test_constructor_arguments_a_variant_rejects_are_a_config_error(task: str) -> None:
    overrides = {"model.variant_kwargs": {"sdpa": {"backend": "fastest"}}}
    with pytest.raises(ValueError, match=r"model.variant_kwargs for 'sdpa'"):
        train_and_test(task, "sdpa", overrides=overrides, progress=False)


# (task, variant, overrides) -> whether it provably computes reference (Task.computes_reference)
EQUIVALENCE = [
    ("captioning", "local", {}, True),  # window 64 over 3 x 3 regions, one query per step
    ("captioning", "sparse", {}, True),
    ("vqa", "sparse", {}, True),  # one query: the global row of the pattern sees all 16 regions
    ("vqa", "local", {}, False),  # window 8 over 16 regions from the query's position 0
    ("sentiment", "sparse", {}, True),  # pooling: one query over up to data.max_tokens tokens
    ("sentiment", "sparse", {"model.attn_dropout": 0.1}, False),  # dropout draws need not be shared
    ("sentiment", "sparse", {"model.encoder": "transformer"}, False),  # self-attention over 200 tokens
    ("sentiment", "sparse", {"data.max_tokens": None}, False),  # texts not cut: no longest length
    ("translation", "sparse", {}, False),  # the task does not describe its calls: nothing claimed
    ("captioning", "reference", {}, False),
    ("captioning", "none", {}, False),
    ("recall", "local", {}, False),  # window 16 over 64 tokens
    ("recall", "local", {"model.variant_kwargs": {"local": {"mode": "sliding", "window": 63}}}, True),
    ("listops", "sparse", {}, False),  # window 8 over up to 121 tokens, every one a query
    ("listops", "local", {"model.variant_kwargs": {"local": {"mode": "sliding", "window": 120}}}, True),
]


@pytest.mark.parametrize(("task", "variant", "overrides", "same"), EQUIVALENCE,
                         ids=[f"{t}-{v}-{'-'.join(map(str, o.values()))}" for t, v, o, _ in EQUIVALENCE])
def test_a_variant_is_equivalent_only_where_it_sees_every_key(task, variant, overrides, same) -> None:
    from tasks import get_task
    from tasks._base import apply_overrides

    runner = get_task(task)
    reason = runner.computes_reference(variant, apply_overrides(runner.config("quick"), overrides))
    assert (reason is not None) is same
    if same:
        assert "lets every query see every key" in reason and "computes reference exactly" in reason


def test_a_suite_records_an_equivalent_variant_without_training_it(tmp_path) -> None:
    record = train_and_test("vqa", "sparse", run_dir=tmp_path / "run", progress=False, skip_equivalent=True)
    assert record["status"] == "equivalent" and record["equals_reference"] is True
    assert record["reason"].startswith("not trained: sparse (pattern=window_global, window=8")
    assert "1 query over up to 16 keys" in record["reason"]
    assert not (tmp_path / "run").exists()
