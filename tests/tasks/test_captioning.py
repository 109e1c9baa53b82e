"""Captioning task: scene generation, the COCO loader, model and decoding, variant checks, one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import attention
from bench.train import train_and_test
from tasks._base import apply_overrides
from tasks._text import EOS_ID, PAD_ID
from tasks.captioning import TASK
from tasks.captioning import scenes as sc
from tasks.captioning.data import CaptionData, build_data, embedded_sets
from tasks.captioning.module import coverage_penalty
from tasks.captioning.real import load_real
from tasks.decoding import beam_search, greedy

SIZES = {"train": 20, "val": 4, "test": 4}
TINY = {"data.n_train": 16, "data.n_val": 4, "data.n_test": 4, "data.batch_size": 12,
        "data.eval_batch_size": 8, "model.dim": 16, "model.hidden": 16, "model.emb_dim": 16}

# Unit tests call training_step without a Trainer; Lightning warns that self.log goes nowhere.
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def tiny_overrides(**changes) -> dict:
    encoder = {**TASK.config("quick")["model"]["encoder"], "channels": [4, 8]}
    return {**TINY, "model.encoder": encoder, "trainer.max_epochs": 1, "trainer.limit_train_batches": 2,
            **changes}


def tiny_config(**changes) -> dict:
    return apply_overrides(TASK.config("quick"), tiny_overrides(**changes))


# ---- embedded scenes ------------------------------------------------------------------------------


def test_captions_name_objects_in_reading_order():
    objects = [(4, "blue", "two", -1), (0, "red", "seven", -1)]
    assert sc.caption(objects, 3, "") == "a red seven at the top left and a blue two in the centre"
    three = objects + [(8, "green", "one", -1)]
    assert sc.caption(three, 3, "there is ") == (
        "there is a red seven at the top left , a blue two in the centre and a green one at the bottom right")


def test_generation_is_deterministic_and_holds_out_pairs():
    spec = sc.CaptionSpec(source="shapes", heldout=2)
    first = sc.generate(spec, SIZES, seed=0)
    assert first == sc.generate(spec, SIZES, seed=0) and first != sc.generate(spec, SIZES, seed=1)
    held = {tuple(p) for p in first["heldout"]}
    assert len(held) == 2
    for split in ("train", "val"):
        assert all((o[1], o[2]) not in held for s in first[split] for o in s["objects"])
        assert not any(s["novel"] for s in first[split])
    test = first["test"]
    assert len(test) == 2 * SIZES["test"] and sum(s["novel"] for s in test) == SIZES["test"]
    assert all(any((o[1], o[2]) in held for o in s["objects"]) for s in test if s["novel"])
    assert all(len(s["captions"]) == spec.references for s in test)


def test_digit_scenes_use_disjoint_handwriting_for_evaluation():
    spec = sc.CaptionSpec(source="digits")
    data = sc.generate(spec, SIZES, seed=0)
    samples = {split: {o[3] for s in data[split] for o in s["objects"]} for split in ("train", "val", "test")}
    assert not samples["train"] & (samples["val"] | samples["test"])
    images = sc.render(data["train"][:2], spec)
    assert images.shape == (2, 3, 24, 24) and images.dtype == torch.uint8 and images.sum() > 0


def test_render_places_colours_in_their_cells():
    spec = sc.CaptionSpec(source="shapes", grid=2)
    image = sc.render([{"objects": [[3, "green", "square", -1]]}], spec)[0]
    assert image[:, :8].sum() == 0 and image[:, 8:, :8].sum() == 0
    assert image[:, 12, 12].tolist() == list(sc.COLOURS["green"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"source": "photos"}, "source"), ({"grid": 4}, "grid"), ({"cell": 12}, "multiple of 8"),
    ({"min_objects": 3, "max_objects": 2}, "min_objects"), ({"heldout": 9}, "heldout"),
])
def test_bad_spec_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sc.CaptionSpec(**kwargs)


def test_embedded_sets_are_cached_and_identical(tmp_path):
    cfg = tiny_config()["data"]
    first, second = embedded_sets(cfg), embedded_sets(cfg)
    assert list((tmp_path / "cache" / "captioning").glob("*.json"))
    for split in ("train", "val", "test"):
        assert torch.equal(first[split].images, second[split].images)
        assert first[split].captions == second[split].captions
    assert len(first["test"].captions) == 2 * cfg["n_test"]


# ---- COCO files ---------------------------------------------------------------------------------------


def write_coco(root: Path, splits=("train", "test"), images_per_split=4) -> None:
    for split in splits:
        images, anns = [], []
        for i in range(images_per_split):
            name = f"{split}_{i:03d}.png"
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 10), (40 * i, 100, 200)).save(root / split / "images" / name)
            images.append({"id": 100 + i, "file_name": name})
            anns += [{"image_id": 100 + i, "id": 2 * i + j, "caption": f"A photo number {i}, take {j}."}
                     for j in range(2)]
        (root / split / "captions.json").write_text(json.dumps({"images": images, "annotations": anns}))


def real_cfg(**changes) -> dict:
    return {**TASK.config("quick")["data"], "image_size": 16, **changes}


def test_coco_folder_loads_and_holds_out_validation(tmp_path):
    write_coco(tmp_path)
    sets = load_real(str(tmp_path), real_cfg(val_fraction=0.25), seed=0)
    assert sets["train"].images.shape == (3, 3, 16, 16) and len(sets["val"].image_ids) == 1
    assert sets["test"].captions[0] == ["A photo number 0, take 0.", "A photo number 0, take 1."]
    data = CaptionData(sets=sets, batch_size=4, eval_batch_size=2, min_freq=1, max_caption_len=5,
                       train_references=None, seed=0)
    assert len(data.train_set) == 6  # 3 images x 2 captions
    batch = next(iter(data.train_dataloader()))
    assert batch["tokens_in"].shape[1] == 6  # <bos> + 5 tokens (captions cut at max_caption_len)
    one = CaptionData(sets=sets, batch_size=4, eval_batch_size=2, min_freq=1, max_caption_len=5,
                      train_references=1, seed=0)
    assert len(one.train_set) == 3
    with pytest.raises(ValueError, match="train_references"):
        CaptionData(sets=sets, batch_size=4, eval_batch_size=2, min_freq=1, max_caption_len=5,
                    train_references=0, seed=0)
    assert next(iter(data.test_dataloader()))["refs"][0][0] == "a photo number 0 , take 0 ."


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: d["annotations"].append({"image_id": 7, "caption": "x"}), "refers to image id 7, which is"),
    (lambda d: d["annotations"].__setitem__(slice(0, 2), []), r"image ids \[100\] have no caption"),
    (lambda d: d["images"][0].pop("file_name"), "needs an integer 'id' and a string 'file_name'"),
    (lambda d: d.pop("annotations"), "'annotations' list"),
])
def test_bad_coco_json_is_reported(tmp_path, edit, match):
    write_coco(tmp_path)
    path = tmp_path / "test" / "captions.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match):
        load_real(str(tmp_path), real_cfg(), seed=0)


def test_missing_and_unreadable_images_are_reported(tmp_path):
    write_coco(tmp_path, splits=("train", "val", "test"))
    (tmp_path / "val" / "images" / "val_002.png").unlink()
    with pytest.raises(ValueError, match=r"val_002\.png: image file not found"):
        load_real(str(tmp_path), real_cfg(), seed=0)
    write_coco(tmp_path, splits=("val",))
    (tmp_path / "train" / "images" / "train_001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"train_001\.png: unreadable image"):
        load_real(str(tmp_path), real_cfg(), seed=0)
    with pytest.raises(ValueError, match="missing the train/ folder"):
        load_real(str(tmp_path / "train"), real_cfg(), seed=0)  # a split folder, not the root


# ---- model, decoding, regulariser --------------------------------------------------------------------


@pytest.mark.parametrize("gate", [True, False])
def test_none_is_uniform_attention_in_the_same_decoder(gate):
    """The baseline differs from the variants only in its read (the mean instead of attention): it
    is gated like them (it was not, and beat ``uniform``, the same read, by 9 BLEU-4 in the quick
    preset), so ``none`` with ``uniform``'s shared weights gives ``uniform``'s logits exactly."""
    cfg = tiny_config(**{"model.gate": gate})
    data, uniform = TASK.build(cfg, "uniform", None, seed=0)
    _, none = TASK.build(cfg, "none", None, seed=1)
    shared = {k: v for k, v in uniform.model.state_dict().items() if not k.startswith(("query.", "key."))}
    none.model.load_state_dict(shared)  # strict: the baseline has every other parameter, gate included
    uniform.eval(), none.eval()
    batch = next(iter(data.train_dataloader()))
    with torch.no_grad():
        expected, _ = uniform.model(batch["images"], batch["image_row"], batch["tokens_in"])
        got, _ = none.model(batch["images"], batch["image_row"], batch["tokens_in"])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(("variant", "lam"), [
    ("reference", 0.5), ("hard", 0.5), ("additive", 0.0), ("sdpa", 0.0), ("memory", 0.5), ("none", 0.5)])
def test_forward_backward_and_maps(variant, lam):
    cfg = tiny_config(**{"model.doubly_stochastic": lam})
    assert TASK.variant_reasons(variant, cfg) == []
    data, module = TASK.build(cfg, variant, None, seed=0)
    loss = module.training_step(next(iter(data.train_dataloader())), 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.encoder.parameters())
    batch = next(iter(data.test_dataloader()))
    if variant == "none":
        with pytest.raises(ValueError, match="no attention maps"):
            module.attention_maps(batch)
    elif attention.REGISTRY[variant].capabilities.weights:
        maps = module.attention_maps(batch)
        assert maps["weights"].shape[0] == len(batch["refs"]) and maps["weights"].shape[2:] == (3, 3)
        assert len(maps["captions"]) == len(batch["refs"])
    else:
        with pytest.raises(attention.NotSupportedError):
            module.attention_maps(batch)


def test_coverage_penalty_by_hand():
    # two regions, three steps of which the last is padding: sums over real steps (1, 0.5, 0.5)
    alphas = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
    tokens = torch.tensor([[5, EOS_ID, PAD_ID]])
    assert coverage_penalty(alphas, tokens).item() == pytest.approx(0.0)
    alphas = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]]])
    assert coverage_penalty(alphas, tokens).item() == pytest.approx((1 - 2) ** 2 + (1 - 0) ** 2)


def test_beam_of_one_is_greedy_and_beams_are_no_worse():
    cfg = tiny_config()
    data, module = TASK.build(cfg, "reference", None, seed=0)
    module.eval()
    images = next(iter(data.test_dataloader()))["images"]
    memory = module.model.encode(images, torch.arange(len(images)))
    options = {"length_norm": "length", "stop": "all"}  # what CaptionModule decodes with
    greedy_ids, _ = greedy(module.model, memory, 6)
    beam_ids = beam_search(module.model, memory, 6, beam_size=1, length_penalty=0.0, **options)
    assert torch.equal(greedy_ids, beam_ids)
    wide = beam_search(module.model, memory, 6, beam_size=3, length_penalty=0.0, **options)
    assert wide.shape[0] == len(images) and wide.shape[1] <= 6
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(module.model, memory, 6, beam_size=0, length_penalty=0.0, **options)


def test_variant_reasons_follow_capabilities_and_the_regulariser():
    on, off = tiny_config(**{"model.doubly_stochastic": 1.0}), tiny_config(**{"model.doubly_stochastic": 0.0})
    for name, cls in attention.REGISTRY.items():
        if not issubclass(cls, attention.DenseAttention) or "cuda" not in cls.capabilities.devices:
            continue
        weightless = not cls.capabilities.weights
        assert any("need_weights" in r for r in TASK.variant_reasons(name, on)) == weightless, name
        assert not any("need_weights" in r for r in TASK.variant_reasons(name, off)), name
    assert TASK.variant_reasons("none", on) == []
    assert any("graph attention" in r for r in TASK.variant_reasons("gatv2"))
    assert any("doubly_stochastic=0" in r for r in TASK.variant_reasons("sdpa", on))


def test_build_data_reads_a_coco_folder(tmp_path):
    write_coco(tmp_path, splits=("train", "val", "test"))
    data = build_data({**tiny_config()["data"], "image_size": 16}, str(tmp_path), seed=0)
    assert "photo" in data.vocab.stoi and len(data.eval_sets["val"]) == 4


def test_end_to_end_run_produces_a_record(tmp_path):
    overrides = tiny_overrides(**{"model.test_decode": "beam", "model.beam_size": 2})
    record = train_and_test("captioning", "reference", overrides=overrides, run_dir=str(tmp_path / "run"),
                            progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    for key in ("test/bleu1", "test/bleu4", "test/cider_d", "test/bleu4_novel", "test/cider_d_seen"):
        assert key in record["metrics"]
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "regions" and saved["examples"]


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_shipped_presets_build_and_train_a_step(preset):
    cfg = apply_overrides(TASK.config(preset), {"data.n_train": 4, "data.n_val": 2, "data.n_test": 2})
    data, module = TASK.build(cfg, "reference", None, seed=0)
    assert cfg["model"]["encoder"]["grid"] == cfg["data"]["grid"]  # regions aligned with the board
    module.training_step(next(iter(data.train_dataloader())), 0).backward()
    assert module.caption(next(iter(data.test_dataloader()))["images"][:2], "beam")


def test_end_to_end_run_on_coco_files(tmp_path):
    write_coco(tmp_path / "coco")
    overrides = tiny_overrides(**{"data.image_size": 24, "data.val_fraction": 0.25})
    record = train_and_test("captioning", "hard", data=str(tmp_path / "coco"), overrides=overrides,
                            run_dir=str(tmp_path / "run"), progress=False)
    assert record["status"] == "ok" and "test/cider_d" in record["metrics"]
    assert "test/bleu4_novel" not in record["metrics"]  # real data has no held-out combinations


@pytest.mark.parametrize("variant", ["hard", "linear", "none"])
def test_attention_examples_for_the_report(variant):
    data, module = TASK.build(tiny_config(), variant, None, seed=0)
    saved = TASK.attention_examples(module, data)
    if variant != "hard":
        assert saved is None  # no attention, or weights the variant cannot form
        return
    json.dumps(saved)
    assert saved["kind"] == "regions" and len(saved["examples"]) == 3
    for example in saved["examples"]:
        assert example["grid"] == [3, 3] and len(example["weights"]) == len(example["steps"])
        assert all(len(w) == 9 for w in example["weights"])
        assert torch.tensor(example["image"]).shape == (3, 24, 24)
    assert "reference:" in saved["examples"][0]["text"]


def test_captioning_bleu_1_to_4_equals_torchmetrics() -> None:
    import random

    from torchmetrics.text import BLEUScore

    from tasks.captioning.module import bleu

    rng = random.Random(3)
    words = ["a", "red", "blue", "cube", "ball", "left", "of", "right", "the", "small"]
    refs = [[" ".join(rng.choices(words, k=rng.randint(3, 9))) for _ in range(rng.randint(1, 3))]
            for _ in range(40)]
    hyps = [" ".join(w if rng.random() < 0.6 else rng.choice(words) for w in rs[0].split()) for rs in refs]
    hyps[0] = "zzz"  # a hypothesis with no match and one shorter than every reference
    for n in (1, 2, 3, 4):
        assert bleu(hyps, refs, n) == pytest.approx(100 * float(BLEUScore(n_gram=n)(hyps, refs)), abs=1e-4)
