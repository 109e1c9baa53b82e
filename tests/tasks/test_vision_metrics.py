"""Tests of the shared vision pieces (tasks/_vision.py) and the metrics (tasks/metrics.py)."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from tasks._vision import (
    SHAPES,
    ImageGroupedBatchSampler,
    RegionEncoder,
    load_image,
    load_images,
    read_json,
    render_cells,
    shape_mask,
    split_off,
    unique_images,
)
from tasks.metrics import cider_d, cider_d_scores, normalize_answer, vqa_accuracy

LOG2 = math.log(2.0)


# ---- CIDEr-D, against hand-worked examples -------------------------------------------------


def test_cider_d_exact_match_two_images():
    # N = 2 images, every n-gram is in one image's references: idf = log 2 for all of them.
    # n = 1, 2: candidate vector == reference vector -> similarity 1; n = 3, 4: no n-grams -> 0.
    # CIDEr-D = 10 * (1 + 1 + 0 + 0) / 4 = 5.
    scores = cider_d_scores(["a b", "c d"], [["a b"], ["c d"]])
    assert scores == pytest.approx([5.0, 5.0])
    assert cider_d(["a b", "c d"], [["a b"], ["c d"]]) == pytest.approx(5.0)


def test_cider_d_shorter_candidate_is_penalised():
    # "a" vs "a b": n = 1 -> log2*log2 / (log2 * sqrt(2) log2) = 1/sqrt(2), times the Gaussian
    # length penalty exp(-(1 - 2)^2 / (2 * 6^2)); n = 2..4: the candidate has no n-gram -> 0.
    expected = 10 * (1 / math.sqrt(2) * math.exp(-1 / 72)) / 4
    assert cider_d_scores(["a", "c d"], [["a b"], ["c d"]])[0] == pytest.approx(expected)


def test_cider_d_clips_repeated_ngrams():
    # "a a" vs "a b": candidate tf(a) = 2 -> vector 2 log2, clipped to the reference's log2:
    # n = 1 -> log2^2 / (2 log2 * sqrt(2) log2) = 1 / (2 sqrt 2); the bigram "a a" is unseen -> 0.
    expected = 10 * (1 / (2 * math.sqrt(2))) / 4
    assert cider_d_scores(["a a", "c d"], [["a b"], ["c d"]])[0] == pytest.approx(expected)


def test_cider_d_ngram_in_every_image_has_zero_idf():
    # "x" occurs in the references of both images: idf(x) = log 2 - log 2 = 0, so it carries no
    # weight: "x a" still matches (via "a" and "x a") but "x" alone scores 0.
    refs = [["x a"], ["x b"]]
    assert cider_d_scores(["x a", "x b"], refs) == pytest.approx([5.0, 5.0])
    assert cider_d_scores(["x", "x b"], refs)[0] == 0.0


def test_cider_d_averages_over_references_and_accepts_tokens():
    # Two references: "a b" (similarity 1 at n = 1, 2) and "c d" (nothing shared): mean 0.5 each.
    # idf: a, b, c, d, "a b", "c d" all have df = 1 of N = 2 images ("e f" is the other image).
    score = cider_d_scores([["a", "b"], ["e", "f"]], [["a b", "c d"], ["e f"]])[0]
    assert score == pytest.approx(10 * (0.5 + 0.5) / 4)


def test_cider_d_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="candidates"):
        cider_d_scores(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="at least one reference"):
        cider_d_scores(["a"], [[]])
    assert cider_d([], []) == 0.0


# ---- VQA accuracy and answer normalisation -------------------------------------------------


@pytest.mark.parametrize(("raw", "normal"), [
    ("Two dogs.", "2 dogs"), ("the Red", "red"), ("dont", "don't"), ("1,000", "1000"),
    ("black-white", "black white"), ("yes!", "yes"), ("3.5", "3.5"), ("  A  cat\n", "cat"),
    ("left , right", "left right"), ("none", "0"),
])
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


def test_vqa_accuracy_leave_one_out():
    # 3 of 10 annotators said "2": leaving out one of them leaves 2 matches (2/3), leaving out any
    # of the other 7 leaves 3 (capped at 1): (3 * 2/3 + 7 * 1) / 10 = 0.9.
    answers = ["2"] * 3 + ["3"] * 7
    assert vqa_accuracy("2", answers) == pytest.approx(0.9)
    assert vqa_accuracy("two", answers) == pytest.approx(0.9)  # normalised to "2"
    assert vqa_accuracy("3", answers) == pytest.approx(1.0)
    # one match: the subset without it has 0 matches, the 9 others 1/3 each -> 0.3
    assert vqa_accuracy("cat", ["cat"] + ["dog"] * 9) == pytest.approx(0.3)
    assert vqa_accuracy("bird", answers) == 0.0


def test_vqa_accuracy_single_answer_is_exact_match():
    assert vqa_accuracy("Circle.", ["circle"]) == 1.0
    assert vqa_accuracy("square", ["circle"]) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        vqa_accuracy("x", [])


# ---- the region encoder --------------------------------------------------------------------


def test_region_encoder_small_grid_and_coordinates():
    enc = RegionEncoder(channels=[8], kernels=[6], strides=[6], grid=4, dim=16, coord_features=True)
    regions = enc(torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8))
    assert regions.shape == (2, 16, 16) and enc.num_regions == 16
    coords = regions[0, :, -3:]
    assert coords[0].tolist() == [-1.5, -1.5, 4.5]  # top-left cell, in cell units from the centre
    assert coords[5].tolist() == [-0.5, -0.5, 0.5]  # row 1, column 1 (row-major)
    regions.sum().backward()


def test_region_encoder_torchvision_backbone_without_download():
    enc = RegionEncoder(backbone="resnet18", grid=2, dim=8, pos_embedding=False)
    assert enc(torch.rand(1, 3, 64, 64)).shape == (1, 4, 8)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"backbone": "nonsense"}, "backbone"), ({"channels": [8], "strides": [1, 2]}, "same length|one length"),
    ({"grid": 0}, "grid"), ({"dim": 3, "coord_features": True}, "dim"), ({"channels": [0], "kernels": [3],
                                                                           "strides": [1]}, "channels"),
])
def test_region_encoder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegionEncoder(**kwargs)


# ---- image files -----------------------------------------------------------------------------


def test_load_images_reads_and_resizes(tmp_path):
    Image.new("RGB", (10, 6), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("L", (5, 5), 128).save(tmp_path / "b.png")
    images = load_images([tmp_path / "a.png", tmp_path / "b.png"], 8)
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.uint8
    assert images[0, :, 4, 4].tolist() == [255, 0, 0]
    assert images[1, :, 0, 0].tolist() == [128, 128, 128]


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.png: image file not found"):
        load_image(tmp_path / "missing.png", 8)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png: unreadable image"):
        load_image(tmp_path / "bad.png", 8)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json", what="a test file")


# ---- rendering, batching, splitting ------------------------------------------------------------


def test_shapes_are_distinct_and_cells_tile_the_image():
    masks = [shape_mask(s, 8) for s in SHAPES]
    assert all(not torch.equal(a, b) for i, a in enumerate(masks) for b in masks[i + 1:])
    with pytest.raises(ValueError, match="cell size"):
        shape_mask("square", 4)
    patches = torch.zeros(1, 4, 3, 2, 2, dtype=torch.uint8)
    patches[0, 1] = 7  # row 0, column 1
    image = render_cells(patches, 2)
    assert image.shape == (1, 3, 4, 4)
    assert image[0, 0, :2, 2:].eq(7).all() and image.sum() == 7 * 12


def test_image_grouped_batches_keep_images_together_and_repeat():
    index = [0, 0, 1, 1, 2, 2, 3, 3]
    batches = list(ImageGroupedBatchSampler(index, batch_size=4, shuffle=True, seed=3))
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(len({index[i] for i in b}) == 2 for b in batches)
    again = list(ImageGroupedBatchSampler(index, batch_size=4, shuffle=True, seed=3))
    assert batches == again
    assert list(ImageGroupedBatchSampler(index, batch_size=3, shuffle=False, seed=0)) == [
        [0, 1, 2], [3, 4, 5], [6, 7]]
    images, rows = unique_images(torch.arange(4).view(4, 1), torch.tensor([2, 0, 2]))
    assert images.flatten().tolist() == [0, 2] and rows.tolist() == [1, 0, 1]


def test_split_off_is_seeded_and_never_takes_everything():
    held = split_off([5, 1, 1, 3, 9], 0.5, seed=0)
    assert held == split_off([5, 1, 1, 3, 9], 0.5, seed=0) and 1 <= len(held) < 4
    with pytest.raises(ValueError, match="val_fraction"):
        split_off([1, 2], 1.0, seed=0)
    with pytest.raises(ValueError, match="1 image"):
        split_off([1, 1], 0.5, seed=0)
