"""Tests of segedu.data.nuclei (the packaged real nuclei image) and segedu.data.touching_cells."""

from __future__ import annotations

import hashlib
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch  # imported here, not in a test, so that its import time is not billed to one test
from scipy import ndimage

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import (
    NUCLEI_SPLITS,
    SampleInfo,
    foreground_mask,
    load_nuclei,
    nuclei_info,
    nuclei_tiles,
    touching_cells,
)
from segedu.data import nuclei as nuclei_module

REPO = Path(__file__).resolve().parents[1]
NUCLEI_DIR = REPO / "segedu" / "data" / "nuclei"

# sha256 of the raw arrays (C order) as packaged: image uint8 and labels uint8, 512x512 each
IMAGE_SHA256 = "f5bd38ab39448298bf06f3efa44ad2e5337866877f521d400ab2932b163bc22e"
LABELS_SHA256 = "d205bbe127129f788cbbf020075c151be49832e85cbef9a9dd628a184c3d90d2"


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different objects that are 4-neighbours somewhere (an independent, loop-free count)."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        border = (a != b) & (a > 0) & (b > 0)
        pairs |= {(int(min(p, q)), int(max(p, q))) for p, q in zip(a[border], b[border])}
    return pairs


# --------------------------------------------------------------------------- the packaged file


def test_packaged_file_sha256_is_the_documented_one():
    data = (NUCLEI_DIR / nuclei_module.NUCLEI_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == nuclei_module.NUCLEI_SHA256
    assert len(data) < 300_000, "the package data should stay small"
    provenance = (NUCLEI_DIR / "PROVENANCE.txt").read_text()
    assert nuclei_module.NUCLEI_SHA256 in provenance
    assert "BSD 3-Clause" in provenance and "Uwe Schmidt, Martin Weigert" in provenance
    assert "Caicedo" in provenance and "CC0" in provenance


def test_packaged_arrays_sha256():
    raw_image, raw_labels = nuclei_module._read_arrays()
    assert raw_image.dtype == np.uint8 and raw_labels.dtype == np.uint8
    assert hashlib.sha256(np.ascontiguousarray(raw_image).tobytes()).hexdigest() == IMAGE_SHA256
    assert hashlib.sha256(np.ascontiguousarray(raw_labels).tobytes()).hexdigest() == LABELS_SHA256


def test_package_data_globs_ship_the_files():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["segedu.data"]
    base = REPO / "segedu" / "data"
    shipped = {p for pattern in patterns for p in base.glob(pattern)}
    assert NUCLEI_DIR / nuclei_module.NUCLEI_FILE in shipped
    assert NUCLEI_DIR / "PROVENANCE.txt" in shipped


def test_load_nuclei_shapes_dtypes_ranges():
    image, labels = load_nuclei()
    assert image.shape == labels.shape == (512, 512)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= image.min() and image.max() <= 1.0
    # the stored values are exactly k / 255 for integers k in 0..235 (lossless from stardist's uint16)
    k = image.astype(np.float64) * 255
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    assert int(round(k.max())) == 235


def test_load_nuclei_has_125_consecutive_instances():
    _, labels = load_nuclei()
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(126))
    # each id is one annotated nucleus: scipy's connected components find 125 objects and one
    # nucleus (id 87) drawn as two islands, as documented
    pieces = {i: ndimage.label(labels == i)[1] for i in range(1, 126)}
    assert [i for i, n in pieces.items() if n != 1] == [87]
    assert len(_touching_pairs(labels)) >= 10, "the image should show touching nuclei"


def test_load_nuclei_returns_fresh_arrays():
    image, labels = load_nuclei()
    image[:] = 0
    labels[:] = 0
    image2, labels2 = load_nuclei()
    assert image2.max() > 0 and labels2.max() == 125


def test_nuclei_info_is_a_sample_info_with_attribution():
    info = nuclei_info()
    assert isinstance(info, SampleInfo)
    for needle in ("Data Science Bowl", "BBBC038", "Caicedo", "stardist", "Schmidt", "Weigert"):
        assert needle in info.attribution
    assert "BSD-3-Clause" in info.licence and "CC0" in info.licence


def test_data_readme_documents_the_nuclei():
    text = (REPO / "data" / "README.md").read_text()
    assert nuclei_info().attribution in text
    assert nuclei_module.NUCLEI_SHA256 in text
    for needle in ("BSD-3-Clause", "CC0", "BBBC038", "relabel_sequential", "load_nuclei", "nuclei_tiles"):
        assert needle in text


# --------------------------------------------------------------------------- tiles


@pytest.mark.parametrize("tile", [32, 64, 128, 256])
@pytest.mark.parametrize("split", NUCLEI_SPLITS)
def test_tiles_reassemble_the_half(split, tile):
    image, labels = load_nuclei()
    images, tile_labels = nuclei_tiles(split, tile=tile)
    rows, cols = 512 // tile, 256 // tile
    assert images.shape == tile_labels.shape == (rows * cols, tile, tile)
    assert images.dtype == np.float32 and tile_labels.dtype == np.int32
    half = slice(0, 256) if split == "train" else slice(256, 512)
    for n in range(rows * cols):
        r, c = divmod(n, cols)   # row by row, top-left first
        window = (slice(r * tile, (r + 1) * tile), slice(c * tile, (c + 1) * tile))
        np.testing.assert_array_equal(images[n], image[:, half][window])
        np.testing.assert_array_equal(tile_labels[n], labels[:, half][window])


