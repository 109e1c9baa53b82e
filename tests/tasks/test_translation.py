"""Translation task: the generated language pair, the Multi30k loader, both model families, decoding,
metrics, variant checks and one end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import attention
from bench.train import train_and_test
from tasks._base import RUNNER_OPTIM_KEYS
from tasks._text import BOS_ID, EOS_ID, UNK_ID, pad
from tasks.decoding import beam_search, greedy
from tasks.translation import TASK
from tasks.translation.data import TranslationData, build_data, collate, parallel_pairs
from tasks.translation.metrics import corpus_bleu, corpus_chrf, sentence_stats, tokenize_13a
from tasks.translation.model import build_model
from tasks.translation.module import bucket_bleu, bucket_names
from tasks.translation.rnn import RNNSeq2Seq, position_free_steps
from tasks.translation.synthetic import Generator, Lexicon, PairSpec, generate_pairs
from tasks.translation.transformer import TransformerSeq2Seq

SMALL = PairSpec(seed=1, nouns=12, adjectives=6, verbs=6, adverbs=3, prepositions=3, min_len=5, max_len=20,
                 n_train=40, n_val=8, n_test=8)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def tiny_config(**model) -> dict:
    cfg = TASK.config("quick")
    cfg["data"].update(n_train=40, n_val=8, n_test=8, nouns=12, adjectives=6, verbs=6, adverbs=3,
                       prepositions=3, max_len=16, batch_size=8, eval_batch_size=8)
    cfg["model"].update(emb_dim=8, hidden=16, ff_dim=16, heads=2, **model)
    return cfg


def test_generation_is_deterministic_with_disjoint_splits() -> None:
    first, second = generate_pairs(SMALL), generate_pairs(SMALL)
    assert first == second
    assert generate_pairs(PairSpec(**{**SMALL.__dict__, "seed": 2})) != first
    assert [len(first[s]) for s in ("train", "val", "test")] == [40, 8, 8]
    sources = [src for split in first.values() for src, _ in split]
    assert len(set(sources)) == len(sources)
    for split in first.values():
        for src, tgt in split:
            assert 5 <= len(src.split()) <= 20 and len(src.split()) == len(tgt.split())


def test_lexicon_is_one_to_one_and_target_forms_are_distinct() -> None:
    import random

    lex = Lexicon(PairSpec(), random.Random(0))
    stems = [*lex.noun_stem.values(), *lex.adj_stem.values(), *lex.verb_stem.values()]
    assert len(set(stems)) == len(stems)
    source = [*lex.nouns, *(n + "s" for n in lex.nouns), *lex.verbs, *(v + "s" for v in lex.verbs),
              *lex.adjectives, *lex.adverbs, *lex.prepositions]
    assert len(set(source)) == len(source)
    rng = random.Random(5)
    pairs = [Generator(lex, rng).sentence(5, 60) for _ in range(300)]
    # Each source word always maps to the same number of target forms it can agree into (1 for
    # function words per gender/number, up to 4 for adjectives): the mapping is learnable.
    vocab_src = {w for s, _ in pairs for w in s}
    vocab_tgt = {w for _, t in pairs for w in t}
    assert not vocab_src & vocab_tgt and len(vocab_tgt) > len(vocab_src) / 2


def test_word_order_is_not_monotonic() -> None:
    import random

    rng = random.Random(0)
    lex = Lexicon(PairSpec(), rng)
    gen = Generator(lex, rng)
    moved = 0
    for _ in range(50):
        src, tgt = gen.clause()
        verb = next(w for w in src if w.rstrip("s") in lex.verb_stem or w in lex.verb_stem)
        moved += tgt.index(next(t for t in tgt if t.endswith(("at", "ant")))) != src.index(verb)
        assert tgt[-1].endswith(("at", "ant"))  # SOV: the verb closes the clause
    assert moved == 50


def test_embedded_data_is_cached_and_vocab_comes_from_train(tmp_path) -> None:
    cfg = tiny_config()["data"]
    first = build_data(cfg, None, seed=0)
    second = build_data(cfg, None, seed=0)
    assert first.sets["test"].refs == second.sets["test"].refs
    assert list((tmp_path / "cache" / "translation").glob("*.json"))
    train_words = {w for s in first.sets["train"].src for w in s}
    assert UNK_ID not in train_words  # every training word is in the vocabulary


def write_multi30k(folder, pairs: dict[str, list[tuple[str, str]]]) -> None:
    folder.mkdir(exist_ok=True)
    for split, rows in pairs.items():
        (folder / f"{split}.de").write_text("".join(s + "\n" for s, _ in rows))
        (folder / f"{split}.en").write_text("".join(t + "\n" for _, t in rows))


def test_multi30k_layout_loads(tmp_path) -> None:
    rows = [("Ein Hund läuft.", "A dog runs."), ("Zwei Katzen!", "Two cats!")]
    write_multi30k(tmp_path / "m30k", {"train": rows, "val": rows[:1], "test": [("Ein Vogel.", "A bird.")]})
    pairs = parallel_pairs(tmp_path / "m30k", "de", "en", lowercase=True)
    assert pairs["train"][0] == (["ein", "hund", "läuft", "."], ["a", "dog", "runs", "."])
    data = TranslationData(pairs=pairs, batch_size=2, eval_batch_size=2, min_freq=1, max_vocab=None, seed=0)
    test_src = data.sets["test"].src[0]
    assert test_src[1] == UNK_ID and test_src[0] == data.src_vocab.stoi["ein"]  # vocab from train only
    assert data.sets["test"].refs == ["a bird ."]  # references keep the real words
    batch = next(iter(data.train_dataloader()))
    assert batch["tgt_in"][:, 0].eq(BOS_ID).all() and (batch["tgt_out"] == EOS_ID).sum() == 2


def test_multi30k_errors_name_the_file(tmp_path) -> None:
    rows = [("a", "b")]
    write_multi30k(tmp_path / "m", {"train": rows, "val": rows, "test": rows})
    (tmp_path / "m" / "val.en").write_text("b\nc\n")
    with pytest.raises(ValueError, match=r"val\.de has 1 lines, .*val\.en has 2"):
        parallel_pairs(tmp_path / "m", "de", "en", lowercase=True)
    (tmp_path / "m" / "val.en").write_text("b\n")
    (tmp_path / "m" / "train.de").write_text("a\n\n")
    with pytest.raises(ValueError, match=r"train\.de:2: empty line"):
        parallel_pairs(tmp_path / "m", "de", "en", lowercase=True)
    (tmp_path / "m" / "test.en").unlink()
    (tmp_path / "m" / "train.de").write_text("a\n")
    with pytest.raises(ValueError, match=r"test\.en: file not found"):
        parallel_pairs(tmp_path / "m", "de", "en", lowercase=True)
    with pytest.raises(ValueError, match="Multi30k layout"):
        parallel_pairs(tmp_path / "nowhere", "de", "en", lowercase=True)


def test_an_empty_split_is_refused() -> None:
    pairs = {"train": [(["a"], ["b"])], "val": [(["a"], ["b"])], "test": []}
    with pytest.raises(ValueError, match="the test split is empty"):
        TranslationData(pairs=pairs, batch_size=2, eval_batch_size=2, min_freq=1, max_vocab=None, seed=0)


def tiny_batch():
    src = pad([[5, 6, 7, 8, 9], [6, 7, 5]])
    return {"src": src, "tgt_in": pad([[BOS_ID, 5, 6, 7], [BOS_ID, 8]]),
            "tgt_out": pad([[5, 6, 7, EOS_ID], [8, EOS_ID]])}


def rnn(variant: str, cell: str = "gru", projections: bool = True, **kwargs) -> RNNSeq2Seq:
    return RNNSeq2Seq(src_vocab=12, tgt_vocab=11, emb_dim=8, hidden=16, cell=cell, layers=1, dropout=0.0,
                      variant=variant, variant_kwargs=kwargs, max_len=5, max_steps=4,
                      attn_projections=projections)


def transformer(variant: str, **kwargs) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(src_vocab=12, tgt_vocab=11, dim=16, heads=2, layers=1, ff_dim=16, dropout=0.0,
                              attn_dropout=0.0, variant=variant, variant_kwargs=kwargs, max_src_len=5,
                              max_tgt_len=8)


MODELS = [
    ("none", lambda: rnn("none")), ("additive", lambda: rnn("additive")),
    ("luong-lstm", lambda: rnn("luong", "lstm", score="general")),
    ("local-m", lambda: rnn("local", mode="local-m", window=1)),
    ("local-p", lambda: rnn("local", mode="local-p", window=2)),
    ("linformer", lambda: rnn("linformer", rank=4)), ("uniform", lambda: rnn("uniform")),
    ("hard", lambda: rnn("hard")), ("sparse", lambda: rnn("sparse", window=1)),
    ("memory", lambda: rnn("memory", num_slots=3)), ("performer", lambda: rnn("performer", num_features=8)),
    ("raw-luong-dot", lambda: rnn("luong", projections=False, score="dot")),
    ("raw-local-m", lambda: rnn("local", projections=False, mode="local-m", window=1)),
    ("raw-none", lambda: rnn("none", projections=False)), ("T-sdpa", lambda: transformer("sdpa")),
    ("T-performer", lambda: transformer("performer", num_features=8)),
    ("T-local", lambda: transformer("local", window=1)),
]


@pytest.mark.parametrize("name, make", MODELS, ids=[m[0] for m in MODELS])
def test_forward_backward_and_stepwise_decoding_agree(name: str, make) -> None:
    torch.manual_seed(0)
    model = make()
    batch = tiny_batch()
    logits = model(batch["src"], batch["tgt_in"])
    assert logits.shape == (2, 4, 11)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=0)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:3])
    model.eval()  # (hard attention samples in training and takes the argmax in eval)
    with torch.no_grad():
        full = model(batch["src"], batch["tgt_in"])
        memory = model.encode(batch["src"])
        state = model.init_state(memory)
        for t in range(4):  # step-by-step decoding reproduces the teacher-forced logits
            step, state, _ = model.step(memory, state, batch["tgt_in"][:, t])
            torch.testing.assert_close(step, full[:, t], atol=1e-5, rtol=1e-4)


def rnn_variants() -> list[str]:
    """The dense variants the RNN model runs in the quick preset (xformers only on a GPU)."""
    return [v for v in attention.VARIANTS if not TASK.variant_reasons(v)]


def count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def test_projections_give_every_variant_the_same_network_around_its_attention() -> None:
    cfg = TASK.config("quick")
    variants = rnn_variants()
    assert {"reference", "luong", "additive", "sparse", "local", "linear", "hard", "uniform"} <= set(variants)
    outside = {}
    for variant in variants:
        model = rnn(variant, **((cfg["model"]["variant_kwargs"] or {}).get(variant) or {}))
        assert model.projections and model.q_proj.in_features == 16
        outside[variant] = count(model) - count(model.attention)
    assert len(set(outside.values())) == 1, outside
    raw, raw_none = rnn("reference", projections=False), rnn("none", projections=False)
    assert count(raw) + 4 * (16 * 16 + 16) == outside["reference"]  # W_Q, W_K, W_V, W_O with biases
    assert not hasattr(raw, "q_proj") and count(raw_none) == count(raw)
    # ``none`` attends over the single memory {c}: value and output projections, no query or key ones.
    assert count(rnn("none")) + 2 * (16 * 16 + 16) == outside["reference"]
    with pytest.raises(ValueError, match="attn_projections"):
        rnn("reference", projections="yes")


def test_projections_change_what_the_variant_sees() -> None:
    torch.manual_seed(0)
    model = rnn("reference").eval()
    batch = tiny_batch()
    states = torch.randn(2, 3, 16)
    with torch.no_grad():
        model.k_proj.weight.zero_()
        model.k_proj.bias.zero_()
        _, weights = model.attend(model.encode(batch["src"]), states, need_weights=True)
        real = batch["src"] != 0
        uniform = real[:, None, :].float() / real.sum(-1)[:, None, None]  # zero keys: equal scores
        torch.testing.assert_close(weights, uniform.expand_as(weights))
        model.o_proj.weight.zero_()
        ctx, _ = model.attend(model.encode(batch["src"]), states)
        torch.testing.assert_close(ctx, model.o_proj.bias.expand_as(ctx))  # the output goes through W_O


# local-p included: its centre p_t = S * sigmoid(...) uses each row's unmasked key count S, not the
# padded length (this failed before attention/local.py read S from the key-padding mask).
PADDING_CASES = [pytest.param(name, make, id=name) for name, make in MODELS if not name.startswith("T-")]


@pytest.mark.parametrize("name, make", PADDING_CASES)
def test_a_sentence_translates_the_same_alone_and_padded_in_a_batch(name: str, make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    batch = tiny_batch()  # row 1: a 3-token source padded to 5, a 2-token target padded to 4
    with torch.no_grad():
        together = model(batch["src"], batch["tgt_in"])[1, :2]
        alone = model(batch["src"][1:, :3], batch["tgt_in"][1:, :2])[0]
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-4)


def test_quick_preset_parameter_budget_is_within_ten_percent() -> None:
    """At the quick preset's sizes (vocabularies of its generated data), attention variants' models
    are within +-10% of ``reference``'s parameter count."""
    cfg = TASK.config("quick")["model"]
    sizes = {"src_vocab": 265, "tgt_vocab": 373, "emb_dim": cfg["emb_dim"], "hidden": cfg["hidden"],
             "cell": cfg["cell"], "layers": cfg["layers"], "dropout": 0.0, "max_len": 60, "max_steps": 0,
             "attn_projections": cfg["attn_projections"]}
    assert cfg["attn_projections"] is True
    params = {v: count(RNNSeq2Seq(variant=v, variant_kwargs=(cfg["variant_kwargs"] or {}).get(v), **sizes))
              for v in rnn_variants()}
    base = params["reference"]
    assert all(abs(n / base - 1) <= 0.10 for n in params.values()), params


