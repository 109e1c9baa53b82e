"""Shared text utilities: tokenizer, vocabulary, line files, padding, batching, variant checks."""

from __future__ import annotations

import pytest
import torch

from tasks._text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    AttentionUse,
    LengthBatchSampler,
    Vocab,
    dense_variant_reasons,
    forms_weights,
    pad,
    read_lines,
    run_device,
    spread,
    tokenize,
)


def test_tokenize_splits_words_and_punctuation() -> None:
    assert tokenize("Great, isn't it?!") == ["great", ",", "isn't", "it", "?", "!"]
    assert tokenize("A well-made 10/10 phone") == ["a", "well-made", "10", "/", "10", "phone"]
    assert tokenize("Keep Case", lowercase=False) == ["Keep", "Case"]
    assert tokenize("  \t ") == []


def test_vocab_counts_order_and_limits() -> None:
    vocab = Vocab.build([["b", "a", "b"], ["c", "b", "a"]], min_freq=2)
    assert vocab.itos == [*SPECIALS, "b", "a"]  # by count, then alphabetically; "c" is too rare
    assert vocab.encode(["a", "zzz"]) == [vocab.stoi["a"], UNK_ID]
    assert Vocab.build([["b", "a", "b", "c"]], max_size=1).itos[4:] == ["b"]
    ids = [BOS_ID, vocab.stoi["b"], PAD_ID, vocab.stoi["a"], EOS_ID, vocab.stoi["b"]]
    assert vocab.decode(ids) == ["b", "a"]


@pytest.mark.parametrize("kwargs", [{"min_freq": 0}, {"min_freq": 1.5}, {"max_size": 0}, {"max_size": True}])
def test_vocab_rejects_bad_limits(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Vocab.build([["a"]], **kwargs)


def test_vocab_needs_specials_first() -> None:
    with pytest.raises(ValueError, match="specials"):
        Vocab(["a", "b", "c", "d"])


def test_read_lines_reports_file_and_line(tmp_path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("one\r\ntwo\n")
    assert read_lines(good) == ["one", "two"]
    bad = tmp_path / "bad.txt"
    bad.write_text("one\n\nthree\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: empty line"):
        read_lines(bad)
    binary = tmp_path / "latin.txt"
    binary.write_bytes(b"ok\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"latin\.txt:2: not UTF-8"):
        read_lines(binary)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="the file is empty"):
        read_lines(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="file not found"):
        read_lines(tmp_path / "missing.txt")


def test_pad_right_pads() -> None:
    assert pad([[5, 6, 7], [8]]).tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]


def test_length_batch_sampler_is_a_deterministic_partition() -> None:
    lengths = [(i * 7) % 23 for i in range(103)]
    make = lambda: LengthBatchSampler(lengths, batch_size=8, shuffle=True, seed=3, pool=4)  # noqa: E731
    first, second = make(), make()
    epoch0 = list(first)
    assert epoch0 == list(second)  # same seed, same epoch
    assert sorted(i for batch in epoch0 for i in batch) == list(range(103))
    assert len(epoch0) == len(first) == 13
    assert list(first) != epoch0  # the next epoch reshuffles
    for batch in epoch0:  # sorted within a pool: each batch spans a narrow range of lengths
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)
    ordered = list(LengthBatchSampler(lengths, batch_size=50, shuffle=False, seed=0))
    assert ordered == [list(range(50)), list(range(50, 100)), [100, 101, 102]]
    with pytest.raises(ValueError, match="batch_size"):
        LengthBatchSampler(lengths, batch_size=0, shuffle=False, seed=0)


def test_dense_variant_reasons_come_from_capabilities() -> None:
    cross = [AttentionUse("pooling", lq=1, lk=3, key_padding=True, causal=False)]
    causal = [AttentionUse("decoder", lq=3, lk=3, key_padding=False, causal=True)]
    assert dense_variant_reasons("none", cross) == []
    assert dense_variant_reasons("additive", cross + causal) == []
    assert dense_variant_reasons("linformer", cross) == []
    assert dense_variant_reasons("linformer", causal) == ["decoder: linformer has no causal form"]
    assert "need_weights" in dense_variant_reasons("sdpa", [cross[0]._replace(need_weights=True)])[0]
    assert "dropout_p" in dense_variant_reasons("performer", [cross[0]._replace(dropout_p=0.1)])[0]
    assert "device=cpu" in dense_variant_reasons("xformers", cross)[0]
    assert "graph attention" in dense_variant_reasons("gat", cross)[0]
    assert "unknown variant 'nope'" in dense_variant_reasons("nope", cross)[0]


def test_dense_variant_reasons_ask_the_instance_the_model_would_build() -> None:
    cross = [AttentionUse("pooling", lq=1, lk=3, key_padding=True, causal=False, head_dim=8)]
    efficient = dense_variant_reasons("sdpa", cross, kwargs={"backend": "efficient"})
    assert efficient == ["pooling: backend 'efficient' is a CUDA kernel; torch has no cpu implementation"]
    assert dense_variant_reasons("sdpa", cross, kwargs={"backend": "math"}) == []
    with pytest.raises(ValueError, match=r"model.variant_kwargs for 'sdpa' .*backend must be one of"):
        dense_variant_reasons("sdpa", cross, kwargs={"backend": "fastest"})


def test_run_device_follows_the_trainer_config() -> None:
    assert run_device({"accelerator": "cpu"}) == "cpu"
    assert run_device({"accelerator": "gpu"}) == "cuda"
    assert run_device({}) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_spread_and_forms_weights() -> None:
    assert spread(10, 3) == [0, 4, 9] and spread(2, 3) == [0, 1] and spread(5, 1) == [0]
    assert forms_weights("additive") and not forms_weights("sdpa") and not forms_weights("none")
