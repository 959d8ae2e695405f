"""Bundled real images, each with its provenance and licence.

The images are the sample files that ship inside the scikit-image and scikit-learn wheels (both
core dependencies), so they load offline and segedu needs no package data of its own. Every figure
that shows one of them must carry its :attr:`SampleInfo.attribution`, e.g. in the caption.

Provenance notes (also in the repository's ``data/README.md``):

- scikit-image's docstrings give the licence of camera (CC0), astronaut and text (public domain),
  coins (no known copyright restrictions), coffee and chelsea (CC0). They state none for ``page``
  and ``moon``; scikit-image's policy is to ship only CC0 or public-domain images (scikit-image
  issue #3927), and that is all that is known.
- scikit-learn's ``datasets/images/README.txt`` releases china and flower under CC BY 2.0. It
  credits "danielbuechele" for both, but the flower's source link is the Flickr photostream of
  "vultilion", so the flower is credited to vultilion here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from .._validation import SegeduInputError, SegeduTypeError

__all__ = ["SampleInfo", "SAMPLE_NAMES", "list_samples", "load_sample", "sample_info"]

_SKIMAGE_DOCS = "https://scikit-image.org/docs/stable/api/skimage.data.html"


@dataclass(frozen=True)
class SampleInfo:
    """Provenance of one bundled image.

    Attributes
    ----------
    name : str
        The key for :func:`load_sample`.
    title : str
        A short human title.
    source : str
        The Python call that the pixels come from.
    licence : str
        The licence (or copyright status) as stated upstream.
    attribution : str
        The exact credit line to print with every figure that shows the image.
    url : str
        Where the image was originally published, or the upstream page that documents it.
    description : str
        What the image shows and what it is good for in this course.
    """

    name: str
    title: str
    source: str
    licence: str
    attribution: str
    url: str
    description: str


_INFO = (
    SampleInfo(
        name="camera",
        title="Camera (photographer with a camera)",
        source="skimage.data.camera()",
        licence="CC0 1.0",
        attribution="'camera' by Lav Varshney, CC0, via scikit-image",
        url="https://github.com/scikit-image/scikit-image/issues/3927",
        description="Grey 512×512 photograph of a photographer at a camera on a tripod; a classic for "
        "thresholding, edges and denoising. (This CC0 image replaced the MIT 'cameraman' in "
        "scikit-image 0.18.)",
    ),
    SampleInfo(
        name="coins",
        title="Greek coins from Pompeii",
        source="skimage.data.coins()",
        licence="No known copyright restrictions",
        attribution="Greek coins from Pompeii, Brooklyn Museum collection (no known copyright "
        "restrictions), via scikit-image",
        url="https://www.brooklynmuseum.org/opencollection/archives/image/51611",
        description="Grey 303×384 image of coins on a grey background that shares grey levels "
        "with the coins, so a single global threshold is not enough: regions, watershed.",
    ),
    SampleInfo(
        name="page",
        title="Scanned page",
        source="skimage.data.page()",
        licence="Not stated upstream (scikit-image ships only CC0/public-domain images)",
        attribution="'page' sample image, via scikit-image",
        url=f"{_SKIMAGE_DOCS}#skimage.data.page",
        description="Grey 191×384 scan of printed text under uneven illumination: global vs "
        "adaptive thresholding.",
    ),
    SampleInfo(
        name="text",
        title="Text (corner test image)",
        source="skimage.data.text()",
        licence="Public domain",
        attribution="'Corner.png' from Wikimedia Commons (public domain), via scikit-image",
        url="https://en.wikipedia.org/wiki/File:Corner.png",
        description="Grey 172×448 photograph of lettering on a textured, unevenly lit surface: "
        "thresholds, edges and corners.",
    ),
    SampleInfo(
        name="moon",
        title="Surface of the moon",
        source="skimage.data.moon()",
        licence="Not stated upstream (scikit-image ships only CC0/public-domain images)",
        attribution="'moon' sample image, via scikit-image",
        url=f"{_SKIMAGE_DOCS}#skimage.data.moon",
        description="Low-contrast grey 512×512 image of the lunar surface: histograms, contrast "
        "and why thresholds need a spread of grey levels.",
    ),
    SampleInfo(
        name="astronaut",
        title="Astronaut Eileen Collins",
        source="skimage.data.astronaut()",
        licence="Public domain (NASA)",
        attribution="Astronaut Eileen Collins, NASA (public domain), via scikit-image",
        url="https://flic.kr/p/r9qvLn",
        description="Colour 512×512 portrait with a flag and a helmet: colour clustering (k-means) "
        "and prompts for interactive segmentation.",
    ),
    SampleInfo(
        name="coffee",
        title="Coffee cup",
        source="skimage.data.coffee()",
        licence="CC0 1.0",
        attribution="'coffee' by Rachel Michetti, courtesy of Pikolo Espresso Bar, CC0, via scikit-image",
        url=f"{_SKIMAGE_DOCS}#skimage.data.coffee",
        description="Colour 400×600 photograph of a cup on a wooden table: elliptical shapes and "
        "smooth vs coarse texture.",
    ),
    SampleInfo(
        name="chelsea",
        title="Chelsea the cat",
        source="skimage.data.chelsea()",
        licence="CC0 1.0",
        attribution="'Chelsea the cat' by Stefan van der Walt, CC0, via scikit-image",
        url=f"{_SKIMAGE_DOCS}#skimage.data.chelsea",
        description="Colour 300×451 photograph of a cat: texture, horizontal and diagonal edges at "
        "several scales.",
    ),
    SampleInfo(
        name="china",
        title="Chinese building",
        source="sklearn.datasets.load_sample_image('china.jpg')",
        licence="CC BY 2.0",
        attribution="'china.jpg' by danielbuechele (flickr.com/photos/danielbuechele), CC BY 2.0 "
        "(creativecommons.org/licenses/by/2.0/), via scikit-learn",
        url="https://www.flickr.com/photos/danielbuechele/6061409035/",
        description="Colour 427×640 photograph of a Chinese pagoda under a pale sky: colour "
        "quantisation and k-means segmentation.",
    ),
    SampleInfo(
        name="flower",
        title="Flower",
        source="sklearn.datasets.load_sample_image('flower.jpg')",
        licence="CC BY 2.0",
        attribution="'flower.jpg' by vultilion (flickr.com/photos/vultilion), CC BY 2.0 "
        "(creativecommons.org/licenses/by/2.0/), via scikit-learn",
        url="https://www.flickr.com/photos/vultilion/6056698931/",
        description="Colour 427×640 close-up of a flower: colour clustering and region growing.",
    ),
)

_BY_NAME = {info.name: info for info in _INFO}

#: Names accepted by :func:`load_sample` and :func:`sample_info`.
SAMPLE_NAMES = tuple(_BY_NAME)


def _resolve(name) -> SampleInfo:
    if not isinstance(name, str):
        raise SegeduTypeError(f"name must be a string such as 'coins', but got {name!r} ({type(name).__name__}).")
    key = name.strip().lower()
    for ext in (".png", ".jpg", ".jpeg"):
        if key.endswith(ext):
            key = key[: -len(ext)]
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, SAMPLE_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SegeduInputError(
        f"There is no bundled sample image called {name!r}.{hint} "
        f"The names are: {', '.join(SAMPLE_NAMES)} (see segedu.data.list_samples())."
    )


def sample_info(name: str) -> SampleInfo:
    """Provenance, licence and attribution of a bundled image.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLE_NAMES` (case and a ``.png``/``.jpg`` ending are ignored).

    Returns
    -------
    SampleInfo

    Examples
    --------
    >>> from segedu.data import sample_info
    >>> info = sample_info("flower")
    >>> info.licence
    'CC BY 2.0'
    >>> "vultilion" in info.attribution
    True
    """
    return _resolve(name)


def list_samples() -> list[SampleInfo]:
    """Every bundled image's :class:`SampleInfo`, in the order of :data:`SAMPLE_NAMES`.

    Examples
    --------
    >>> from segedu.data import list_samples
    >>> [info.name for info in list_samples()][:3]
    ['camera', 'coins', 'page']
    """
    return list(_INFO)


def _load_raw(info: SampleInfo) -> np.ndarray:
    if info.source.startswith("sklearn"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{info.name}.jpg")
    import skimage.data

    return getattr(skimage.data, info.name)()


def load_sample(name: str, as_gray: bool = False) -> np.ndarray:
    """Load a bundled real image as floats in ``[0, 1]``; works offline.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLE_NAMES`; unknown names raise an error that lists the valid ones.
    as_gray : bool
        Convert a colour image to grey with ``skimage.color.rgb2gray`` (luminance weights
        0.2125 R + 0.7154 G + 0.0721 B). Grey images are returned unchanged.

    Returns
    -------
    numpy.ndarray, float64
        ``H×W`` for grey images (or with ``as_gray=True``), ``H×W×3`` for colour ones: the image
        through ``skimage.util.img_as_float``, so 8-bit values are divided by 255.

    Notes
    -----
    Show :func:`sample_info` ``(name).attribution`` with every figure of the image.

    Examples
    --------
    >>> from segedu.data import load_sample
    >>> img = load_sample("chelsea", as_gray=True)
    >>> img.shape, img.dtype
    ((300, 451), dtype('float64'))
    >>> bool(0.0 <= img.min() and img.max() <= 1.0)
    True
    """
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    info = _resolve(name)
    image = img_as_float(_load_raw(info))
    if image.dtype != np.float64:  # pragma: no cover - img_as_float gives float64 for 8-bit input
        image = image.astype(np.float64)
    if as_gray and image.ndim == 3:
        image = rgb2gray(image[..., :3])
    return image