@pytest.mark.parametrize("variant, kwargs, free", [
    ("additive", {}, True), ("uniform", {}, True), ("hard", {}, True),
    ("local", {"mode": "local-p", "window": 1}, True),
    ("local", {"mode": "local-m", "window": 1}, False), ("sparse", {"window": 1}, False),
])
def test_position_free_probe(variant: str, kwargs: dict, free: bool) -> None:
    attn = attention.build_in_context(variant, head_dim=8, num_heads=1, max_len=6, **kwargs)
    assert position_free_steps(attn, 7, 6, 8) == (7 if free else 0)
    assert position_free_steps(None, 7, 6, 8) == 0


TRANSLATION_BEAM = {"length_norm": "gnmt", "stop": "best"}  # what TranslationModule decodes with


def test_greedy_and_beam_decode() -> None:
    torch.manual_seed(0)
    model = rnn("additive").eval()
    memory = model.encode(tiny_batch()["src"])
    best, weights = greedy(model, memory, 6)
    assert best.shape[0] == 2 and best.shape[1] <= 6 and weights is None
    one = beam_search(model, memory, 6, beam_size=1, length_penalty=0.0, **TRANSLATION_BEAM)
    torch.testing.assert_close(one, best)
    wide = beam_search(model, memory, 6, beam_size=3, length_penalty=0.6, **TRANSLATION_BEAM)
    assert wide.shape[0] == 2
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, memory, 6, beam_size=0, length_penalty=0.0, **TRANSLATION_BEAM)


