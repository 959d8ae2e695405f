"""A real fluorescence microscopy image of nuclei with 125 hand-drawn instance labels.

The image and its labels are the 2-D nuclei example that the `stardist <https://github.com/stardist/stardist>`_
package ships (``stardist.data.test_image_nuclei_2d``, files ``img2d.tif`` and ``mask2d.tif`` of the
stardist 0.9.2 wheel). Stardist's docstring says the image and mask come "from the 2018 kaggle DSB
challenge" (the 2018 Data Science Bowl, [1]_, whose images were released as BBBC038 in the Broad
Bioimage Benchmark Collection). segedu packages them as one small compressed file,
``segedu/data/nuclei/nuclei_2d.npz``, so that ``pip install segedu`` brings them to Colab offline.
Provenance, licences and the changes made are in ``segedu/data/nuclei/PROVENANCE.txt`` and in the
repository's ``data/README.md``; :func:`nuclei_info` returns them, and its ``attribution`` is the
line that every figure showing the image must carry.

What was changed, and nothing else:

- the 16-bit TIFF image holds the integers 0..235, so it is stored losslessly as ``uint8``;
- the instance ids of the mask (1..183 with gaps) are renumbered ``1..125`` in the order of their
  old ids (``skimage.segmentation.relabel_sequential``), and stored as ``uint8``.

One annotated nucleus (old id 129, new id 87) consists of two pixel islands in the original mask;
it is kept as it was drawn.

Train/test split (:func:`nuclei_tiles`): the **left half** (columns 0..255) is the training image
and the **right half** (columns 256..511) is the test image; each half is cut into non-overlapping
square tiles read row by row. Five nuclei cross the cut at column 256, so a piece of each lies in
either half; no pixel is in both.

References
----------
.. [1] Caicedo, J. C. et al. "Nucleus segmentation across imaging experiments: the 2018 Data
       Science Bowl." Nature Methods 16, 1247--1253 (2019). :DOI:`10.1038/s41592-019-0612-7`
.. [2] Schmidt, U., Weigert, M., Broaddus, C., Myers, G. "Cell Detection with Star-convex
       Polygons." MICCAI 2018. arXiv:1806.03535

Examples
--------
>>> from segedu.data import load_nuclei, nuclei_info, nuclei_tiles
>>> image, labels = load_nuclei()
>>> image.shape, image.dtype, labels.dtype, int(labels.max())
((512, 512), dtype('float32'), dtype('int32'), 125)
>>> tiles, tile_labels = nuclei_tiles("train", tile=128)
>>> tiles.shape, tile_labels.shape
((8, 128, 128), (8, 128, 128))
>>> nuclei_info().licence
'BSD-3-Clause (stardist, as packaged); CC0 1.0 (BBBC038 / 2018 Data Science Bowl images)'
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import resources

import numpy as np

from .._validation import (
    SegeduInputError,
    as_array,
    check_in,
    check_integer_labels,
    check_positive_int,
)
from .samples import SampleInfo

__all__ = [
    "NUCLEI_FILE",
    "NUCLEI_SHA256",
    "NUCLEI_SPLITS",
    "load_nuclei",
    "nuclei_info",
    "nuclei_tiles",
    "foreground_mask",
]

#: Name of the packaged file, inside ``segedu/data/nuclei/``.
NUCLEI_FILE = "nuclei_2d.npz"
#: SHA-256 of the packaged file (the zip is written with fixed timestamps, so it is reproducible).
NUCLEI_SHA256 = "b8418e3e29987f12a40bbae6f234c78cd3ff96e7d854d4b7682310c80dc0a1cd"
#: The values of ``split`` for :func:`nuclei_tiles`: the left half trains, the right half tests.
NUCLEI_SPLITS = ("train", "test")

_SIZE = 512
_HALF = _SIZE // 2

_INFO = SampleInfo(
    name="nuclei",
    title="Fluorescent nuclei (2018 Data Science Bowl), with 125 instance labels",
    source="segedu.data.load_nuclei() (package data; from stardist 0.9.2, stardist/data/images/img2d.tif, mask2d.tif)",
    licence="BSD-3-Clause (stardist, as packaged); CC0 1.0 (BBBC038 / 2018 Data Science Bowl images)",
    attribution="Nuclei image and labels from the 2018 Data Science Bowl (BBBC038, Caicedo et al. 2019, "
    "CC0), as packaged by stardist (U. Schmidt & M. Weigert, BSD-3-Clause), via segedu",
    url="https://bbbc.broadinstitute.org/BBBC038",
    description="Grey 512×512 fluorescence microscopy image of cell nuclei (a nuclear stain) with 125 "
    "hand-drawn instance labels, several of them touching: semantic and instance segmentation on real "
    "data (U-Net, weight maps, instance matching). Left half: training; right half: test.",
)


def nuclei_info() -> SampleInfo:
    """Provenance, licence and the attribution line of the nuclei image.

    Returns
    -------
    SampleInfo
        Same fields as :func:`segedu.data.sample_info`. Print ``attribution`` with every figure
        that shows the image or its labels.

    Notes
    -----
    What is certain: the files are in the stardist 0.9.2 wheel, which is BSD-3-Clause
    (Copyright (c) 2018-2025 Uwe Schmidt, Martin Weigert), and stardist's docstring names the 2018
    Data Science Bowl (Caicedo et al. 2019) as their source. What is taken from the Broad
    Institute's BBBC038 page and not re-checked offline: the DSB images are released under CC0 1.0.
    Which of the DSB images this is, and whether stardist re-drew or corrected its mask, is not
    stated by stardist.

    Examples
    --------
    >>> from segedu.data import nuclei_info
    >>> info = nuclei_info()
    >>> "Data Science Bowl" in info.attribution and "stardist" in info.attribution
    True
    """
    return _INFO


def _nuclei_path():
    return resources.files("segedu.data").joinpath("nuclei", NUCLEI_FILE)


def _read_arrays() -> tuple[np.ndarray, np.ndarray]:
    raw = _nuclei_path().read_bytes()
    with np.load(io.BytesIO(raw)) as archive:
        return archive["image"], archive["labels"]


def load_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The 512×512 nuclei image and its instance labels; works offline.

    Returns
    -------
    image : numpy.ndarray, float32, shape (512, 512)
        The grey values divided by 255, as ``skimage.util.img_as_float`` does for 8-bit data, so
        they lie in ``[0, 1]`` (the brightest pixel is 235/255 ≈ 0.92; not stretched).
    labels : numpy.ndarray, int32, shape (512, 512)
        0 is background, ``1..125`` are the nuclei (each id is one annotated nucleus).

    Notes
    -----
    Show :func:`nuclei_info` ``().attribution`` with every figure. For the binary
    foreground/background target use :func:`foreground_mask`.

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.data import load_nuclei
    >>> image, labels = load_nuclei()
    >>> bool(0.0 <= image.min() and image.max() <= 1.0)
    True
    >>> len(np.unique(labels)) - 1  # background excluded
    125
    """
    image, labels = _read_arrays()
    return (image.astype(np.float32) / np.float32(255.0)), labels.astype(np.int32)


