"""attnbench micro: grids, the correctness gate, rows for every outcome, measured memory."""

from __future__ import annotations

import pytest
import torch

import attention
from attention import Capabilities, DenseAttention
from bench.cli import main
from bench.micro.case import Case, VariantSpec, run_case
from bench.micro.grid import load_grid
from bench.micro.memory import cpu_method, measure_peak
from bench.micro.run import run_grid
from reports.micro_analysis import fit_slope, growth_slopes
from reports.records import MICRO_COLUMNS, attention_flops, read_csv_records

TINY = {"lengths": [16, 32], "heads": 2, "head_dim": 8, "min_run_time": 0.001, "check_max_len": 32}


def _case(name: str, length: int = 16, **kwargs) -> Case:
    spec = VariantSpec(name, kwargs)
    return Case(spec, "cpu", "float32", 1, 2, 8, length, length, "forward", False, "none")


class Broken(DenseAttention):
    """Returns zeros: must be caught by the gate and never timed."""

    name = "broken"
    capabilities = Capabilities(weights=False)

    def _attend(self, query, key, value, attn_mask, *, is_causal, dropout_p, scale, need_weights):
        return attention.AttentionOutput(torch.zeros_like(query), None)


class Hungry(Broken):
    """Matches the oracle on the small check, then fails to allocate like a too-large case."""

    name = "hungry"

    def _attend(self, query, key, value, attn_mask, *, is_causal, dropout_p, scale, need_weights):
        if query.shape[-2] > 16:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1e12 bytes")
        return attention.ReferenceAttention()(query, key, value, attn_mask, is_causal=is_causal)


class Shy(Broken):
    """Passes the up-front check, then refuses when called (as an explicit sdpa backend does)."""

    name = "shy"

    def _attend(self, query, key, value, attn_mask, *, is_causal, dropout_p, scale, need_weights):
        raise attention.NotSupportedError("shy", ["no kernel for this shape", "second reason"])


@pytest.fixture
def fake_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(attention.REGISTRY, "broken", Broken)
    monkeypatch.setitem(attention.REGISTRY, "hungry", Hungry)
    monkeypatch.setitem(attention.REGISTRY, "shy", Shy)


def test_grid_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown grid keys"):
        load_grid(None, {"lenghts": [4]})
    with pytest.raises(ValueError, match="unknown dense variant 'gat'"):
        load_grid(None, {"variants": ["gat"]})
    with pytest.raises(ValueError, match="lengths"):
        load_grid(None, {"lengths": [0]})
    with pytest.raises(ValueError, match="dtypes"):
        load_grid(None, {"dtypes": ["int8"]})
    with pytest.raises(ValueError, match="not found"):
        load_grid("no-such-grid")


def test_every_shipped_grid_loads() -> None:
    for name in ("cpu", "cuda", "smoke"):
        assert load_grid(name).cases


def test_rows_for_every_outcome(fake_variants) -> None:
    assert run_case(_case("xformers"), check_max_len=32, min_run_time=0.001)["status"] == "unsupported"
    broken = run_case(_case("broken"), check_max_len=32, min_run_time=0.001)
    assert broken["status"] == "incorrect" and "time_median_s" not in broken
    oom = run_case(_case("hungry", 32), check_max_len=16, min_run_time=0.001)
    assert oom["status"] == "oom" and "can't allocate" in oom["reason"]
    shy = run_case(_case("shy"), check_max_len=32, min_run_time=0.001)  # a refusal is never an error
    assert shy["status"] == "unsupported" and shy["reason"] == "no kernel for this shape; second reason"
    ok = run_case(_case("local", 32, window=4), check_max_len=32, min_run_time=0.001)
    assert ok["status"] == "ok" and ok["time_median_s"] > 0 and "limit case" in ok["reason"]


def test_run_grid_appends_rows_with_environment(tmp_path) -> None:
    grid = load_grid(None, {**TINY, "variants": ["reference", "torch_sdpa_raw", "sdpa", "linear"]})
    out = tmp_path / "micro.csv"
    run_grid(grid, out, progress=False)
    run_grid(grid, out, progress=False)  # a second run appends, never overwrites
    frame = read_csv_records([out], MICRO_COLUMNS)
    assert len(frame) == 16 and frame["run_id"].nunique() == 2
    assert set(frame["status"]) == {"ok"} and (frame["env_torch"] == torch.__version__).all()
    assert (frame["flops"] == [attention_flops(1, 2, n, n, 8, causal=False, backward=False)
                               for n in frame["lq"]]).all()


@pytest.mark.skipif(cpu_method()[0] is None, reason=f"CPU peak memory unavailable: {cpu_method()[1]}")
def test_cpu_peak_memory_sees_the_reference_score_matrix() -> None:
    q = torch.randn(1, 8, 1024, 16)
    score_bytes = 8 * 1024 * 1024 * 4  # 32 MiB
    ref = attention.build("reference")
    with torch.no_grad():
        peak, _, method = measure_peak(lambda: ref(q, q, q), "cpu")
        linear_peak, _, _ = measure_peak(lambda: attention.build("linear")(q, q, q), "cpu")
    assert method == "cpu_peak_rss"
    assert peak >= score_bytes
    assert linear_peak < score_bytes / 4


def test_backward_pass_and_slopes(tmp_path) -> None:
    settings = {**TINY, "lengths": [16, 32, 64], "passes": ["backward"], "variants": ["reference"]}
    grid = load_grid(None, settings)
    frame = run_grid(grid, tmp_path / "m.csv", progress=False)
    assert set(frame["status"]) == {"ok"}
    assert growth_slopes(frame)["time_slope"].notna().all()
    assert fit_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)


def test_cli_micro(tmp_path, capsys) -> None:
    out = tmp_path / "m.csv"
    assert main(["micro", "--grid", "smoke", "--variants", "reference,uniform", "--lengths", "16",
                 "--out", str(out), "--no-progress"]) == 0
    assert "micro-benchmark" in capsys.readouterr().out and out.exists()
    assert main(["micro", "--variants", "nope", "--out", str(out)]) == 2