@pytest.mark.parametrize("name", ["none", "additive", "local-m", "T-local"])
def test_greedy_weights_are_the_alignments_of_its_own_output(name: str) -> None:
    torch.manual_seed(0)
    model = dict(MODELS)[name]().eval()
    src = tiny_batch()["src"]
    ids, weights = greedy(model, model.encode(src), 4, need_weights=True)
    if name == "none":  # a fixed context attends to nothing
        assert weights is None
        return
    assert weights.shape == (2, ids.shape[1], src.shape[1])
    tgt_in = torch.cat([torch.full((2, 1), BOS_ID), ids[:, :-1]], dim=1)  # what each step was fed
    torch.testing.assert_close(weights, model.alignments(src, tgt_in), atol=1e-5, rtol=1e-4)


CORPORA = [
    (["the cat sat on the mat .", "a dog, barking loudly!", "it costs 3.50 dollars-ish"],
     ["the cat sat on a mat .", "the dog was barking loudly!", "it costs 3.50 dollars"]),
    (["the quick brown fox jumps"], ["the quick brown fox jumps over the lazy dog"]),
    (["&quot;quoted&quot; (yes) 1,000 / 2"], ['"quoted" (yes) 1,000/2']),
    (["x y z"], ["a b c d"]),
]


@pytest.mark.parametrize("hyps, refs", CORPORA)
def test_bleu_and_chrf_match_torchmetrics(hyps: list[str], refs: list[str]) -> None:
    from torchmetrics.text import CHRFScore, SacreBLEUScore

    nested = [[r] for r in refs]
    assert corpus_bleu(hyps, refs) == pytest.approx(100 * float(SacreBLEUScore(tokenize="13a")(hyps, nested)))
    assert corpus_chrf(hyps, refs) == pytest.approx(100 * float(CHRFScore(n_word_order=0)(hyps, nested)),
                                                    abs=1e-4)


