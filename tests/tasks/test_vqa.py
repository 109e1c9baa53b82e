"""VQA task: Sort-of-CLEVR generation, VQA v2 / easy-vqa loaders, the model, variant checks, one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import attention
from bench.train import train_and_test
from tasks._base import apply_overrides
from tasks.vqa import TASK
from tasks.vqa import sortofclevr as soc
from tasks.vqa.data import VQAData, build_data, embedded_sets, soft_target
from tasks.vqa.module import metric_name
from tasks.vqa.real import load_real

SPEC = soc.SceneSpec(grid=4, cell=6, num_objects=4)
SIZES = {"train": 12, "val": 3, "test": 3}
TINY = {"data.n_train": 24, "data.n_val": 6, "data.n_test": 6, "data.batch_size": 12,
        "data.eval_batch_size": 18, "model.dim": 16, "model.hidden": 16, "model.emb_dim": 8}

# Unit tests call training_step without a Trainer; Lightning warns that self.log goes nowhere.
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))


def tiny_overrides() -> dict:
    encoder = {**TASK.config("quick")["model"]["encoder"], "channels": [8]}
    return {**TINY, "model.encoder": encoder, "trainer.max_epochs": 1, "trainer.limit_train_batches": 2}


def tiny_config() -> dict:
    return apply_overrides(TASK.config("quick"), tiny_overrides())


# ---- Sort-of-CLEVR -----------------------------------------------------------------------------


def test_generation_is_deterministic_with_every_question_type():
    first = soc.generate(SPEC, SIZES, seed=1)
    assert first == soc.generate(SPEC, SIZES, seed=1)
    assert first != soc.generate(SPEC, SIZES, seed=2)
    assert {s: len(v) for s, v in first.items()} == SIZES
    for scene in first["train"]:
        assert [q[0] for q in scene["questions"]] == list(soc.QUESTION_TYPES)
        assert len({(r, c) for r, c, _, _ in scene["objects"]}) == SPEC.num_objects  # distinct cells
        assert len({o[2] for o in scene["objects"]}) == SPEC.num_objects  # distinct colours


def test_answers_follow_the_scene():
    objects = [(0, 0, "red", "circle"), (0, 1, "green", "square"), (3, 3, "blue", "square"),
               (3, 0, "gray", "triangle")]
    red, blue = objects[0], objects[2]
    assert soc._answer("shape", red, objects, 4) == "circle"
    assert soc._answer("horizontal", blue, objects, 4) == "right"
    assert soc._answer("vertical", red, objects, 4) == "top"
    assert soc._answer("nearest", red, objects, 4) == "square"  # green, one cell away
    assert soc._answer("farthest", red, objects, 4) == "square"  # blue, the opposite corner
    assert soc._answer("count", blue, objects, 4) == "2"
    tie = [(1, 1, "red", "circle"), (0, 1, "green", "square"), (1, 0, "blue", "triangle")]
    assert soc._answer("nearest", tie[0], tie, 4) is None  # two nearest objects, two shapes


def test_render_draws_each_object_in_its_cell():
    scene = {"objects": [[1, 2, "red", "square"]], "questions": []}
    image = soc.render([scene], SPEC)[0]
    assert image.shape == (3, 24, 24)
    assert image[:, 6:12, 12:18].amax(dim=(1, 2)).tolist() == list(soc.COLOURS["red"])
    assert image[:, :6].sum() == 0 and image[:, 12:].sum() == 0


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="even"):
        soc.SceneSpec(grid=5)
    with pytest.raises(ValueError, match="num_objects"):
        soc.SceneSpec(num_objects=9, colours=("red", "green"))
    with pytest.raises(ValueError, match="not all distinct"):
        soc.SceneSpec(cell=6, shapes=("circle", "cross"))


def test_embedded_data_is_cached_and_identical(tmp_path):
    cfg = tiny_config()["data"]
    first = embedded_sets(cfg)
    assert list((tmp_path / "cache" / "vqa").glob("*.json"))
    second = embedded_sets(cfg)
    for split in ("train", "val", "test"):
        assert torch.equal(first[split].images, second[split].images)
        assert first[split].questions == second[split].questions
        assert len(first[split].questions) == 6 * cfg[f"n_{split}"]


def test_soft_targets():
    classes = {"2": 0, "3": 1}
    assert soft_target(["2"], classes) == {0: 1.0}
    # scores min(1, n / 3): "2" x3 -> 1, "3" x1 -> 1/3; normalised to a distribution
    assert soft_target(["2", "2", "two", "3"], classes) == pytest.approx({0: 0.75, 1: 0.25})
    assert soft_target(["cat"], classes) == {}


# ---- real files ----------------------------------------------------------------------------------


def _png(path: Path, colour=(200, 10, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), colour).save(path)


def write_vqa_v2(root: Path, splits=("train", "val", "test")) -> None:
    for split in splits:
        folder = root / split
        qs, anns = [], []
        for i in range(4):
            image_id, qid = 10 + i % 2, 100 + i
            _png(folder / "images" / f"COCO_{split}2014_{image_id:012d}.jpg")
            qs.append({"question_id": qid, "image_id": image_id, "question": f"What colour is thing {i}?"})
            answers = ["red"] * 4 + ["Red."] * 3 + ["blue"] + ["green"] * 2
            anns.append({"question_id": qid, "answers": [{"answer": a} for a in answers],
                         "answer_type": "other" if i % 2 else "yes/no"})
        (folder / "questions.json").write_text(json.dumps({"questions": qs}))
        (folder / "annotations.json").write_text(json.dumps({"annotations": anns}))


def write_easy_vqa(root: Path) -> None:
    for split in ("train", "test"):
        rows = [[f"what shape is in image {i} ?", "circle" if i % 2 else "square", i] for i in range(6)]
        for i in range(6):
            _png(root / split / "images" / f"{i}.png")
        (root / split / "questions.json").write_text(json.dumps(rows))


def real_cfg(**changes) -> dict:
    return {**TASK.config("quick")["data"], "image_size": 16, **changes}


def test_vqa_v2_folder_loads_with_answer_types(tmp_path):
    write_vqa_v2(tmp_path)
    sets = load_real(str(tmp_path), real_cfg(image_pattern="COCO_{split}2014_{image_id:012d}.jpg"), seed=0)
    assert sets["train"].images.shape == (2, 3, 16, 16)
    assert sets["test"].types == ["yes/no", "other"] * 2 and metric_name("yes/no") == "yes_no"
    data = VQAData(sets=sets, batch_size=4, eval_batch_size=4, min_freq=1, max_answers=10, seed=0)
    assert data.answer_list == ["red", "green", "blue"]  # "Red." normalises to "red"
    batch = next(iter(data.test_dataloader()))
    # soft scores min(1, n / 3): red 7 -> 1, green 2 -> 2/3, blue 1 -> 1/3; normalised
    assert batch["target"][0].tolist() == pytest.approx([0.5, 1 / 3, 1 / 6])


def test_easy_vqa_layout_holds_out_validation_images(tmp_path):
    write_easy_vqa(tmp_path)
    sets = load_real(str(tmp_path), real_cfg(val_fraction=0.34), seed=0)
    train_ids, val_ids = set(sets["train"].image_ids), set(sets["val"].image_ids)
    assert len(val_ids) == 2 and not train_ids & val_ids and len(train_ids) == 4
    assert sets["test"].answers[1] == ["circle"] and set(sets["test"].types) == {"all"}


def test_missing_image_is_reported_by_id_and_file(tmp_path):
    write_easy_vqa(tmp_path)
    (tmp_path / "test" / "images" / "3.png").unlink()
    with pytest.raises(ValueError, match=r"image id 3, but its file .*3\.png does not exist"):
        load_real(str(tmp_path), real_cfg(), seed=0)


def test_unreadable_image_is_reported(tmp_path):
    write_easy_vqa(tmp_path)
    (tmp_path / "train" / "images" / "2.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"2\.png: unreadable image"):
        load_real(str(tmp_path), real_cfg(), seed=0)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda q, a: a["annotations"].pop(), "question_id 103 has no entry"),
    (lambda q, a: q["questions"][0].pop("image_id"), "question 0: expected a int field 'image_id'"),
    (lambda q, a: a["annotations"].append({"question_id": 999, "answers": [{"answer": "x"}]}),
     "unknown question"),
])
def test_bad_vqa_v2_json_is_reported(tmp_path, edit, match):
    write_vqa_v2(tmp_path, splits=("train", "test"))
    qfile, afile = tmp_path / "test" / "questions.json", tmp_path / "test" / "annotations.json"
    q, a = json.loads(qfile.read_text()), json.loads(afile.read_text())
    edit(q, a)
    qfile.write_text(json.dumps(q))
    afile.write_text(json.dumps(a))
    with pytest.raises(ValueError, match=match):
        load_real(str(tmp_path), real_cfg(image_pattern="COCO_{split}2014_{image_id:012d}.jpg"), seed=0)


def test_missing_split_folder_and_bad_easy_vqa_rows(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        load_real(str(tmp_path / "nowhere"), real_cfg(), seed=0)
    write_easy_vqa(tmp_path)
    (tmp_path / "train" / "questions.json").write_text(json.dumps([["q?", "a"]]))
    with pytest.raises(ValueError, match=r"entry 0 must be \[question, answer, image_id\]"):
        load_real(str(tmp_path), real_cfg(), seed=0)


# ---- model, variants, attention maps --------------------------------------------------------------


@pytest.mark.parametrize("variant", ["reference", "additive", "hard", "memory", "linformer", "none"])
def test_forward_backward_and_maps(variant):
    cfg = tiny_config()
    data, module = TASK.build(cfg, variant, None, seed=0)
    batch = next(iter(data.train_dataloader()))
    loss = module.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.encoder.parameters())
    if variant == "none":
        with pytest.raises(ValueError, match="no attention maps"):
            module.attention_maps(batch)
    elif attention.REGISTRY[variant].capabilities.weights:
        maps = module.attention_maps(batch)
        assert maps["weights"].shape == (len(batch["target"]), 2, 4, 4)
        total = maps["weights"].sum((-1, -2))
        if variant == "memory":  # its memory slots take the rest of the mass
            assert (total <= 1 + 1e-5).all()
        else:
            assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    else:
        with pytest.raises(attention.NotSupportedError):
            module.attention_maps(batch)


def test_variant_reasons_come_from_capabilities():
    assert TASK.variant_reasons("none") == [] and TASK.variant_reasons("reference") == []
    assert any("graph attention" in r for r in TASK.variant_reasons("gat"))
    assert any("unknown variant" in r for r in TASK.variant_reasons("nope"))
    cfg = tiny_config()
    cfg["trainer"]["accelerator"] = "cpu"
    xformers = TASK.variant_reasons("xformers", cfg)
    assert xformers and all("device=cpu" in r for r in xformers)
    every = TASK.applicable_variants()
    assert every["none"] == [] and every["sdpa"] == [] and every["linformer"] == []


def test_build_refuses_unknown_variant_kwargs():
    cfg = tiny_config()
    cfg["model"]["variant_kwargs"] = {"nonsense": {}}
    with pytest.raises(ValueError, match="unknown variants"):
        TASK.build(cfg, "reference", None, seed=0)


def test_build_data_uses_real_folder(tmp_path):
    write_easy_vqa(tmp_path)
    data = build_data({**tiny_config()["data"], "image_size": 16}, str(tmp_path), seed=0)
    assert data.image_shape == (3, 16, 16) and set(data.answer_list) == {"circle", "square"}


def test_end_to_end_run_produces_a_record(tmp_path):
    record = train_and_test("vqa", "reference", overrides=tiny_overrides(), run_dir=str(tmp_path / "run"),
                            progress=False)
    assert record["status"] == "ok"
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    for key in ("test/acc", "test/acc_relational", "test/acc_non_relational", "test/acc_count"):
        assert 0.0 <= record["metrics"][key] <= 100.0
    saved = json.loads(Path(record["attention_file"]).read_text())
    assert saved["kind"] == "regions" and saved["examples"]


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_shipped_presets_build_and_train_a_step(preset):
    sizes = {"data.n_train": 4, "data.n_val": 2, "data.n_test": 2}
    cfg = apply_overrides(TASK.config(preset), sizes)
    data, module = TASK.build(cfg, "reference", None, seed=0)
    grid = cfg["model"]["encoder"]["grid"]
    assert grid == cfg["data"]["grid"]  # regions aligned with the board
    batch = next(iter(data.train_dataloader()))
    module.training_step(batch, 0).backward()
    assert module.attention_maps(batch)["weights"].shape[1:] == (cfg["model"]["hops"], grid, grid)


def test_end_to_end_run_on_real_files(tmp_path):
    write_vqa_v2(tmp_path / "vqa")
    overrides = {**tiny_overrides(), "data.image_size": 24,
                 "data.image_pattern": "COCO_{split}2014_{image_id:012d}.jpg"}
    record = train_and_test("vqa", "additive", data=str(tmp_path / "vqa"), overrides=overrides,
                            run_dir=str(tmp_path / "run"), progress=False)
    assert record["status"] == "ok" and record["data"] == str(tmp_path / "vqa")
    assert {"test/acc", "test/acc_yes_no", "test/acc_other"} <= set(record["metrics"])


@pytest.mark.parametrize("variant", ["reference", "performer", "none"])
def test_attention_examples_for_the_report(variant):
    data, module = TASK.build(tiny_config(), variant, None, seed=0)
    saved = TASK.attention_examples(module, data)
    if variant != "reference":
        assert saved is None  # no attention, or weights the variant cannot form
        return
    json.dumps(saved)
    assert saved["kind"] == "regions" and len(saved["examples"]) == 4
    example = saved["examples"][1]
    assert example["grid"] == [4, 4] and len(example["weights"]) == 2 and len(example["weights"][0]) == 16
    assert "nearest" in example["text"] and example["steps"] == ["hop 1", "hop 2"]
    assert torch.tensor(example["image"]).shape == (3, 24, 24)


def test_training_batches_hold_tensors_only_and_evaluation_batches_the_answers():
    data, _ = TASK.build(tiny_config(), "reference", None, seed=0)
    train = next(iter(data.train_dataloader()))
    assert all(isinstance(v, torch.Tensor) for v in train.values())  # nothing for Lightning to walk
    val = next(iter(data.val_dataloader()))
    assert len(val["answers"]) == len(val["types"]) == len(val["target"])


def test_the_easy_vqa_package_is_found_and_read() -> None:
    pytest.importorskip("easy_vqa", reason="no easy-vqa extra here (pip install -e '.[easy-vqa]')")
    from bench.train import locate_data
    from tasks.vqa import TASK as VQA
    from tasks.vqa.real import load_real

    path, missing = locate_data("package:easy_vqa")
    assert missing is None and path.endswith("easy_vqa/data")
    sets = load_real(path, VQA.config("quick")["data"], 0)
    assert {k: (len(v.questions), v.images.shape[0]) for k, v in sets.items()} == {
        "train": (34696, 3600), "val": (3879, 400), "test": (9673, 1000)}  # val: 10% of the training images
    assert tuple(sets["test"].images.shape[1:]) == (3, 64, 64) and sets["test"].answers[0] == ["triangle"]
