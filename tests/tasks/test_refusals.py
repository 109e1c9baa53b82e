"""A variant whose instance refuses (an explicit sdpa backend the device lacks) is recorded as
unsupported by every dense task, with the instance's reason, before any data or model is built."""

from __future__ import annotations

import pytest

from bench.train import train_and_test

DENSE_TASKS = ("translation", "sentiment", "captioning", "vqa")


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