def test_metric_edge_cases() -> None:
    assert tokenize_13a("Hi, 3.5 (ok)-") == ["Hi", ",", "3.5", "(", "ok", ")", "-"]
    assert corpus_bleu(["a b c d e"], ["a b c d e"]) == pytest.approx(100.0)
    assert corpus_bleu([""], ["a b c d"]) == 0.0
    # A missed sentence still counts in chrF's recall (torchmetrics would drop its reference).
    assert corpus_chrf(["", "same words here"], ["abcdef", "same words here"]) < 100.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])


def test_bucketed_bleu() -> None:
    assert bucket_names([14, 24]) == ["1-14", "15-24", "25+"]
    scores = bucket_bleu(sentence_stats(["a b c d", "x y z w"], ["a b c d", "p q r s"]), [3, 30], [14, 24])
    assert scores == {"1-14": pytest.approx(100.0), "25+": pytest.approx(0.0)}  # empty bucket left out


def test_variant_reasons_follow_the_model_family() -> None:
    assert TASK.variant_reasons("none") == [] and TASK.variant_reasons("linformer") == []
    trans = tiny_config(family="transformer")
    assert "fixed context" in TASK.variant_reasons("none", trans)[0]
    assert TASK.variant_reasons("linformer", trans) == [
        "decoder self-attention: linformer has no causal form"]
    assert TASK.variant_reasons("performer", trans) == []
    trans["model"]["attn_dropout"] = 0.1
    assert any("dropout" in r for r in TASK.variant_reasons("performer", trans))
    assert "graph attention" in TASK.variant_reasons("gat")[0]
    if not torch.cuda.is_available():
        assert "device=cpu" in TASK.variant_reasons("xformers")[0]
    with pytest.raises(ValueError, match="no causal form"):
        TASK.build(tiny_config(family="transformer"), "linformer", None, 0)


