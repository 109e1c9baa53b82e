"""Sentiment task: generated reviews, UCI and SST-2 loaders, models, variant checks, one end-to-end run."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest
import torch

import attention
from bench.train import train_and_test
from tasks._base import RUNNER_OPTIM_KEYS
from tasks._text import UNK_ID, pad
from tasks.sentiment import TASK
from tasks.sentiment.data import (
    SentimentData,
    build_data,
    collate,
    read_labelled,
    real_rows,
    stratified_split,
)
from tasks.sentiment.model import LSTMEncoder, SentimentModel
from tasks.sentiment.synthetic import (
    NEGATIVE,
    POSITIVE,
    PRODUCTS,
    ReviewSpec,
    generate_reviews,
    review_sentences,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci-sentiment"
SMALL = ReviewSpec(seed=3, n_train=60, n_val=10, n_test=10, min_sentences=1, max_sentences=3)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def data_cfg(**changes) -> dict:
    cfg = TASK.config("quick")["data"]
    cfg.update(n_train=60, n_val=10, n_test=10, min_sentences=1, max_sentences=3, batch_size=8, **changes)
    return cfg


def test_generation_is_deterministic_and_balanced() -> None:
    first = generate_reviews(SMALL)
    assert first == generate_reviews(SMALL)
    assert generate_reviews(ReviewSpec(**{**SMALL.__dict__, "seed": 4})) != first
    assert [len(first[s]) for s in ("train", "val", "test")] == [60, 10, 10]
    big = generate_reviews(ReviewSpec(n_train=400, n_val=1, n_test=1))["train"]
    assert 0.4 < sum(label for _, label in big) / len(big) < 0.6


def _polarity(clause: str) -> int:
    """An independent reading of one clause: its first sentiment word, flipped by a negation
    unless the negation is the "not only"/"not just" of a list."""
    words = clause.split()
    adjective = next(w for w in words if w in POSITIVE + NEGATIVE)
    flips = ("not" in words or "never" in words) and "not only" not in clause and "not just" not in clause
    return int((adjective in POSITIVE) != flips)


def _main_clause(sentence: str) -> tuple[str, str | None]:
    """(main clause, concession or None) of a verdict sentence."""
    for lead in ("although ", "even though "):
        if sentence.startswith(lead):
            concession, main = sentence[len(lead):].split(" , ", 1)
            return main, concession
        if f" , {lead}" in sentence:
            main, concession = sentence.split(f" , {lead}", 1)
            return main, concession
    if " but in the end " in sentence:
        concession, main = sentence.split(" but ", 1)
        return main, concession
    return sentence, None


def test_the_verdict_and_its_scope_decide_the_label() -> None:
    rng = random.Random(0)
    spec = ReviewSpec(negation_rate=0.5, contrast_rate=0.4, not_only_rate=0.2, lexicon_size=40,
                      lexicon_zipf=1.0)
    seen = {"negated": 0, "contrast": 0, "not only": 0, "other product": 0}
    for _ in range(400):
        sentences, at, label = review_sentences(rng, spec)
        product = sentences[0].split()[3]  # "i bought a {product} for ..."
        assert sentences[0] == f"i bought a {product} " + sentences[0].split(f"{product} ", 1)[1]
        main, concession = _main_clause(sentences[at])
        assert _polarity(main) == label
        if concession is not None:  # the concession points the other way
            assert _polarity(concession) == 1 - label
            seen["contrast"] += 1
        seen["negated"] += " not " in f" {main} " or " never " in f" {main} "
        seen["not only"] += "not only" in main or "not just" in main
        named = [w for w in sentences[at].split() if w in PRODUCTS]
        assert named in ([], [product])  # the verdict is about the review's product
        for sentence in sentences[1:at] + sentences[at + 1:]:
            if re.match(r"(overall the|i do|not only is the|the \w+ is not only) ", sentence):
                assert product not in sentence.split()  # a verdict's words about another product
                seen["other product"] += 1
    assert all(count > 40 for count in seen.values()), seen


def test_review_knobs() -> None:
    rng = random.Random(1)
    plain = ReviewSpec(min_sentences=2, max_sentences=2, distractor_rate=0.0, negation_rate=0.0,
                       contrast_rate=0.0, not_only_rate=0.0, lexicon_size=1)
    for _ in range(50):
        sentences, at, label = review_sentences(rng, plain)
        assert len(sentences) == 4  # the product's introduction, 2 neutral sentences and the verdict
        others = [s for i, s in enumerate(sentences[1:], start=1) if i != at]
        assert not any(w in POSITIVE + NEGATIVE for s in others for w in s.split())
        assert {"great", "awful"} & set(sentences[at].split()) == {"great" if label else "awful"}
        assert " not " not in sentences[at] and " , " not in sentences[at]
    for bad in ({"contrast_rate": 0.7, "not_only_rate": 0.4}, {"hard_distractor_rate": 0.8},
                {"lexicon_size": len(POSITIVE) + 1}, {"lexicon_zipf": -1.0}, {"other_product_rate": 1.5}):
        with pytest.raises(ValueError):
            ReviewSpec(**bad)


def test_the_presets_knobs_reach_the_generator() -> None:
    cfg = data_cfg(other_product_rate=0.0, hard_distractor_rate=0.0, distractor_rate=1.0)
    rows = build_data(cfg, None, seed=0, cls_token=False)
    texts = [" ".join(rows.vocab.itos[i] for i in ids) for ids in rows.sets["train"].ids]
    assert not any("the seller says" in t for t in texts)
    hard = build_data({**cfg, "hard_distractor_rate": 1.0}, None, seed=0, cls_token=False)
    assert hard.sets["train"].ids != rows.sets["train"].ids


def test_embedded_data_is_cached(tmp_path) -> None:
    first = build_data(data_cfg(), None, seed=0, cls_token=False)
    second = build_data(data_cfg(), None, seed=0, cls_token=False)
    assert first.sets["test"].ids == second.sets["test"].ids
    assert list((tmp_path / "cache" / "sentiment").glob("*.json"))
    with_cls = build_data(data_cfg(), None, seed=0, cls_token=True)
    assert with_cls.sets["test"].ids[0][1:] == first.sets["test"].ids[0]


def test_uci_and_sst2_files_are_read(tmp_path) -> None:
    uci = tmp_path / "uci.txt"
    uci.write_text('He said "great" .\t1\nSo bad.  \t0\n')  # quotes are plain text (QUOTE_NONE)
    assert read_labelled(uci, 2) == [('He said "great" .', 1), ("So bad.  ", 0)]
    sst = tmp_path / "train.tsv"
    sst.write_text("label\tsentence\n0\tdull\n1\tfun\n")
    assert read_labelled(sst, 2) == [("dull", 0), ("fun", 1)]


@pytest.mark.parametrize("text, match", [
    ("fine\t1\nno label here\n", r"bad\.txt:2: expected 2 tab-separated fields"),
    ("fine\t1\nbad\t2\n", r"bad\.txt:2: label '2' is not in the label set \[0, 1\]"),
    ("fine\t1\n\nok\t0\n", r"bad\.txt:2: empty line"),
    ("fine\tx\n", r"bad\.txt:1: label 'x'"),
    ("sentence\tlabel\nok\t1\textra\n", r"bad\.txt:2: expected 2 tab-separated fields"),
    ("sentence\tlabel\n", r"no labelled sentences"),
    ("\t1\n", r"bad\.txt:1: empty sentence"),
])
def test_bad_files_name_file_and_line(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_labelled(path, 2)


def test_stratified_split_keeps_the_label_mix() -> None:
    rows = [(f"s{i}", int(i % 4 == 0)) for i in range(200)]  # 25% positive
    train, val, test = stratified_split(rows, (0.8, 0.1, 0.1), seed=1)
    assert (len(train), len(val), len(test)) == (160, 20, 20)
    assert [sum(y for _, y in part) for part in (train, val, test)] == [40, 5, 5]
    assert sorted(train + val + test) == sorted(rows)
    assert stratified_split(rows, (0.8, 0.1, 0.1), seed=1) == [train, val, test]
    assert stratified_split(rows, (0.8, 0.1, 0.1), seed=2) != [train, val, test]


def write_uci(path: Path, n: int, offset: int = 0) -> Path:
    path.write_text("".join(f"review number {i} is {'good' if i % 2 else 'bad'}\t{i % 2}\n"
                            for i in range(offset, offset + n)))
    return path


def test_real_data_interfaces(tmp_path) -> None:
    a, b = write_uci(tmp_path / "a.txt", 20), write_uci(tmp_path / "b.txt", 20, offset=20)
    cfg = data_cfg(val_fraction=0.2, test_fraction=0.2)
    pooled = real_rows(f"{a},{b}", cfg, seed=0)
    assert [len(pooled[s]) for s in ("train", "val", "test")] == [24, 8, 8]
    assert real_rows(str(tmp_path), {**cfg, "files": ["a.txt", "b.txt"]}, seed=0) == pooled
    assert len(real_rows(str(a), cfg, seed=0)["train"]) == 12
    with pytest.raises(ValueError, match="data.files"):
        real_rows(str(tmp_path), cfg, seed=0)
    sst = tmp_path / "sst"
    sst.mkdir()
    (sst / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"w{i}\t{i % 2}\n" for i in range(10)))
    (sst / "dev.tsv").write_text("sentence\tlabel\nw1 new\t1\n")
    splits = real_rows(str(sst), cfg, seed=0)
    assert (len(splits["train"]), len(splits["val"]), splits["test"]) == (8, 2, [("w1 new", 1)])
    data = SentimentData(rows=splits, batch_size=4, eval_batch_size=4, min_freq=1, max_vocab=None,
                         max_tokens=5, cls_token=False, seed=0)
    assert data.sets["test"].ids[0] == [data.vocab.stoi["w1"], UNK_ID]  # vocabulary from train only
    with pytest.raises(ValueError, match="no such file or folder"):
        real_rows(str(tmp_path / "missing.txt"), cfg, seed=0)


def test_an_empty_split_is_refused(tmp_path) -> None:
    path = write_uci(tmp_path / "few.txt", 4)
    with pytest.raises(ValueError, match="split is empty"):
        build_data(data_cfg(val_fraction=0.1, test_fraction=0.1), str(path), seed=0, cls_token=False)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared UCI sentiment files are absent ({SHARED})")
def test_shared_uci_files_load() -> None:
    cfg = data_cfg(files=["amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt"])
    rows = real_rows(str(SHARED), cfg, seed=0)
    assert sum(len(r) for r in rows.values()) == 3000
    assert sum(y for _, y in rows["test"]) == len(rows["test"]) // 2  # stratified: balanced like the source
    data = build_data(cfg, str(SHARED), seed=0, cls_token=False)
    assert len(data.vocab) > 1000


def model(encoder: str, variant: str, **kwargs) -> SentimentModel:
    return SentimentModel(vocab=20, num_classes=2, encoder=encoder, emb_dim=8, hidden=16, layers=1, heads=2,
                          ff_dim=16, dropout=0.0, attn_dropout=0.0, variant=variant, variant_kwargs=kwargs,
                          encoder_variant=kwargs.pop("encoder_variant", None), max_len=6)


@pytest.mark.parametrize("encoder, variant", [
    ("lstm", "none"), ("lstm", "additive"), ("lstm", "uniform"), ("lstm", "linformer"), ("lstm", "hard"),
    ("lstm", "memory"), ("transformer", "sdpa"), ("transformer", "performer"), ("transformer", "luong"),
])
def test_forward_backward(encoder: str, variant: str) -> None:
    torch.manual_seed(0)
    net = model(encoder, variant)
    ids = pad([[4, 5, 6, 7, 8, 9], [5, 6, 7]])
    logits = net(ids)
    assert logits.shape == (2, 2)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    net.eval()  # padding does not change a review's prediction
    torch.testing.assert_close(net(ids)[1], net(ids[1:, :3])[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_by_direction_matches_the_packed_lstm(layers: int) -> None:
    """Unequal lengths take the per-direction path; it must give the packed BiLSTM's numbers."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    torch.manual_seed(0)
    enc = LSTMEncoder(vocab=30, emb_dim=8, hidden=12, layers=layers, dropout=0.0).eval()
    ids = pad([torch.randint(1, 30, (n,)).tolist() for n in (7, 3, 5, 1, 7)])
    states, mask, final = enc(ids)
    lengths = mask.sum(1)
    packed, (h_n, _) = enc.lstm(pack_padded_sequence(enc.emb(ids), lengths, batch_first=True,
                                                     enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=ids.shape[1])
    torch.testing.assert_close(states, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(final, torch.cat([h_n[-2], h_n[-1]], dim=-1), atol=1e-6, rtol=1e-5)
    for row, n in enumerate(lengths.tolist()):  # each review alone (the packed path) agrees too
        alone, _, alone_final = enc(ids[row:row + 1, :n])
        torch.testing.assert_close(states[row, :n], alone[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(final[row], alone_final[0], atol=1e-6, rtol=1e-5)


def test_variant_reasons() -> None:
    assert TASK.variant_reasons("none") == [] and TASK.variant_reasons("uniform") == []
    assert TASK.variant_reasons("linformer") == []
    assert "graph attention" in TASK.variant_reasons("dot")[0]
    cfg = TASK.config("quick")
    cfg["model"]["attn_dropout"] = 0.1
    assert any("dropout" in r for r in TASK.variant_reasons("linear", cfg))
    cfg["model"].update(attn_dropout=0.0, encoder="transformer")
    assert "encoder_variant" in TASK.variant_reasons("none", cfg)[0]
    cfg["model"]["encoder_variant"] = "sdpa"
    assert TASK.variant_reasons("none", cfg) == []
    with pytest.raises(ValueError, match="unknown variants"):
        TASK.build({**cfg, "model": {**cfg["model"], "variant_kwargs": {"nope": {}}}}, "sdpa", None, 0)


def test_attention_weights_for_heatmaps() -> None:
    cfg = TASK.config("quick")
    cfg["data"].update(data_cfg())
    cfg["model"].update(hidden=16, emb_dim=8)
    data, module = TASK.build(cfg, "additive", None, 0)
    batch = collate([data.sets["val"][i] for i in range(3)])
    maps = module.attention_weights(batch)
    real = batch["ids"] != 0
    torch.testing.assert_close(maps["weights"].sum(-1), torch.ones(3))
    assert (maps["weights"] * ~real).abs().max() == 0
    assert [len(t) for t in maps["tokens"]] == real.sum(1).tolist()
    _, sdpa = TASK.build(cfg, "sdpa", None, 0)
    with pytest.raises(attention.NotSupportedError, match="need_weights"):
        sdpa.attention_weights(batch)
    _, none = TASK.build(cfg, "none", None, 0)
    with pytest.raises(ValueError, match="no attention pooling"):
        none.attention_weights(batch)


def test_presets_share_their_keys() -> None:
    quick, full = TASK.config("quick"), TASK.config("full")
    for section in ("data", "model", "optim"):  # a sweep's per-variant rates belong to one preset only
        own = set(RUNNER_OPTIM_KEYS)
        assert set(quick[section]) - own == set(full[section]) - own, section


@pytest.mark.parametrize("data", [None, "uci"])
def test_train_and_test_end_to_end(tmp_path, data: str | None) -> None:
    path = str(write_uci(tmp_path / "uci.txt", 40)) if data else None
    overrides = {"data.n_train": 40, "data.n_val": 10, "data.n_test": 10, "data.min_sentences": 1,
                 "data.max_sentences": 2, "data.batch_size": 8, "data.val_fraction": 0.25,
                 "data.test_fraction": 0.25, "model.hidden": 16, "model.emb_dim": 8, "trainer.max_epochs": 1}
    record = train_and_test("sentiment", "additive", data=path, overrides=overrides,
                            run_dir=str(tmp_path / "r"), progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    assert {"test/acc", "test/f1", "test/loss"} <= set(record["metrics"])
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "pooling" and len(saved["examples"]) == 3
    for example in saved["examples"]:
        assert len(example["weights"]) == len(example["tokens"])
        assert sum(example["weights"]) == pytest.approx(1.0)
        assert example["label"] in (0, 1) and example["prediction"] in (0, 1)


def test_no_attention_examples_without_pooling_weights() -> None:
    cfg = TASK.config("quick")
    cfg["data"].update(data_cfg())
    cfg["model"].update(hidden=16, emb_dim=8)
    for variant in ("none", "sdpa"):
        data, module = TASK.build(cfg, variant, None, 0)
        assert TASK.attention_examples(module, data) is None


def test_quick_preset_keeps_attention_variants_within_the_parameter_budget() -> None:
    config = TASK.config("quick")
    counts = {}
    for variant, reasons in TASK.applicable_variants(config).items():
        if variant not in TASK.baselines and not reasons:
            _, module = TASK.build(copy.deepcopy(config), variant, None, 0)
            counts[variant] = sum(p.numel() for p in module.parameters())
    median = sorted(counts.values())[len(counts) // 2]
    outside = {v for v, n in counts.items() if abs(n / median - 1) > 0.10}
    # luong's general score: W_a, which a learned pooling query absorbs (the preset says why)
    assert outside == {"luong"}, counts
