"""Unit 10: the nested-shapes data, the click sampler, the one-click evaluation, the TinySAM recipe and its checkpoint.

The evaluation is checked against an independent computation: fake networks that record the
clicks they receive, with IoUs recomputed by scikit-learn's ``jaccard_score`` and the intended
object found again from the masks alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import jaccard_score

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data.nested import (
    LEVEL_NAMES,
    NestedObjects,
    click_region,
    innermost_object,
    nested_sample,
    nested_shapes,
    objects_under,
    sample_click,
)
from segedu.models import sam_recipes as R


@pytest.fixture(scope="module")
def data():
    return nested_shapes(60, seed=3)


# -------------------------------------------------------------------------------------- data


def test_images_are_float32_rgb_in_unit_range_and_seeded(data):
    images, objects = data
    assert images.shape == (60, 3, 64, 64) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    again, again_objects = nested_shapes(5, seed=3)
    np.testing.assert_array_equal(again, images[:5])  # a longer set starts with the shorter one
    for a, b in zip(again_objects, objects[:5]):
        np.testing.assert_array_equal(a.masks, b.masks)
    other, _ = nested_shapes(5, seed=4)
    assert not np.array_equal(other, images[:5])
    single, single_objects = nested_sample(np.random.SeedSequence([3, 2]))
    np.testing.assert_array_equal(single, images[2])
    np.testing.assert_array_equal(single_objects.masks, objects[2].masks)


def test_objects_nest_whole_part_subpart(data):
    _, objects = data
    depths, stacks_per_image = [], []
    for o in objects:
        assert isinstance(o, NestedObjects) and o.masks.dtype == bool and o.masks.shape[1:] == (64, 64)
        assert len(o.levels) == len(o.stacks) == len(o.parents) == len(o.masks) == len(o)
        stacks_per_image.append(len(set(o.stacks.tolist())))
        for k, parent in enumerate(o.parents):
            assert o.masks[k].any()
            if parent < 0:
                assert o.levels[k] == 0
                continue
            assert o.levels[k] == o.levels[parent] + 1 and o.stacks[k] == o.stacks[parent]
            assert not (o.masks[k] & ~o.masks[parent]).any(), "a child leaks out of its parent"
            # a child keeps a band of its parent around it: the parent has pixels of its own
            assert (o.masks[parent] & ~o.masks[k]).sum() > 20
        wholes = o.masks[o.levels == 0]
        assert wholes.sum(0).max() == 1, "two stacks overlap"
        for s in set(o.stacks.tolist()):
            depths.append(int(o.levels[o.stacks == s].max()) + 1)
        dots = o.masks[o.levels == 2]
        for dot in dots:  # radius >= 4 pixels: it holds a 5×5... at least its inscribed 7-pixel cross
            assert dot.sum() >= 45
            assert ndimage.binary_erosion(dot, np.ones((5, 5), bool)).any()
    assert set(depths) == {1, 2, 3}, "stacks of every depth"
    assert set(stacks_per_image) == {1, 2}


@pytest.mark.parametrize("call, error, words", [
    (lambda: nested_shapes(0), SegeduInputError, "n_images"),
    (lambda: nested_shapes(2, size=16), SegeduInputError, "size"),
    (lambda: nested_shapes(2, size=(64, 64)), SegeduTypeError, "size"),
    (lambda: nested_shapes(2, seed=-1), SegeduInputError, "seed"),
    (lambda: nested_sample(None), SegeduTypeError, "seed"),
])
def test_bad_data_arguments_name_the_problem(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ------------------------------------------------------------------------------------ clicks


def test_clicks_mean_the_innermost_object_away_from_every_border(data):
    _, objects = data
    rng = np.random.default_rng(0)
    square = np.ones((3, 3), bool)
    for o in objects[:30]:
        for k in range(len(o)):
            for _ in range(3):
                x, y = sample_click(o, k, rng=rng)
                assert o.masks[k, y, x]
                children = o.children(k)
                assert not o.masks[children, y, x].any()
                assert innermost_object(o, x, y) == k
                assert objects_under(o, x, y) == o.ancestors(k)
                # margin 1: the whole 3×3 neighbourhood is in the object and in none of its children
                window = (slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2))
                assert o.masks[k][window].all() and o.masks[k][window].shape == square.shape
                assert not o.masks[children][(slice(None),) + window].any()
    assert innermost_object(objects[0], 0, 0) == -1  # the corner is background


def test_click_region_is_independent_erosion_minus_children(data):
    _, objects = data
    o = next(o for o in objects if (o.levels == 2).any())
    k = int(np.flatnonzero(o.levels == 1)[0])
    child = o.masks[o.children(k)].any(0)
    expected = ndimage.binary_erosion(o.masks[k], iterations=1, structure=np.ones((3, 3))) & ~ndimage.binary_dilation(
        child, iterations=1, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(click_region(o, k), expected)
    np.testing.assert_array_equal(click_region(o, k, margin=0), o.masks[k] & ~child)


def test_click_functions_refuse_bad_input(data):
    _, objects = data
    with pytest.raises(SegeduTypeError, match="objects\\[i\\]"):
        click_region(objects, 0)
    with pytest.raises(SegeduInputError, match="index"):
        sample_click(objects[0], len(objects[0]), seed=0)
    with pytest.raises(SegeduInputError, match="x must lie"):
        innermost_object(objects[0], 64, 3)
    with pytest.raises(SegeduTypeError, match="Generator"):
        sample_click(objects[0], 0, rng=0)


def test_training_targets_follow_the_prior(data):
    _, objects = data
    sampler = R.ClickSampler(objects[:20])
    image = next(i for i, o in enumerate(objects[:20]) if (o.levels == 2).any() and len(o) == 3)
    rng = np.random.default_rng(1)
    counts = {}
    for _ in range(3000):
        index, (x, y), target = sampler.draw(image, rng)
        assert innermost_object(objects[image], x, y) == index
        if index == 2:  # under a dot: dot, disk, square
            counts[target] = counts.get(target, 0) + 1
    total = sum(counts.values())
    assert total > 700
    np.testing.assert_allclose([counts[2] / total, counts[1] / total, counts[0] / total], [0.7, 0.15, 0.15], atol=0.05)
    np.testing.assert_allclose(R.target_prior(3), [0.7, 0.15, 0.15])
    np.testing.assert_allclose(R.target_prior(3, innermost=0.5), [0.5, 0.25, 0.25])

    # balanced levels: a level of those present, then an object of it
    image = next(i for i, o in enumerate(objects) if sorted(o.levels.tolist()) == [0, 0, 1, 2])
    balanced = R.ClickSampler([objects[image]], balance_levels=True)
    levels = [int(objects[image].levels[balanced.click(0, rng)[0]]) for _ in range(1500)]
    np.testing.assert_allclose(np.bincount(levels) / 1500, [1 / 3] * 3, atol=0.05)


@pytest.mark.parametrize("code", range(8))
def test_augmentation_moves_the_click_with_the_image(code):
    size = 9
    rng = np.random.default_rng(code)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(size, size=2))
        one_hot = np.zeros((size, size), bool)
        one_hot[y, x] = True
        moved = R._dihedral(one_hot, code)
        mx, my = R._dihedral_point(x, y, size, code)
        assert moved[my, mx] and moved.sum() == 1


# -------------------------------------------------------------------------------- evaluation


class _Recorder(torch.nn.Module):
    """A fake network: answers from a rule and records every click and answer."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule
        self.calls = []

    def forward(self, images, point_coords, point_labels, multimask_output=True):
        assert multimask_output and point_coords.shape[1:] == (1, 2) and (point_labels == 1).all()
        logits, iou_pred = self.rule(images, point_coords)
        self.calls.append((images.clone(), point_coords.clone(), logits.clone(), iou_pred.clone()))
        return logits, iou_pred


