"""Recall task (MQAR): generated sequences, answer masks, causality, variant checks, one end-to-end run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from bench.train import train_and_test
from reports.paired import metric_of
from tasks._base import RUNNER_OPTIM_KEYS, apply_overrides, variant_kwargs
from tasks.recall import TASK
from tasks.recall.data import IGNORE, RecallSet, build_data
from tasks.recall.model import build_model
from tasks.recall.synthetic import FILLER_ID, SPEC_KEYS, RecallSpec, generate_sequences, sequence

SMALL = RecallSpec(seed=3, n_train=40, n_val=10, n_test=10, seq_len=24, num_pairs=5, num_queries=3,
                   key_vocab=8, value_vocab=6)
TINY_MODEL = {"model.dim": 16, "model.ff_dim": 16, "model.heads": 2}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def tiny_config(**overrides) -> dict:
    data = {"n_train": 40, "n_val": 10, "n_test": 10, "seq_len": 24, "num_pairs": 5, "num_queries": 3,
            "batch_size": 8, "eval_batch_size": 10}
    return apply_overrides(TASK.config("quick"), {**{f"data.{k}": v for k, v in data.items()}, **TINY_MODEL,
                                                   **overrides}, TASK.optional_keys)


def test_generation_is_deterministic() -> None:
    first = generate_sequences(SMALL)
    assert first == generate_sequences(SMALL)
    assert generate_sequences(RecallSpec(**{**SMALL.__dict__, "seed": 4})) != first
    assert [len(first[s]) for s in ("train", "val", "test")] == [40, 10, 10]


def test_every_answer_is_the_value_paired_with_its_key() -> None:
    rng, spec = random.Random(0), SMALL
    keys = range(spec.key_id(0), spec.value_id(0))
    values = range(spec.value_id(0), spec.value_id(spec.value_vocab))
    for _ in range(200):
        ids, answers = sequence(rng, spec)
        assert len(ids) == spec.seq_len and len(answers) == spec.num_queries
        context = ids[:2 * spec.num_pairs]
        stored = dict(zip(context[0::2], context[1::2], strict=True))
        assert len(stored) == spec.num_pairs and set(stored) <= set(keys)  # distinct keys
        assert set(stored.values()) <= set(values)
        assert answers == sorted(answers) and answers[0] >= 2 * spec.num_pairs
        asked = [ids[p] for p in answers]
        assert len(set(asked)) == len(asked) and all(ids[p + 1] == stored[ids[p]] for p in answers)
        rest = [t for i, t in enumerate(ids[2 * spec.num_pairs:], start=2 * spec.num_pairs)
                if i not in answers and i - 1 not in answers]
        assert set(rest) <= {FILLER_ID}


@pytest.mark.parametrize("bad", [{"num_pairs": 9}, {"num_queries": 6}, {"seq_len": 15}, {"n_val": 0},
                                 {"key_vocab": True}])
def test_impossible_knobs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RecallSpec(**{**SMALL.__dict__, **bad})


def test_targets_mark_only_the_answers() -> None:
    rows = generate_sequences(SMALL)["test"]
    data = RecallSet(rows)
    for (ids, answers), targets in zip(rows, data.targets, strict=True):
        scored = (targets != IGNORE).nonzero().flatten().tolist()
        assert scored == answers
        assert targets[scored].tolist() == [ids[p + 1] for p in answers]


def test_the_presets_knobs_reach_the_generator() -> None:
    cfg = tiny_config()["data"]
    data = build_data(cfg, None, seed=0)
    assert data.sets["train"].ids.shape == (40, 24) and data.max_len == 24
    assert ((data.sets["val"].targets != IGNORE).sum(1) == 3).all()
    assert len(data.vocab) == len(data.spec.tokens()) and data.vocab.itos[FILLER_ID] == "_"
    with pytest.raises(ValueError, match="embedded data only"):
        build_data(cfg, "somewhere.txt", seed=0)


@pytest.mark.parametrize("variant", ["reference", "linear", "performer", "local", "none"])
def test_predictions_are_causal(variant: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(**{"model.variant_kwargs": {"local": {"window": 2}}})
    kwargs = (cfg["model"]["variant_kwargs"] or {}).get(variant)
    net = build_model(cfg["model"], variant, vocab=30, max_len=12, variant_kwargs=kwargs).eval()
    _assert_causal(net)


def _assert_causal(net) -> tuple[torch.Tensor, torch.Tensor]:
    """Changing token 7 changes the predictions from position 7 on and none before; the logits of
    the unchanged ids are returned."""
    ids = torch.randint(4, 30, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] - 3) % 26 + 4
    with torch.no_grad():
        before, after = net(ids)[0], net(changed)[0]
    torch.testing.assert_close(before[:, :7], after[:, :7])
    assert not torch.allclose(before[:, 7:], after[:, 7:])
    return ids, before


def test_variant_reasons() -> None:
    reasons = TASK.applicable_variants()
    runs = {v for v, r in reasons.items() if not r}
    assert {"none", "reference", "sdpa", "uniform", "linear", "performer", "local", "sparse"} <= runs
    assert reasons["linformer"] == ["decoder causal self-attention: linformer has no causal form"]
    assert "graph attention" in reasons["gat"][0]
    cfg = TASK.config("quick")
    cfg["model"]["attn_dropout"] = 0.1
    assert any("dropout" in r for r in TASK.variant_reasons("performer", cfg))
    record = train_and_test("recall", "linformer", progress=False)
    assert record["status"] == "unsupported" and "no causal form" in record["reason"]


def test_local_window_that_covers_the_sequence_computes_reference() -> None:
    cfg = TASK.config("quick")
    assert TASK.computes_reference("local", cfg) is None  # window 16 of 64 tokens
    wide = apply_overrides(cfg, {"model.variant_kwargs": {"local": {"window": cfg["data"]["seq_len"]}}})
    assert "64 queries over up to 64 keys" in TASK.computes_reference("local", wide)
    assert TASK.computes_reference("none", cfg) is None


def test_quick_preset_keeps_attention_variants_within_the_parameter_budget() -> None:
    config = TASK.config("quick")
    vocab = len(RecallSpec(**{k: config["data"][k] for k in SPEC_KEYS if k != "seed"}).tokens())
    counts = {}
    for variant, reasons in TASK.applicable_variants(config).items():
        if variant not in TASK.baselines and not reasons:
            net = build_model(config["model"], variant, vocab, config["data"]["seq_len"],
                              variant_kwargs(config, variant))
            counts[variant] = sum(p.numel() for p in net.parameters())
    outside = {v: n for v, n in counts.items() if abs(n / counts["reference"] - 1) > 0.10}
    assert not outside, counts


def test_presets_share_their_keys() -> None:
    quick, full = TASK.config("quick"), TASK.config("full")
    for section in ("data", "model", "optim"):
        own = set(RUNNER_OPTIM_KEYS)
        assert set(quick[section]) - own == set(full[section]) - own, section


def test_train_and_test_end_to_end(tmp_path) -> None:
    overrides = {f"data.{k}": v for k, v in tiny_config()["data"].items() if k != "generator_seed"}
    overrides.update(TINY_MODEL, **{"trainer.max_epochs": 1})
    record = train_and_test("recall", "reference", overrides=overrides, run_dir=str(tmp_path / "r"),
                            progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    items = record["test_items"]
    assert items["n"] == 10 and items["matches_metric"]
    assert metric_of(items) == pytest.approx(record["metrics"]["test/acc"], abs=1e-6)
    assert {"test/acc", "test/loss"} <= set(record["metrics"])
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "alignment" and len(saved["examples"]) == 3
    for example in saved["examples"]:
        assert len(example["source"]) == 24 and len(example["target"]) == 3
        weights = torch.tensor(example["weights"])  # (answers, tokens)
        assert weights.shape == (3, 24)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3))


@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_positions_inside_attention_stay_causal_and_replace_the_embedding(positions: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(**{"model.positions": positions})  # optional_keys: no preset lists it
    net = build_model(cfg["model"], "reference", vocab=30, max_len=12).eval()
    assert not net.embed.sinusoidal and all(b.attn.positions == positions for b in net.blocks)
    ids, before = _assert_causal(net)
    shifted = torch.roll(ids, 1, dims=1)  # positions matter: the same tokens one place later differ
    with torch.no_grad():
        assert not torch.allclose(net(shifted)[0][:, 1:], before[:, :-1])


def test_alibi_is_refused_up_front_by_variants_without_additive_masks_and_bad_positions_fail() -> None:
    cfg = tiny_config(**{"model.positions": "alibi"})
    assert any("attn_mask kind 'additive'" in r for r in TASK.variant_reasons("linear", cfg))
    assert TASK.variant_reasons("sdpa", cfg) == [] and TASK.variant_reasons("none", cfg) == []
    with pytest.raises(ValueError, match=r"model.positions must be one of \['sinusoid', 'rope', 'alibi'\]"):
        build_model(tiny_config(**{"model.positions": "learned"})["model"], "reference", vocab=30, max_len=12)
    with pytest.raises(ValueError, match="unknown key 'position'"):
        tiny_config(**{"model.position": "rope"})
