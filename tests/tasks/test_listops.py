"""ListOps task: LRA-rule generator, LRA TSV loader, padding, variant checks, one end-to-end run."""

from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from bench.train import train_and_test
from tasks._base import RUNNER_OPTIM_KEYS, apply_overrides, variant_kwargs
from tasks._text import BOS_ID, pad
from tasks.listops import TASK
from tasks.listops.data import VOCAB, build_data, real_rows
from tasks.listops.model import ListOpsModel
from tasks.listops.synthetic import (
    ListOpsSpec,
    depth,
    evaluate,
    generate_listops,
    longest_expression,
    lra_source,
    tokens,
)

SMALL = ListOpsSpec(seed=3, n_train=200, n_val=20, n_test=20, max_depth=4, max_args=4, min_length=6,
                    max_length=40)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def read(tokens_: list[str], at: int = 0) -> tuple[int, int, int, int]:
    """An independent evaluator: (value, position after the expression, levels, widest operator)."""
    head = tokens_[at]
    if head.isdigit():
        return int(head), at + 1, 1, 0
    args, levels, widest, at = [], 0, 0, at + 1
    while tokens_[at] != "]":
        value, at, sub_levels, sub_widest = read(tokens_, at)
        args.append(value)
        levels, widest = max(levels, sub_levels), max(widest, sub_widest)
    ops = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
           "[MED": lambda a: math.floor(statistics.median(a))}  # numpy's median, then int()
    return ops[head](args), at + 1, levels + 1, max(widest, len(args))


@pytest.mark.parametrize("text, value", [
    ("[MAX 2 9 ]", 9), ("[MIN 4 7 1 ]", 1), ("[SM 5 6 ]", 1), ("[SM 9 9 9 ]", 7),
    ("[MED 3 1 2 ]", 2), ("[MED 1 2 ]", 1), ("[MED 3 8 ]", 5), ("[MED 9 0 4 7 ]", 5),
    ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9), ("[MED 3 [SM 5 6 ] 8 1 ]", 2),
    ("[SM [MAX 1 [MIN 8 9 ] ] [MED 0 0 4 ] 7 ]", 5), ("6", 6),
])
def test_values_match_an_independent_evaluator(text: str, value: int) -> None:
    assert read(text.split())[0] == value

    def build(toks: list[str]):
        stack: list = [[]]
        for tok in toks:
            if tok.startswith("["):
                stack.append([tok])
            elif tok == "]":
                op, *args = stack.pop()
                stack[-1].append((op, args))
            else:
                stack[-1].append(int(tok))
        return stack[0][0]

    built = build(text.split())
    assert evaluate(built) == value and tokens(built) == text.split()


def test_lra_source_is_the_generators_parenthesised_pairing() -> None:
    assert lra_source(("[MAX", [2, 9])) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert lra_source(("[SM", [("[MIN", [1, 2]), 3])) == "( ( ( [SM ( ( ( [MIN 1 ) 2 ) ] ) ) 3 ) ] )"


def test_generation_is_deterministic_and_unique() -> None:
    first = generate_listops(SMALL)
    assert first == generate_listops(SMALL)
    assert generate_listops(ListOpsSpec(**{**SMALL.__dict__, "seed": 4})) != first
    assert [len(first[s]) for s in ("train", "val", "test")] == [200, 20, 20]
    sources = [source for split in first.values() for source, _ in split]
    assert len(set(sources)) == len(sources)  # no expression in two splits, as LRA's set


def test_generator_respects_its_limits_and_labels() -> None:
    rows = [row for split in generate_listops(SMALL).values() for row in split]
    levels, widest = set(), set()
    for source, value in rows:
        toks = source.split()
        assert SMALL.min_length <= len(toks) <= SMALL.max_length
        got, end, level, wide = read(toks)
        assert end == len(toks) and got == value
        assert level <= SMALL.max_depth and (wide == 0 or 2 <= wide <= SMALL.max_args)
        levels.add(level)
        widest.add(wide)
    assert max(levels) == SMALL.max_depth and max(widest) == SMALL.max_args  # the limits are reached
    assert depth(("[MAX", [1, ("[MIN", [2, 3])])) == 3
    assert longest_expression(3, 2) == 2 + 2 * (2 + 2 * 1)