def _lookup(images):
    table = {images[i].tobytes(): i for i in range(len(images))}
    return lambda image: table[image.numpy().tobytes()]


def test_oracle_scores_one_and_empty_masks_score_zero(data):
    images, objects = data[0][:12], data[1][:12]
    which = _lookup(images)

    def oracle(x, coords):  # the true mask of the innermost object, in the slot the head ranks first
        logits = -torch.ones(len(x), 3, 64, 64)
        for row, (image, (cx, cy)) in enumerate(zip(x, coords[:, 0].tolist())):
            o = objects[which(image)]
            logits[row, 1] = torch.from_numpy(o.masks[innermost_object(o, int(cx), int(cy))]).float() * 2 - 1
        return logits, torch.tensor([0.1, 0.9, 0.2]).expand(len(x), 3)

    scores = R.one_click_evaluation(_Recorder(oracle), images, objects, device="cpu")
    assert scores["best_miou"] == scores["picked_miou"] == scores["pick_accuracy"] == 1.0
    assert scores["n_clicks"] == sum(len(o) for o in objects)
    assert sum(scores[f"n_clicks_{name}"] for name in LEVEL_NAMES) == scores["n_clicks"]

    empty = R.one_click_evaluation(_Recorder(lambda x, c: (-torch.ones(len(x), 3, 64, 64), torch.zeros(len(x), 3))),
                                   images, objects, device="cpu")
    assert empty["best_miou"] == empty["picked_miou"] == 0.0
    assert empty["pick_accuracy"] == 1.0  # all three masks are equally bad


