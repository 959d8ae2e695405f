"""Tests of segedu.data: the seeded shapes data and the bundled real images."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import numpy as np
import pytest

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import (
    SAMPLE_NAMES,
    SHAPE_CLASSES,
    SampleInfo,
    list_samples,
    load_sample,
    sample_info,
    sample_seed,
    shapes_dataset,
    shapes_sample,
)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- synthetic shapes


def test_shape_classes():
    assert SHAPE_CLASSES[0] == "background"
    assert len(SHAPE_CLASSES) >= 6
    assert len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (8, 8), (130, 97)])
@pytest.mark.parametrize("num_classes", [2, 4, 8])
def test_sample_shapes_dtypes_and_ranges(size, num_classes):
    image, labels = shapes_sample(5, size=size, num_classes=num_classes)
    assert image.shape == (*size, 3) and image.dtype == np.float32
    assert labels.shape == size and labels.dtype == np.int64
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert labels.min() >= 0 and labels.max() < num_classes
    assert (labels != 0).any(), "every sample has at least one shape"


def test_int_size_means_square():
    image, labels = shapes_sample(1, size=40)
    assert image.shape == (40, 40, 3) and labels.shape == (40, 40)


def test_sample_is_determined_by_seed():
    a = shapes_sample(123, num_classes=6)
    b = shapes_sample(123, num_classes=6)
    c = shapes_sample(124, num_classes=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_dataset_sample_i_equals_shapes_sample_of_derived_seed():
    images, labels = shapes_dataset(5, size=(32, 48), num_classes=5, seed=3)
    for i in range(5):
        for seed in (sample_seed(3, i), np.random.SeedSequence([3, i])):
            image, label = shapes_sample(seed, size=(32, 48), num_classes=5)
            np.testing.assert_array_equal(images[i], image)
            np.testing.assert_array_equal(labels[i], label)


def test_dataset_sample_does_not_depend_on_n():
    small = shapes_dataset(3, seed=11)
    large = shapes_dataset(7, seed=11)
    np.testing.assert_array_equal(small[0], large[0][:3])
    np.testing.assert_array_equal(small[1], large[1][:3])
    other = shapes_dataset(3, seed=12)
    assert not np.array_equal(small[0], other[0])


def test_dataset_shapes_and_dtypes():
    images, labels = shapes_dataset(4, size=(16, 24), num_classes=3, seed=0)
    assert images.shape == (4, 16, 24, 3) and images.dtype == np.float32
    assert labels.shape == (4, 16, 24) and labels.dtype == np.int64


@pytest.mark.parametrize("num_classes", [2, 4, len(SHAPE_CLASSES)])
def test_every_class_appears_over_a_few_dozen_samples(num_classes):
    _, labels = shapes_dataset(36, num_classes=num_classes, seed=0)
    counts = np.bincount(labels.ravel(), minlength=num_classes)
    assert len(counts) == num_classes, "class ids stay in range"
    assert (counts > 0).all(), f"classes never drawn: {np.flatnonzero(counts == 0).tolist()}"


def test_shapes_overlap_later_wins_keeps_labels_consistent_with_pixels():
    # Wherever the label changes, the image should change too (on average): labels follow pixels.
    images, labels = shapes_dataset(20, num_classes=6, seed=2, max_shapes=6)
    fg_mean = images[labels > 0].mean(axis=0)
    bg_mean = images[labels == 0].mean(axis=0)
    assert np.abs(fg_mean - bg_mean).max() > 0.05


def test_class_colours_vary_but_stay_learnable():
    images, labels = shapes_dataset(60, num_classes=4, seed=4)
    pixels, classes = images.reshape(-1, 3), labels.ravel()
    means = np.stack([pixels[classes == k].mean(axis=0) for k in range(4)])
    # Not trivially separable by exact colour: many distinct colours and a real spread per class.
    for k in range(1, 4):
        cls = pixels[classes == k]
        assert cls.std(axis=0).max() > 0.03
        assert len(np.unique(cls, axis=0)) > 0.5 * len(cls)
    # ... but learnable: a nearest-mean colour rule already beats the class prior by far.
    nearest = np.argmin(((pixels[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    fg = classes > 0
    assert (nearest[fg] == classes[fg]).mean() > 0.6
    assert (nearest[fg] == classes[fg]).mean() < 0.99


def test_a_hundred_samples_are_valid_and_reproducible():
    # Speed (about 1 ms per 64×64 sample) is measured by `make bench`, not asserted here.
    for seed in range(100):
        image, labels = shapes_sample(seed)
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert labels.shape == (64, 64) and labels.dtype == np.int64
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 0 <= labels.min() and labels.max() <= 3
        assert (labels > 0).any()
    again_image, again_labels = shapes_sample(99)
    np.testing.assert_array_equal(again_image, image)
    np.testing.assert_array_equal(again_labels, labels)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"num_classes": 1}, SegeduInputError, "num_classes must be at least 2"),
        ({"num_classes": 9}, SegeduInputError, "at most 8"),
        ({"size": (4, 64)}, SegeduInputError, "at least 8"),
        ({"size": (64, 64, 3)}, SegeduInputError, "(height, width)"),
        ({"max_shapes": 0}, SegeduInputError, "max_shapes"),
        ({"num_classes": 3.0}, SegeduTypeError, "must be an int"),
    ],
)
def test_sample_argument_errors(kwargs, error, words):
    with pytest.raises(error) as info:
        shapes_sample(0, **kwargs)
    assert words in str(info.value)


def test_seed_is_required():
    with pytest.raises(SegeduTypeError, match="seed"):
        shapes_sample(None)
    with pytest.raises(SegeduInputError, match="seed"):
        shapes_sample(-1)
    with pytest.raises(SegeduInputError, match="n must be at least 1"):
        shapes_dataset(0)


# --------------------------------------------------------------------------- torch view


def test_shapes_dataset_tensors_and_dataloader():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from segedu.data import ShapesDataset

    ds = ShapesDataset(6, size=(24, 32), num_classes=5, seed=9)
    assert len(ds) == 6
    image, labels = ds[2]
    assert isinstance(image, torch.Tensor) and isinstance(labels, torch.Tensor)
    assert image.shape == (3, 24, 32) and image.dtype == torch.float32
    assert labels.shape == (24, 32) and labels.dtype == torch.int64

    images_np, labels_np = shapes_dataset(6, size=(24, 32), num_classes=5, seed=9)
    np.testing.assert_array_equal(image.numpy(), images_np[2].transpose(2, 0, 1))
    np.testing.assert_array_equal(labels.numpy(), labels_np[2])
    np.testing.assert_array_equal(ds[-1][1].numpy(), labels_np[5])
    with pytest.raises(IndexError):
        ds[6]

    x, y = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert x.shape == (4, 3, 24, 32) and x.dtype == torch.float32
    assert y.shape == (4, 24, 32) and y.dtype == torch.int64
    np.testing.assert_array_equal(y.numpy(), labels_np[:4])


def test_shapes_dataset_joint_transform():
    torch = pytest.importorskip("torch")
    from segedu.data import ShapesDataset

    def flip(image, labels):
        return torch.flip(image, dims=[-1]), torch.flip(labels, dims=[-1])

    plain = ShapesDataset(2, seed=1)
    flipped = ShapesDataset(2, seed=1, transform=flip)
    torch.testing.assert_close(flipped[1][0], torch.flip(plain[1][0], dims=[-1]))
    assert torch.equal(flipped[1][1], torch.flip(plain[1][1], dims=[-1]))
    with pytest.raises(SegeduTypeError, match="transform"):
        ShapesDataset(2, transform="flip")


# --------------------------------------------------------------------------- shapes of a chosen size (radius)

# sha256 of the default data, computed before the radius option existed: the shipped checkpoints were
# trained on these pixels, so the default must stay bit-identical.
_DEFAULT_SHAPES_SHA256 = "75d371cfd7e6a9158e5e209bcad12bdb7b786ed2f3cb2464da54c5da6d0b72d3"
_DEFAULT_SAMPLE_SHA256 = "eb6d8f6bdd1e2daf7313d0f94e09b2de0869aa3074fad031422d0fdc2244e314"


def test_default_radius_keeps_the_data_bit_identical():
    import hashlib

    digest = hashlib.sha256()
    for kwargs in [
        dict(n=6, size=(64, 64), num_classes=4, seed=0),
        dict(n=4, size=(48, 80), num_classes=8, seed=3, max_shapes=6),
        dict(n=3, size=(8, 8), num_classes=2, seed=11),
    ]:
        images, labels = shapes_dataset(**kwargs)
        digest.update(images.tobytes())
        digest.update(labels.tobytes())
    assert digest.hexdigest() == _DEFAULT_SHAPES_SHA256
    image, labels = shapes_sample(5, size=(32, 40), num_classes=5)
    assert hashlib.sha256(image.tobytes() + labels.tobytes()).hexdigest() == _DEFAULT_SAMPLE_SHA256
    for radius in ([0.11, 0.22], None):
        explicit = shapes_sample(5, size=(32, 40), num_classes=5, radius=radius)
        np.testing.assert_array_equal(explicit[0], image)
        np.testing.assert_array_equal(explicit[1], labels)


@pytest.mark.parametrize("radius", [(0.05, 0.08), (0.11, 0.16), (0.2, 0.3), (0.45, 0.5)])
def test_radius_range_sets_the_size_of_a_disk(radius):
    from skimage.measure import regionprops

    low, high = radius
    for seed in range(8):
        size = (48 + 8 * seed, 96)  # the radius is a fraction of the shorter side
        short = min(size)
        _, labels = shapes_sample(seed, size=size, num_classes=2, max_shapes=1, radius=radius)
        (region,) = regionprops((labels == 1).astype(int))
        equivalent_radius = np.sqrt(region.area / np.pi)
        assert max(3.0, low * short) - 1.0 <= equivalent_radius <= high * short + 1.0, (seed, equivalent_radius)
        top, left, bottom, right = region.bbox  # the whole disk fits in the image
        assert top >= 0 and left >= 0 and bottom <= size[0] and right <= size[1]


def test_size_classes_order_the_object_areas():
    areas = []
    for radius in [(0.05, 0.08), (0.11, 0.16), (0.2, 0.3)]:
        _, labels = shapes_dataset(20, size=(64, 64), num_classes=4, seed=5, max_shapes=1, radius=radius)
        areas.append((labels > 0).mean())
    assert areas[0] * 2 < areas[1] and areas[1] * 2 < areas[2]


def test_radius_works_with_the_dataset_and_the_torch_view():
    images, labels = shapes_dataset(3, size=(24, 40), num_classes=3, seed=2, radius=(0.3, 0.5))
    for i in range(3):
        image, label = shapes_sample(sample_seed(2, i), size=(24, 40), num_classes=3, radius=(0.3, 0.5))
        np.testing.assert_array_equal(images[i], image)
        np.testing.assert_array_equal(labels[i], label)
    torch = pytest.importorskip("torch")
    from segedu.data import ShapesDataset

    ds = ShapesDataset(3, size=(24, 40), num_classes=3, seed=2, radius=(0.3, 0.5))
    assert torch.equal(ds[1][1], torch.from_numpy(labels[1]))
    assert "radius=(0.3, 0.5)" in repr(ds) and "radius" not in repr(ShapesDataset(3))
    with pytest.raises(SegeduInputError, match="radius"):
        ShapesDataset(3, radius=(0.4, 0.2))


@pytest.mark.parametrize(
    "radius, error, words",
    [
        ((0.3, 0.2), SegeduInputError, r"0 < low <= high <= 0.5.*\(0.3, 0.2\).*Swap"),
        ((0.0, 0.1), SegeduInputError, r"0 < low <= high <= 0.5"),
        ((0.2, 0.6), SegeduInputError, r"does not fit"),
        ((5, 9), SegeduInputError, r"look like pixels.*radius=\(5 / 64, 9 / 64\)"),
        ((0.1,), SegeduInputError, r"\(low, high\) pair.*1 entries"),
        (0.2, SegeduTypeError, r"\(low, high\) pair of fractions"),
        ("0.1 0.2", SegeduTypeError, r"\(low, high\) pair of fractions"),
        ((0.1, float("nan")), SegeduInputError, r"radius\[1\] must be a finite number"),
        ((0.1, "0.2"), SegeduTypeError, r"radius\[1\] must be a real number"),
    ],
)
def test_radius_bad_input_names_the_fix(radius, error, words):
    with pytest.raises(error, match=words):
        shapes_sample(0, radius=radius)
    with pytest.raises(error, match=words):
        shapes_dataset(2, radius=radius)


# --------------------------------------------------------------------------- bundled images


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("segedu.data tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


COLOUR = {"astronaut", "coffee", "chelsea", "china", "flower"}


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_loads_offline_as_float(name, no_network):
    image = load_sample(name)
    assert image.dtype == np.float64
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.ndim == (3 if name in COLOUR else 2)
    if name in COLOUR:
        assert image.shape[-1] == 3
    grey = load_sample(name, as_gray=True)
    assert grey.ndim == 2 and grey.shape == image.shape[:2] and grey.dtype == np.float64
    if name not in COLOUR:
        np.testing.assert_array_equal(grey, image)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_has_provenance(name):
    info = sample_info(name)
    assert isinstance(info, SampleInfo) and info.name == name
    for field in dataclasses.fields(SampleInfo):
        value = getattr(info, field.name)
        assert isinstance(value, str) and value.strip(), f"{name}: empty {field.name}"
    assert info.url.startswith("https://")
    assert info.source.split("(")[0] in ("skimage.data." + name, "sklearn.datasets.load_sample_image")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.licence = "mine"  # type: ignore[misc]


def test_required_samples_and_cc_by_attributions():
    required = {"camera", "coins", "page", "text", "moon", "astronaut", "coffee", "chelsea", "china", "flower"}
    assert required <= set(SAMPLE_NAMES)
    assert [info.name for info in list_samples()] == list(SAMPLE_NAMES)
    for name, author in (("china", "danielbuechele"), ("flower", "vultilion")):
        info = sample_info(name)
        assert info.licence == "CC BY 2.0"
        assert "CC BY 2.0" in info.attribution and author in info.attribution
    assert "CC0" in sample_info("camera").licence


def test_sample_name_forgiveness_and_unknown_name():
    np.testing.assert_array_equal(load_sample("China.jpg"), load_sample("china"))
    with pytest.raises(SegeduInputError) as info:
        load_sample("cameraman")
    message = str(info.value)
    assert "'cameraman'" in message and "Did you mean 'camera'" in message
    for name in SAMPLE_NAMES:
        assert name in message
    with pytest.raises(SegeduInputError, match="no bundled sample image"):
        sample_info("lena")
    with pytest.raises(ValueError):  # SegeduInputError is a ValueError
        sample_info("nope")


def test_data_readme_lists_every_sample():
    readme = REPO / "data" / "README.md"
    text = readme.read_text(encoding="utf-8")
    for info in list_samples():
        assert f"`{info.name}`" in text, f"data/README.md does not list {info.name}"
        assert info.licence in text, f"data/README.md does not give the licence of {info.name}"
    assert "COCO" in text