def test_classes_are_balanced_ish() -> None:
    spec = ListOpsSpec(n_train=2000, n_val=1, n_test=1, max_depth=4, max_args=5, min_length=10,
                       max_length=120)
    rows = generate_listops(spec)["train"]
    shares = [sum(v == c for _, v in rows) / len(rows) for c in range(10)]
    assert max(shares) < 0.2 and min(shares) > 0.05


@pytest.mark.parametrize("changes, match", [
    ({"min_length": 50, "max_length": 40}, "min_length=50 > max_length=40"),
    ({"max_depth": 2, "max_args": 3, "min_length": 6}, "unreachable: .* at most 5 tokens"),
    ({"max_args": 1}, "max_args must be an integer >= 2"),
    ({"n_val": 0}, "n_val must be"),
])
def test_bad_specs_are_refused(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ListOpsSpec(**{**SMALL.__dict__, **changes})


def test_a_window_with_too_few_expressions_is_refused() -> None:
    with pytest.raises(ValueError, match="distinct expressions"):
        generate_listops(ListOpsSpec(n_train=500, n_val=1, n_test=1, max_depth=2, max_args=2, min_length=4,
                                     max_length=4))  # [OP d d ]: 4 x 100 expressions


def write_lra(folder: Path, rows: dict[str, list[tuple[str, int]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        body = "".join(f"{source}\t{value}\n" for source, value in lines)
        (folder / f"basic_{split}.tsv").write_text("Source\tTarget\n" + body)
    return folder


FIXTURE = {"train": [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [SM ( ( ( [MIN 1 ) 2 ) ] ) ) 3 ) ] )", 4)],
           "val": [("( ( [MED 3 ) 8 ) ] )", 5)], "test": [("7", 7), ("( ( ( [MIN 4 ) 6 ) ] )", 4)]}


def test_lra_files_are_read_as_lra_tokenises(tmp_path) -> None:
    rows = real_rows(str(write_lra(tmp_path / "lra", FIXTURE)), max_length=20)
    assert rows["train"] == [("[MAX 2 9 ]", 9), ("[SM [MIN 1 2 ] 3 ]", 4)]
    assert [len(rows[s]) for s in ("val", "test")] == [1, 2]
    cfg = {"max_length": 20, "batch_size": 2, "eval_batch_size": 2}
    data = build_data(cfg, str(tmp_path / "lra"), seed=0)
    assert data.sets["train"].ids[0].tolist() == [BOS_ID, *VOCAB.encode(["[MAX", "2", "9", "]"])]
    assert data.max_len == 8  # [CLS] + the 7 tokens of the longest
    tree = ("[SM", [("[MIN", [1, 2]), 3])
    folder = write_lra(tmp_path / "gen", {s: [(lra_source(tree), evaluate(tree))] for s in FIXTURE})
    assert real_rows(str(folder), max_length=20)["val"] == [(" ".join(tokens(tree)), 4)]  # generator's files


@pytest.mark.parametrize("text, match", [
    ("Src\tTarget\n1\t1\n", r"basic_train\.tsv:1: expected the header 'Source<TAB>Target'"),
    ("Source\tTarget\n( [MAX 1 2 ] )\n", r"basic_train\.tsv:2: expected 2 tab-separated fields"),
    ("Source\tTarget\n[MAX 1 {2} ]\t2\n", r"basic_train\.tsv:2: \['\{2\}'\] not ListOps tokens"),
    ("Source\tTarget\n[MAX 1 2 ]\t10\n", r"basic_train\.tsv:2: value '10' is not a digit"),
    ("Source\tTarget\n( )\t1\n", r"basic_train\.tsv:2: empty expression"),
    ("Source\tTarget\n" + "[SM " + "1 " * 30 + "]\t0\n", r"32 tokens, more than data.max_length=20"),
    ("Source\tTarget\n", r"no expressions after the header"),
])
def test_bad_lra_files_name_file_and_line(tmp_path, text: str, match: str) -> None:
    folder = write_lra(tmp_path / "lra", FIXTURE)
    (folder / "basic_train.tsv").write_text(text)
    with pytest.raises(ValueError, match=match):
        real_rows(str(folder), max_length=20)


def test_bad_folders_are_refused_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"expected a folder holding basic_train\.tsv"):
        real_rows(str(tmp_path / "nowhere"), max_length=20)
    folder = write_lra(tmp_path / "lra", {"train": FIXTURE["train"], "val": FIXTURE["val"]})
    with pytest.raises(ValueError, match=r"lra: missing basic_test\.tsv"):
        real_rows(str(folder), max_length=20)
    with pytest.raises(ValueError, match=r"basic_test\.tsv"):  # through the task, before any model
        TASK.build(TASK.config("quick"), "reference", str(folder), 0)


def model(variant: str, **kwargs) -> ListOpsModel:
    return ListOpsModel(vocab=len(VOCAB), hidden=16, heads=2, layers=2, ff_dim=16, dropout=0.0,
                        attn_dropout=0.0, variant=variant, variant_kwargs=kwargs, max_len=12)


@pytest.mark.parametrize("variant, kwargs", [("reference", {}), ("none", {}), ("linformer", {"rank": 4}),
                                             ("local", {"window": 2})])
def test_padding_is_masked(variant: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    net = model(variant, **kwargs).eval()
    nested = ["[MAX", "2", "[MIN", "4", "7", "]", "0", "]"]
    ids = pad([[BOS_ID, *VOCAB.encode(nested)], [BOS_ID, *VOCAB.encode(["6"])]])
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)  # 3 more padding columns
    torch.testing.assert_close(net(padded), net(ids), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(net(ids[1:, :2])[0], net(ids)[1], atol=1e-5, rtol=1e-4)


def test_cls_attention_is_the_last_blocks_row_of_the_cls_query() -> None:
    torch.manual_seed(0)
    net = model("reference").eval()
    ids = pad([[BOS_ID, *VOCAB.encode(["[SM", "3", "4", "]"])], [BOS_ID, *VOCAB.encode(["6"])]])
    logits, weights = net.cls_attention(ids)
    torch.testing.assert_close(logits, net(ids))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert weights.shape == ids.shape and weights[1, 2:].abs().max() == 0  # padding gets nothing
    with pytest.raises(ValueError, match="no attention"):
        model("none").cls_attention(ids)


def test_variant_reasons() -> None:
    assert TASK.variant_reasons("none") == [] and TASK.variant_reasons("uniform") == []
    assert TASK.variant_reasons("linformer") == [] and TASK.variant_reasons("reference") == []
    assert "graph attention" in TASK.variant_reasons("dot")[0]
    assert "unknown variant 'nope'" in TASK.variant_reasons("nope")[0]
    cfg = TASK.config("quick")
    cfg["model"]["attn_dropout"] = 0.1
    assert any("dropout" in r for r in TASK.variant_reasons("linear", cfg))
    with pytest.raises(ValueError, match="unknown variants"):
        TASK.build({**cfg, "model": {**cfg["model"], "variant_kwargs": {"nope": {}}}}, "sdpa", None, 0)


def test_computes_reference_when_a_window_covers_every_key() -> None:
    cfg = TASK.config("quick")
    cfg["model"]["variant_kwargs"] = {"local": {"mode": "sliding", "window": cfg["data"]["max_length"]}}
    assert "computes reference exactly" in TASK.computes_reference("local", cfg)
    cfg["model"]["variant_kwargs"] = {"local": {"mode": "sliding", "window": cfg["data"]["max_length"] - 1}}
    assert TASK.computes_reference("local", cfg) is None
    assert TASK.computes_reference("none", cfg) is None


def test_presets_share_their_keys() -> None:
    quick, full = TASK.config("quick"), TASK.config("full")
    for section in ("data", "model", "optim"):  # a sweep's per-variant rates belong to one preset only
        own = set(RUNNER_OPTIM_KEYS)
        assert set(quick[section]) - own == set(full[section]) - own, section


def test_quick_preset_keeps_attention_variants_within_the_parameter_budget() -> None:
    config = TASK.config("quick")
    m, longest = config["model"], config["data"]["max_length"] + 1  # the most linformer's E, F could cover
    counts = {}
    for variant, reasons in TASK.applicable_variants(config).items():
        if variant not in TASK.baselines and not reasons:
            net = ListOpsModel(vocab=len(VOCAB), hidden=m["hidden"], heads=m["heads"], layers=m["layers"],
                               ff_dim=m["ff_dim"], dropout=m["dropout"], attn_dropout=m["attn_dropout"],
                               variant=variant, variant_kwargs=variant_kwargs(config, variant),
                               max_len=longest)
            counts[variant] = sum(p.numel() for p in net.parameters())
    outside = {v: n for v, n in counts.items() if abs(n / counts["reference"] - 1) > 0.10}
    assert not outside, counts


TINY = {"data.n_train": 40, "data.n_val": 10, "data.n_test": 10, "data.max_depth": 3, "data.max_args": 3,
        "data.min_length": 4, "data.max_length": 20, "data.batch_size": 8, "model.hidden": 16,
        "model.ff_dim": 16, "model.layers": 1, "trainer.max_epochs": 1}


@pytest.mark.parametrize("data", [None, "lra"])
def test_train_and_test_end_to_end(tmp_path, data: str | None) -> None:
    path = str(write_lra(tmp_path / "lra", FIXTURE)) if data else None
    record = train_and_test("listops", "reference", data=path, overrides=TINY, run_dir=str(tmp_path / "r"),
                            progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    assert {"test/acc", "test/loss"} <= set(record["metrics"])
    assert record["protocol"]["train_steps"] == (1 if data else 5)  # 2 or 40 expressions, batches of 8
    assert record["test_items"]["n"] == (2 if data else 10)
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "pooling" and len(saved["examples"]) == (2 if data else 3)
    for example in saved["examples"]:
        assert example["tokens"][0] == "[CLS]" and len(example["weights"]) == len(example["tokens"])
        assert sum(example["weights"]) == pytest.approx(1.0)
        assert 0 <= example["label"] <= 9 and 0 <= example["prediction"] <= 9


def test_no_attention_examples_without_weights() -> None:
    cfg = apply_overrides(TASK.config("quick"), TINY)
    for variant in ("none", "sdpa", "linformer"):
        data, module = TASK.build(copy.deepcopy(cfg), variant, None, 0)
        assert TASK.attention_examples(module, data) is None


@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_positions_inside_attention_keep_padding_masked(positions: str) -> None:
    torch.manual_seed(0)
    net = ListOpsModel(vocab=len(VOCAB), hidden=16, heads=2, layers=2, ff_dim=16, dropout=0.0,
                       attn_dropout=0.0, variant="reference", max_len=12, positions=positions).eval()
    assert not net.encoder.embed.sinusoidal
    nested = ["[MAX", "2", "[MIN", "4", "7", "]", "0", "]"]
    ids = pad([[BOS_ID, *VOCAB.encode(nested)], [BOS_ID, *VOCAB.encode(["6"])]])
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(net(padded), net(ids), atol=1e-5, rtol=1e-4)
    config = apply_overrides(TASK.config("quick"), {"model.positions": positions}, TASK.optional_keys)
    assert TASK.variant_reasons("sdpa", config) == []
    assert bool(TASK.variant_reasons("linear", config)) == (positions == "alibi")  # no additive masks