def test_evaluation_agrees_with_an_independent_recomputation(data):
    images, objects = data[0][:15], data[1][:15]
    generator = torch.Generator().manual_seed(0)

    def noisy(x, coords):  # random blobs around the click, random predicted IoUs
        yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        radius = torch.rand(len(x), 3, 1, 1, generator=generator) * 20
        d2 = (xx - coords[:, 0, 0, None, None, None]) ** 2 + (yy - coords[:, 0, 1, None, None, None]) ** 2
        return radius**2 - d2, torch.rand(len(x), 3, generator=generator)

    model = _Recorder(noisy)
    scores = R.one_click_evaluation(model, images, objects, device="cpu", batch_size=16)
    which = _lookup(images)
    best, picked, hit, levels = [], [], [], []
    for batch, coords, logits, iou_pred in model.calls:
        for image, (cx, cy), mask_logits, predicted in zip(batch, coords[:, 0].tolist(), logits, iou_pred):
            o = objects[which(image)]
            inside = [k for k in range(len(o)) if o.masks[k, int(cy), int(cx)]]
            intended = max(inside, key=lambda k: o.masks[k].sum() * -1)  # the smallest object under the click
            truth = o.masks[intended].ravel()
            ious = [jaccard_score(truth, (m > 0).numpy().ravel(), zero_division=1.0) for m in mask_logits]
            best.append(max(ious))
            picked.append(ious[int(predicted.argmax())])
            hit.append(picked[-1] == best[-1])
            levels.append(int(o.levels[intended]))
    assert len(best) == scores["n_clicks"] > 40
    assert 0.05 < np.mean(best) < 0.95, "the fake network must be neither perfect nor useless"
    assert scores["best_miou"] == pytest.approx(np.mean(best))
    assert scores["picked_miou"] == pytest.approx(np.mean(picked))
    assert scores["pick_accuracy"] == pytest.approx(np.mean(hit))
    for level, name in enumerate(LEVEL_NAMES):
        chosen = np.asarray(levels) == level
        assert scores[f"best_miou_{name}"] == pytest.approx(np.mean(np.asarray(best)[chosen]))


def test_evaluation_refuses_mismatched_data(data):
    images, objects = data
    with pytest.raises(SegeduTypeError, match="one per image"):
        R.one_click_evaluation(torch.nn.Identity(), images[:3], objects[:2])
    with pytest.raises(SegeduInputError, match="transpose"):
        R.one_click_evaluation(torch.nn.Identity(), images[:3].transpose(0, 2, 3, 1), objects[:3])
    with pytest.raises(SegeduInputError, match="both"):
        R.one_click_evaluation(torch.nn.Identity(), images[:3])


# -------------------------------------------------------------------------------- training


def _small_tiny_sam():
    from segedu.models.sam.tiny_sam import TinySAM

    torch.manual_seed(0)
    return TinySAM(**R.TINYSAM_NESTED["model"])