def foreground_mask(labels) -> np.ndarray:
    """The binary foreground of an instance-label map: ``labels > 0``.

    Parameters
    ----------
    labels : array_like of int, any shape
        Instance ids (0 = background), e.g. from :func:`load_nuclei` or :func:`nuclei_tiles`;
        numpy arrays and torch tensors are accepted.

    Returns
    -------
    numpy.ndarray of bool, same shape
        True where some instance is. Touching instances merge into one blob here: that is exactly
        what the U-Net border weight map is for.

    Examples
    --------
    >>> from segedu.data import foreground_mask
    >>> foreground_mask([[0, 3, 3], [0, 0, 7]]).astype(int)
    array([[0, 1, 1],
           [0, 0, 1]])
    """
    arr = check_integer_labels(as_array(labels, "labels"), "labels")
    if arr.size and int(arr.min()) < 0:
        raise SegeduInputError(
            f"labels must be instance ids >= 0 (0 = background), but it holds {int(arr.min())}. "
            f"Relabel it, e.g. with skimage.measure.label(labels > 0)."
        )
    return arr > 0


def nuclei_tiles(split: str = "train", tile: int = 128, relabel: bool = False):
    """Non-overlapping square tiles of the training (left) or test (right) half of the nuclei image.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` is the left half (columns 0..255), ``"test"`` the right half (columns 256..511),
        both all 512 rows.
    tile : int
        Side of the square tiles; it must divide 256 (e.g. 32, 64, 128, 256). The half is cut into
        ``(512 // tile) × (256 // tile)`` tiles, taken row by row (top-left first).
    relabel : bool
        If False (default), a tile keeps the image-wide ids of :func:`load_nuclei`, so a nucleus cut
        by a tile border has the same id in both tiles. If True, each tile's ids are renumbered
        ``1..n`` (``skimage.segmentation.relabel_sequential``). Instance matching and weight maps
        work with either; renumbering only makes the ids of a tile compact.

    Returns
    -------
    images : numpy.ndarray, float32, shape (N, tile, tile)
        Values in ``[0, 1]`` as in :func:`load_nuclei`.
    labels : numpy.ndarray, int32, shape (N, tile, tile)
        Instance ids; use :func:`foreground_mask` for the binary target.

    Examples
    --------
    >>> from segedu.data import nuclei_tiles
    >>> images, labels = nuclei_tiles("test", tile=64)
    >>> images.shape, labels.dtype
    ((32, 64, 64), dtype('int32'))
    >>> nuclei_tiles("train", tile=256)[0].shape
    (2, 256, 256)
    """
    check_in(split, "split", NUCLEI_SPLITS)
    tile = check_positive_int(tile, "tile", minimum=1)
    if _HALF % tile:
        divisors = [d for d in (16, 32, 64, 128, 256) if _HALF % d == 0]
        raise SegeduInputError(
            f"tile must divide {_HALF} (each half of the nuclei image is {_SIZE}×{_HALF} pixels), "
            f"but got tile={tile}. Use one of {divisors}."
        )
    image, labels = load_nuclei()
    cols = slice(0, _HALF) if split == "train" else slice(_HALF, _SIZE)
    image, labels = image[:, cols], labels[:, cols]
    rows_n, cols_n = _SIZE // tile, _HALF // tile
    # (rows_n, tile, cols_n, tile) -> (rows_n, cols_n, tile, tile): row-major order of the tiles
    images = image.reshape(rows_n, tile, cols_n, tile).swapaxes(1, 2).reshape(-1, tile, tile)
    tiles = labels.reshape(rows_n, tile, cols_n, tile).swapaxes(1, 2).reshape(-1, tile, tile)
    images, tiles = np.ascontiguousarray(images), np.ascontiguousarray(tiles)
    if relabel:
        from skimage.segmentation import relabel_sequential

        tiles = np.stack([relabel_sequential(t)[0] for t in tiles]).astype(np.int32)
    return images, tiles