def test_train_and_test_halves_cover_the_image_once():
    image, labels = load_nuclei()
    train, _ = nuclei_tiles("train", tile=256)
    test, _ = nuclei_tiles("test", tile=256)
    np.testing.assert_array_equal(np.concatenate([np.vstack(train), np.vstack(test)], axis=1), image)
    # only the few nuclei cut by column 256 have pixels in both halves
    shared = set(np.unique(labels[:, :256])) & set(np.unique(labels[:, 256:])) - {0}
    assert 0 < len(shared) <= 10


def test_relabelled_tiles_are_consecutive_and_same_partition():
    _, raw = nuclei_tiles("train", tile=128)
    _, rel = nuclei_tiles("train", tile=128, relabel=True)
    for a, b in zip(raw, rel):
        assert np.array_equal(np.unique(b), np.arange(len(np.unique(a))))
        # same objects: the pairs (old id, new id) form a bijection
        pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
        assert pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def test_tiles_bad_input():
    with pytest.raises(SegeduInputError, match=r"split must be one of 'train', 'test'"):
        nuclei_tiles("val")
    with pytest.raises(SegeduInputError, match=r"tile must divide 256.*Use one of"):
        nuclei_tiles("train", tile=100)
    with pytest.raises(SegeduTypeError, match="tile must be an int"):
        nuclei_tiles("train", tile=64.0)


def test_foreground_mask():
    _, labels = load_nuclei()
    mask = foreground_mask(labels)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, labels != 0)
    np.testing.assert_array_equal(foreground_mask(torch.from_numpy(labels)), mask)
    with pytest.raises(SegeduTypeError, match="fractional"):
        foreground_mask(labels * 0.5)
    with pytest.raises(SegeduInputError, match="skimage.measure.label"):
        foreground_mask(-labels)


def test_pack_is_reproducible(tmp_path):
    """Re-packing the stored arrays through the packer gives the stored bytes (fixed zip timestamps)."""
    tifffile = pytest.importorskip("tifffile")
    raw_image, raw_labels = nuclei_module._read_arrays()
    tifffile.imwrite(tmp_path / "img.tif", raw_image.astype(np.uint16))
    # scramble the ids (keeping their order) to exercise the relabelling
    tifffile.imwrite(tmp_path / "mask.tif", np.where(raw_labels > 0, raw_labels.astype(np.uint16) * 3 + 7, 0))
    digest = nuclei_module._pack_from_stardist(tmp_path / "img.tif", tmp_path / "mask.tif", tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as packed:
        np.testing.assert_array_equal(packed["image"], raw_image)
        np.testing.assert_array_equal(packed["labels"], raw_labels)
    # deflate output can differ between zlib builds; the bytes are reproducible with the same zlib
    if zlib.ZLIB_RUNTIME_VERSION == "1.2.13":
        assert digest == nuclei_module.NUCLEI_SHA256


# --------------------------------------------------------------------------- touching cells


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_touching_cells_many_touch(seed):
    image, labels = touching_cells(seed)
    assert image.shape == labels.shape == (64, 64)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= image.min() and image.max() <= 1.0
    n = int(labels.max())
    np.testing.assert_array_equal(np.unique(labels), np.arange(n + 1))
    assert n >= 8
    assert len(_touching_pairs(labels)) >= 6
    # every cell is one 4-connected piece (scipy's labelling, independent of the generator)
    for i in range(1, n + 1):
        assert ndimage.label(labels == i)[1] == 1


def test_touching_cells_foreground_merges_touching_cells():
    """The binary foreground has fewer connected blobs than cells: that is why instance labels matter."""
    from skimage.measure import label

    _, labels = touching_cells(0)
    assert label(labels > 0, connectivity=1).max() < labels.max()


def test_touching_cells_seeded_and_sized():
    a = touching_cells(5, size=(48, 80), n_cells=6)
    b = touching_cells(5, size=(48, 80), n_cells=6)
    c = touching_cells(6, size=(48, 80), n_cells=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (48, 80)
    assert not np.array_equal(a[1], c[1])
    assert 1 <= a[1].max() <= 6
    ss = np.random.SeedSequence([5, 1])
    np.testing.assert_array_equal(touching_cells(ss)[1], touching_cells(np.random.SeedSequence([5, 1]))[1])


def test_touching_cells_cells_are_brighter_than_background():
    image, labels = touching_cells(1, noise=0.0)
    assert image[labels > 0].mean() > image[labels == 0].mean() + 0.3


def test_touching_cells_touching_controls_contacts():
    def contacts(touching):
        return sum(len(_touching_pairs(touching_cells(s, touching=touching, size=(96, 96))[1])) for s in range(6))
    apart, packed = contacts(0.0), contacts(1.0)
    assert packed >= 2 * max(apart, 1)


def test_touching_cells_bad_input():
    with pytest.raises(SegeduInputError, match="touching is a probability"):
        touching_cells(0, touching=1.5)
    with pytest.raises(SegeduInputError, match="radius must be a"):
        touching_cells(0, radius=5)
    with pytest.raises(SegeduInputError, match=r"radius\[1\]"):
        touching_cells(0, radius=(6.0, 3.0))
    with pytest.raises(SegeduTypeError, match="seed must be an int"):
        touching_cells(None)
    with pytest.raises(SegeduInputError, match="at least 16"):
        touching_cells(0, size=8)