def test_loss_decreases_over_a_few_steps_on_a_tiny_batch(data):
    from segedu.losses import sam_loss

    images, objects = data
    sampler = R.ClickSampler(objects[:4])
    batch, coords, targets, rows, weights = R._make_batch(images[:4], objects[:4], sampler, np.arange(4), 2,
                                                          np.random.default_rng(0), augment=False, expected=False)
    np.testing.assert_array_equal(rows, np.arange(8))
    batch, coords, targets = map(torch.from_numpy, (batch, coords, targets))
    labels = torch.ones(8, 1, dtype=torch.int64)
    model = _small_tiny_sam().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        embeddings = model.embed(batch).repeat_interleave(2, dim=0)
        logits, iou_pred = model.decode(embeddings, point_coords=coords, point_labels=labels, multimask_output=True)
        assert logits.shape == (8, 3, 64, 64) and iou_pred.shape == (8, 3)
        loss = sam_loss(logits, iou_pred, targets)
        weighted = R._expected_sam_loss(logits, iou_pred, targets, torch.from_numpy(rows), torch.from_numpy(weights))
        assert torch.allclose(weighted, loss)  # one drawn target of weight 1 per click: sam_loss itself
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_expected_loss_weights_every_object_under_the_click_by_its_prior(data):
    from segedu.losses import sam_loss

    images, objects = data
    sampler = R.ClickSampler(objects[:6])
    batch, coords, targets, rows, weights = R._make_batch(images[:6], objects[:6], sampler, np.arange(6), 3,
                                                          np.random.default_rng(2))
    prompts = 18
    per_prompt = np.bincount(rows, weights=weights, minlength=prompts)
    np.testing.assert_allclose(per_prompt, 1.0, rtol=1e-6)  # each click's targets carry the whole prior
    for row in range(prompts):  # the targets of a click are the objects under it, the innermost with 0.7
        x, y = (int(v) for v in coords[row, 0])
        mine = targets[rows == row]
        assert mine[:, y, x].all()
        areas = mine.sum(axis=(1, 2))
        assert areas[0] == areas.min()  # the innermost object comes first...
        assert weights[rows == row][0] == pytest.approx(0.7 if len(mine) > 1 else 1.0)  # ...with the largest prior
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(prompts, 3, 64, 64, generator=generator)
    iou_pred = torch.rand(prompts, 3, generator=generator)
    targets_t, rows_t, weights_t = map(torch.from_numpy, (targets, rows, weights))
    expected = sum(float(w) * sam_loss(logits[r:r + 1], iou_pred[r:r + 1], targets_t[i:i + 1])
                   for i, (r, w) in enumerate(zip(rows.tolist(), weights.tolist()))) / prompts
    assert R._expected_sam_loss(logits, iou_pred, targets_t, rows_t, weights_t).item() == pytest.approx(
        float(expected), rel=1e-5)


def test_recipe_runs_end_to_end_and_prints_its_quality(capsys):
    config = {"n_train": 6, "n_val": 2, "iterations": 2, "batch_size": 2, "clicks_per_image": 2, "warmup": 1}
    model = R.train_tiny_sam(seed=0, device="cpu", config=config)
    out = capsys.readouterr().out
    assert not model.training and "mIoU, best of the 3 masks" in out and "target >= 0.8" in out
    assert type(model).__name__ == "TinySAM"


# ------------------------------------------------------------------------------- checkpoint


def test_shipped_checkpoint_meets_every_target():
    from segedu.models.checkpoint import evaluate_checkpoint, load_checkpoint

    model, provenance = load_checkpoint("tinysam_nested_s0")
    assert type(model).__name__ == "TinySAM" and provenance["bytes"] <= 5 * 1024 * 1024
    scores = evaluate_checkpoint("tinysam_nested_s0", model)
    assert scores["n_clicks"] >= 100
    assert scores["best_miou"] >= R.TARGETS["best_miou"]
    assert scores["picked_miou"] >= R.TARGETS["picked_miou"]
    assert scores["best_miou"] == pytest.approx(provenance["metrics"]["best_miou"], abs=0.005)

    image, objects = nested_sample(np.random.SeedSequence([100, 0]))
    x, y = sample_click(objects, 0, seed=0)
    masks, predicted = R.click_masks(model, image.transpose(1, 2, 0), (x, y))  # channels last works too
    assert masks.shape == (3, 64, 64) and masks.dtype == bool and predicted.shape == (3,)
    assert masks[:, y, x].any(), "some mask covers the click"
    with pytest.raises(SegeduInputError, match="image / 255"):
        R.click_masks(model, (image * 255).astype(np.uint8), (x, y))
