"""segedu.data.augment: image, mask and weight map move together; ids stay ids; seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.utils.data import DataLoader

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import foreground_mask, nuclei_tiles, touching_cells
from segedu.data.augment import AugmentedTiles, JointAugment, RandomRot90, joint_augment


def _dihedral(a: np.ndarray):
    """The 8 flips/rotations of the last two axes, computed with numpy (independent of torch)."""
    out = []
    for flip in (False, True):
        b = np.flip(a, axis=-1) if flip else a
        out += [np.rot90(b, k, axes=(-2, -1)) for k in range(4)]
    return out


def _same_dihedral(before: np.ndarray, after: np.ndarray):
    return [i for i, d in enumerate(_dihedral(before)) if d.shape == after.shape and np.array_equal(d, after)]


@pytest.mark.parametrize("seed", range(12))
def test_flips_and_rotations_are_one_shared_dihedral_map(seed):
    image, labels = touching_cells(seed)
    weight = np.linspace(0, 1, image.size, dtype=np.float32).reshape(image.shape)  # asymmetric: no ties
    augment = joint_augment(seed, elastic_p=0.0)
    x, y, w = augment(image, labels, weight=weight)
    common = set(_same_dihedral(weight, w.numpy()))
    assert len(common) == 1
    assert common <= set(_same_dihedral(image, x[0].numpy()))
    assert common <= set(_same_dihedral(labels, y.numpy()))


def test_all_eight_dihedral_maps_occur():
    weight = np.arange(64, dtype=np.float32).reshape(8, 8)
    augment = joint_augment(0, elastic_p=0.0)
    seen = set()
    for _ in range(80):
        _, _, w = augment(weight, np.zeros((8, 8), dtype=np.int64), weight=weight)
        seen |= set(_same_dihedral(weight, w.numpy()))
    assert seen == set(range(8))


def test_non_square_inputs_keep_their_shape():
    image = np.random.default_rng(0).random((24, 40), dtype=np.float32)
    labels = (image > 0.5).astype(np.int64)
    augment = joint_augment(3, elastic_p=0.0)
    for _ in range(20):
        x, y, _ = augment(image, labels)
        assert tuple(x.shape) == (1, 24, 40) and tuple(y.shape) == (24, 40)
        assert _same_dihedral(labels, y.numpy())


@pytest.mark.parametrize("seed", range(8))
def test_elastic_nearest_image_that_is_the_mask_stays_the_mask(seed):
    _, labels = touching_cells(seed)
    augment = joint_augment(seed, elastic_p=1.0, elastic_alpha=30.0, interpolation="nearest")
    x, y, w = augment(labels.astype(np.float32), labels, weight=labels.astype(np.float32))
    np.testing.assert_array_equal(x[0].numpy(), y.numpy().astype(np.float32))
    np.testing.assert_array_equal(w.numpy(), x[0].numpy())
    # the deformation really moved pixels: no flip/rotation alone explains the result
    assert not _same_dihedral(labels, y.numpy())


@pytest.mark.parametrize("seed", range(8))
def test_elastic_bilinear_keeps_ids_and_alignment(seed):
    image, labels = touching_cells(seed, noise=0.0)
    fg = foreground_mask(labels).astype(np.float32)
    weight = ndimage.distance_transform_edt(labels == 0).astype(np.float32)  # a smooth map, like U-Net's
    augment = joint_augment(seed, elastic_p=1.0, elastic_alpha=30.0)
    x, y, w = augment(np.stack([fg, image]), labels, weight=weight)
    ids = set(np.unique(labels).tolist())
    assert set(np.unique(y.numpy()).tolist()) <= ids           # no interpolated ids
    assert y.dtype == torch.int64 and x.dtype == torch.float32 and w.dtype == torch.float32
    # the foreground channel, resampled bilinearly, agrees with the nearest-resampled mask
    agree = ((x[0].numpy() > 0.5) == (y.numpy() > 0)).mean()
    assert agree > 0.97
    # an explicit per-call seed repeats the same deformation
    ref = augment(np.stack([fg, image]), labels, weight=weight, seed=12345)
    again = augment(np.stack([fg, image]), labels, weight=weight, seed=12345)
    for a, b in zip(ref, again):
        assert torch.equal(a, b)
    # the weight map moved with the image: background distance is 0 on the (moved) cells
    on_cells = (y.numpy() > 0) & (ndimage.binary_erosion(y.numpy() > 0, iterations=2))
    assert np.abs(w.numpy()[on_cells]).max() < 0.5
    assert w.numpy()[y.numpy() == 0].mean() > 1.0


def test_weight_map_as_image_channel_moves_exactly_like_the_image():
    image, labels = touching_cells(4)
    augment = joint_augment(4, elastic_p=1.0)
    for _ in range(5):
        x, _, w = augment(image, labels, weight=image.copy())
        assert torch.equal(x[0], w)


def test_elastic_with_zero_alpha_is_the_identity():
    image, labels = touching_cells(2)
    x, y, _ = joint_augment(0, flips=False, rotate90=False, elastic_p=1.0, elastic_alpha=0.0)(image, labels)
    np.testing.assert_allclose(x[0].numpy(), image, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_seeded_and_leaves_global_rng_alone():
    image, labels = touching_cells(1)
    a = joint_augment(7)
    b = joint_augment(7)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    outs_a = [a(image, labels) for _ in range(4)]
    after = torch.rand(3)
    assert torch.equal(before, after), "augmenting must not consume the caller's torch random state"
    outs_b = [b(image, labels) for _ in range(4)]
    for (xa, ya, _), (xb, yb, _) in zip(outs_a, outs_b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # successive calls differ, and another seed differs
    assert any(not torch.equal(outs_a[0][1], o[1]) for o in outs_a[1:])
    other = joint_augment(8)
    assert any(not torch.equal(o[1], other(image, labels)[1]) for o in outs_a)
    assert a.calls == 4


def test_random_rot90_is_a_v2_transform_on_tv_tensors():
    from torchvision import tv_tensors

    torch.manual_seed(0)
    image = tv_tensors.Image(torch.rand(2, 6, 6))
    mask = tv_tensors.Mask(torch.randint(0, 3, (6, 6)))
    ks = set()
    for _ in range(30):
        out_image, out_mask = RandomRot90()(image, mask)
        assert isinstance(out_image, tv_tensors.Image) and isinstance(out_mask, tv_tensors.Mask)
        k = [k for k in range(4) if torch.equal(torch.rot90(mask, k, dims=(-2, -1)), out_mask)]
        assert k and torch.equal(torch.rot90(image, k[0], dims=(-2, -1)), out_image)
        ks.add(k[0])
    assert ks == {0, 1, 2, 3}


def test_augmented_tiles_dataset():
    images, instances = nuclei_tiles("train", tile=64)
    target = foreground_mask(instances).astype(np.int64)
    weights = np.stack([ndimage.distance_transform_edt(t == 0) for t in instances]).astype(np.float32)
    ds = AugmentedTiles(images, target, weights=weights, seed=0)
    assert len(ds) == 32
    x, y, w = ds[3]
    assert tuple(x.shape) == (1, 64, 64) and tuple(y.shape) == (64, 64) and tuple(w.shape) == (64, 64)
    assert set(y.unique().tolist()) <= {0, 1}
    # a second epoch deforms differently; a new dataset with the same seed repeats the first
    x2, y2, _ = ds[3]
    assert not torch.equal(y, y2)
    x_again, y_again, _ = AugmentedTiles(images, target, weights=weights, seed=0)[3]
    assert torch.equal(x, x_again) and torch.equal(y, y_again)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert [tuple(t.shape) for t in batch] == [(4, 1, 64, 64), (4, 64, 64), (4, 64, 64)]
    plain = AugmentedTiles(images, target, augment=False)
    x, y = plain[-1]
    np.testing.assert_array_equal(x[0].numpy(), images[-1])
    np.testing.assert_array_equal(y.numpy(), target[-1])


def test_augmented_tiles_feed_the_training_loop():
    from segedu.training import as_dataset

    images, instances = nuclei_tiles("train", tile=128)
    ds = AugmentedTiles(images, foreground_mask(instances).astype(np.int64), seed=1)
    assert as_dataset(ds) is ds


def test_bad_input_names_the_fix():
    image, labels = touching_cells(0)
    augment = joint_augment(0)
    with pytest.raises(SegeduTypeError, match=r"mask\.astype\(np\.int64\)"):
        augment(image, labels.astype(np.float32))
    with pytest.raises(SegeduTypeError, match="img_as_float"):
        augment(labels, labels)
    with pytest.raises(SegeduInputError, match="transpose"):
        augment(np.zeros((4, 64, 64, 3), np.float32), labels)
    with pytest.raises(SegeduInputError, match="mask must be H×W"):
        augment(image, labels[:-1])
    with pytest.raises(SegeduInputError, match="weight must be H×W"):
        augment(image, labels, weight=image[:-1])
    with pytest.raises(SegeduInputError, match="elastic_p is a probability"):
        joint_augment(0, elastic_p=2.0)
    with pytest.raises(SegeduInputError, match="elastic_sigma must be greater than 0"):
        joint_augment(0, elastic_sigma=0.0)
    with pytest.raises(SegeduInputError, match="interpolation"):
        joint_augment(0, interpolation="bicubic")
    with pytest.raises(SegeduInputError, match="labels must be N×H×W"):
        AugmentedTiles(np.zeros((2, 8, 8), np.float32), np.zeros((3, 8, 8), np.int64))
    assert isinstance(augment, JointAugment)


def test_elastic_alpha_is_half_in_pixels_as_documented():
    """The module text says v2.ElasticTransform moves pixels by alpha/2 times the smoothed noise: pin
    torchvision's convention with a constant displacement (noise 1 everywhere) built as make_params does."""
    from torchvision.transforms.v2 import functional as TF2

    h, w, alpha = 12, 16, 4.0
    columns = torch.arange(w, dtype=torch.float64).expand(1, h, w).clone()
    rows = torch.arange(h, dtype=torch.float64)[:, None].expand(1, h, w).clone()
    displacement = torch.zeros(1, h, w, 2, dtype=torch.float64)
    displacement[..., 0] = alpha / w  # make_params: dx = noise * alpha / width
    displacement[..., 1] = alpha / h  # dy = noise * alpha / height
    moved_x = TF2.elastic(columns, displacement, interpolation=TF2.InterpolationMode.BILINEAR)
    moved_y = TF2.elastic(rows, displacement, interpolation=TF2.InterpolationMode.BILINEAR)
    inside = (slice(None), slice(0, h - 3), slice(0, w - 3))  # away from the zero fill
    np.testing.assert_allclose((moved_x - columns)[inside].numpy(), alpha / 2)
    np.testing.assert_allclose((moved_y - rows)[inside].numpy(), alpha / 2)
