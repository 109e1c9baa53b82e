"""Records: atomic JSON, locked CSV appends with a fixed schema, the environment of every record."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from reports.records import (
    ENV_FIELDS,
    MICRO_COLUMNS,
    RecordError,
    append_csv_rows,
    environment,
    read_csv_records,
    write_json_atomic,
)


def test_environment_has_every_field() -> None:
    env = environment()
    assert set(env) == set(ENV_FIELDS)
    assert env["env_torch"] and env["env_device"] == "cpu" and env["env_threads"] >= 1


def test_json_is_replaced_atomically(tmp_path) -> None:
    path = tmp_path / "sub" / "r.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left behind


def test_csv_appends_and_refuses_other_schemas(tmp_path) -> None:
    path = tmp_path / "micro.csv"
    append_csv_rows(path, [{"run_id": "a", "status": "ok"}], MICRO_COLUMNS)
    append_csv_rows(path, [{"run_id": "b", "status": "oom", "reason": "out of memory"}], MICRO_COLUMNS)
    frame = read_csv_records([path], MICRO_COLUMNS)
    assert list(frame["run_id"]) == ["a", "b"] and frame["reason"][1] == "out of memory"
    with pytest.raises(RecordError, match="outside the schema"):
        append_csv_rows(path, [{"run_id": "c", "colour": "red"}], MICRO_COLUMNS)
    with pytest.raises(RecordError, match="another schema"):
        append_csv_rows(path, [{"x": 1}], ("x",))
    with pytest.raises(RecordError, match="not found"):
        read_csv_records([tmp_path / "missing.csv"], MICRO_COLUMNS)


def _append_many(args) -> None:
    path, worker = args
    for i in range(50):
        append_csv_rows(path, [{"run_id": f"{worker}-{i}", "case": "x" * 500}], MICRO_COLUMNS)


def test_concurrent_appends_lose_nothing(tmp_path) -> None:
    path = tmp_path / "micro.csv"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_append_many, [(path, 0), (path, 1)])
    frame = read_csv_records([path], MICRO_COLUMNS)
    assert len(frame) == 100 and frame["run_id"].is_unique