# --------------------------------------------------------------------------- packing (instructors)


def _pack_from_stardist(image_tif, mask_tif, out_path) -> str:
    """Write ``nuclei_2d.npz`` from stardist's ``img2d.tif`` and ``mask2d.tif``; return its sha256.

    Instructor-only: run once when the file is (re)made. The zip members get a fixed timestamp,
    so the same TIFFs always give the same bytes and the same :data:`NUCLEI_SHA256`.
    """
    from skimage.io import imread
    from skimage.segmentation import relabel_sequential

    image = imread(image_tif)
    mask = imread(mask_tif)
    if image.shape != (_SIZE, _SIZE) or mask.shape != (_SIZE, _SIZE):
        raise SegeduInputError(f"expected two {_SIZE}×{_SIZE} TIFFs, got {image.shape} and {mask.shape}")
    if image.min() < 0 or image.max() > 255 or not np.all(image == np.round(image)):
        raise SegeduInputError("the image does not fit uint8 losslessly; it is not stardist's img2d.tif")
    relabelled = relabel_sequential(mask.astype(np.int64))[0]
    if relabelled.max() > 255:
        raise SegeduInputError("more than 255 instances: they do not fit uint8")
    arrays = {"image": image.astype(np.uint8), "labels": relabelled.astype(np.uint8)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    data = buffer.getvalue()
    with open(out_path, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()
