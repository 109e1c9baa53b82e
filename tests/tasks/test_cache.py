"""The embedded-data cache: one folder per task, honouring ATTNBENCH_CACHE, generated once per key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks._cache import cache_dir, cache_file, cached_json


def test_cache_dir_honours_the_variable_else_the_home_cache(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir("graph") == tmp_path / "elsewhere" / "graph"
    monkeypatch.delenv("ATTNBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir("graph") == tmp_path / ".cache" / "attnbench" / "graph"


def test_cache_file_is_named_by_every_parameter_in_any_order(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path))
    path = cache_file("demo", {"a": 1, "b": 2}, prefix="x-", suffix=".pt")
    assert path == cache_file("demo", {"b": 2, "a": 1}, prefix="x-", suffix=".pt")
    assert path.parent == tmp_path / "demo" and path.name.startswith("x-") and path.suffix == ".pt"
    assert path != cache_file("demo", {"a": 1, "b": 3}, prefix="x-", suffix=".pt")


def test_cached_json_generates_once_and_hits_identically(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path))
    calls = []

    def generate():
        calls.append(1)
        return {"train": [("a b", 1)], "val": []}

    first = cached_json("demo", {"seed": 1}, generate)
    second = cached_json("demo", {"seed": 1}, generate)
    assert first == second == {"train": [["a b", 1]], "val": []} and len(calls) == 1
    cached_json("demo", {"seed": 2}, generate)
    assert len(calls) == 2
    assert len(list((tmp_path / "demo").glob("*.json"))) == 2
    assert not list((tmp_path / "demo").glob(".*tmp"))  # written atomically, nothing left behind