def test_attention_weights_for_heatmaps() -> None:
    cfg = tiny_config()
    _, module = TASK.build(cfg, "additive", None, 0)
    data = build_data(cfg["data"], None, 0)
    batch = collate([data.sets["val"][i] for i in range(3)])
    maps = module.attention_weights(batch)
    weights = maps["weights"]
    assert weights.shape[0] == 3 and weights.shape[2] == batch["src"].shape[1]
    real = batch["src"] != 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert (weights * ~real[:, None, :]).abs().max() == 0  # no weight on source padding
    assert len(maps["source"]) == len(maps["target"]) == 3
    _, sdpa = TASK.build(cfg, "sdpa", None, 0)
    with pytest.raises(attention.NotSupportedError, match="need_weights"):
        sdpa.attention_weights(batch)
    _, none = TASK.build(cfg, "none", None, 0)
    with pytest.raises(ValueError, match="no attention weights"):
        none.attention_weights(batch)


@pytest.mark.parametrize("family, variant", [("rnn", "luong"), ("transformer", "reference")])
def test_build_uses_the_configured_family(family: str, variant: str) -> None:
    cfg = tiny_config(family=family)
    data, module = TASK.build(cfg, variant, None, 0)
    expected = RNNSeq2Seq if family == "rnn" else TransformerSeq2Seq
    assert isinstance(module.model, expected)
    assert isinstance(build_model(cfg["model"], variant, data), expected)


def test_transformer_refuses_to_drop_its_projections() -> None:
    cfg = tiny_config(family="transformer", attn_projections=False)
    with pytest.raises(ValueError, match="only the rnn family"):
        TASK.build(cfg, "reference", None, 0)


def test_presets_share_their_keys() -> None:
    quick, full = TASK.config("quick"), TASK.config("full")
    own = set(RUNNER_OPTIM_KEYS)  # a sweep's per-variant rates belong to one preset only
    for section in ("data", "model", "optim"):
        assert set(quick[section]) - own == set(full[section]) - own, section
    assert quick["model"]["family"] in ("rnn", "transformer")


def test_train_and_test_end_to_end(tmp_path) -> None:
    overrides = {"data.n_train": 40, "data.n_val": 8, "data.n_test": 8, "data.max_len": 16, "data.nouns": 12,
                 "data.adjectives": 6, "data.verbs": 6, "data.batch_size": 8, "model.hidden": 16,
                 "model.emb_dim": 8, "model.test_decode": "beam", "model.beam_size": 2,
                 "trainer.max_epochs": 1, "trainer.limit_train_batches": 2}
    record = train_and_test("translation", "additive", overrides=overrides, run_dir=str(tmp_path / "run"),
                            progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    metrics = record["metrics"]
    assert {"test/bleu", "test/chrf", "test/loss"} <= set(metrics)
    assert any(k.startswith("test/bleu_len") for k in metrics)
    assert 0.0 <= metrics["test/bleu"] <= 100.0
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "alignment" and len(saved["examples"]) == 3
    example = saved["examples"][-1]  # the longest test sentence
    assert len(example["weights"]) == len(example["target"])
    assert all(len(row) == len(example["source"]) for row in example["weights"])


def test_attention_examples_only_where_weights_exist() -> None:
    cfg = tiny_config()
    for variant, expected in (("additive", True), ("sdpa", False), ("none", False)):
        data, module = TASK.build(cfg, variant, None, 0)
        assert (TASK.attention_examples(module, data) is not None) == expected
