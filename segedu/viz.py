"""Accessible pictures of images and label maps.

Colours come from the Okabe–Ito palette, which stays distinguishable under the common forms of
colour blindness, and overlays draw class boundaries as well as fills, so colour is never the only
cue. Every figure made with :func:`show_panels` carries a caption that says what to see.

matplotlib is imported inside the functions that draw, so ``import segedu.viz`` stays light.

>>> import numpy as np
>>> from segedu.viz import colorize, overlay
>>> labels = np.array([[0, 1], [2, 2]])
>>> colorize(labels).shape
(2, 2, 3)
>>> overlay(np.zeros((2, 2)), labels, contours=False)[0, 0].tolist()  # background stays as it was
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

import numbers
import textwrap

import numpy as np

from ._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_float_image,
    check_ignore_index,
    check_integer_labels,
    check_label_range,
    check_ndim,
    check_positive_int,
)

__all__ = [
    "OKABE_ITO",
    "ORANGE",
    "SKY_BLUE",
    "GREEN",
    "YELLOW",
    "BLUE",
    "VERMILION",
    "PURPLE",
    "BACKGROUND_COLOR",
    "add_caption",
    "credit",
    "add_credit",
    "label_view",
    "best_time",
    "label_palette",
    "colorize",
    "overlay",
    "show_panels",
    "label_legend",
    "add_controls",
]

#: The seven Okabe–Ito colours used for classes 1, 2, ... (orange, sky blue, bluish green, yellow,
#: blue, vermillion, reddish purple); the eighth Okabe–Ito colour, black, is left out in favour of
#: a dark grey background.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")

#: The same colours by name, for lines and marks in hand-made figures. Give every line its own line
#: style or hatch as well, so that colour is never the only cue.
ORANGE, SKY_BLUE, GREEN, YELLOW, BLUE, VERMILION, PURPLE = OKABE_ITO

#: Class 0 (background): a neutral dark grey (#333333).
BACKGROUND_COLOR = "#333333"


def _hex_to_rgb(code: str) -> tuple[float, float, float]:
    code = code.lstrip("#")
    return tuple(int(code[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


_BASE = np.array([_hex_to_rgb(c) for c in (BACKGROUND_COLOR,) + OKABE_ITO])


def label_palette(num_classes: int) -> np.ndarray:
    """Colour-blind-safe colours for the classes ``0 .. num_classes - 1``.

    Class 0 (background) is a neutral dark grey; classes 1–7 follow the Okabe–Ito order: orange,
    sky blue, bluish green, yellow, blue, vermillion, reddish purple.

    Parameters
    ----------
    num_classes : int
        Number of classes, at least 1.

    Returns
    -------
    numpy.ndarray, float64, shape (num_classes, 3)
        RGB rows in ``[0, 1]``.

    Notes
    -----
    There are only seven safe foreground colours. From class 8 on the colours **repeat**
    (class 8 is orange again, class 9 sky blue, ...; the grey stays reserved for class 0), so with
    more than 8 classes tell classes apart by their contours and a legend, not by colour alone.

    Examples
    --------
    >>> from segedu.viz import label_palette
    >>> label_palette(3).round(3).tolist()
    [[0.2, 0.2, 0.2], [0.902, 0.624, 0.0], [0.337, 0.706, 0.914]]
    """
    num_classes = check_positive_int(num_classes, "num_classes", minimum=1)
    index = np.arange(num_classes)
    index = np.where(index == 0, 0, (index - 1) % len(OKABE_ITO) + 1)
    return _BASE[index].copy()


def _check_palette(palette, num_classes: int | None) -> np.ndarray:
    palette = as_array(palette, "palette")
    check_ndim(palette, "palette", 2, "a num_classes×3 array of RGB rows")
    if palette.shape[1] not in (3, 4):
        raise SegeduInputError(
            f"palette must have 3 columns (R, G, B), but got shape {palette.shape}. "
            f"Build one with segedu.viz.label_palette(num_classes)."
        )
    if not np.issubdtype(palette.dtype, np.number) or palette.dtype == bool:
        raise SegeduTypeError(f"palette must hold numbers in [0, 1], but its dtype is {palette.dtype}.")
    palette = palette[:, :3].astype(np.float64)
    if palette.size and (palette.min() < 0 or palette.max() > 1):
        raise SegeduInputError(
            f"palette values must lie in [0, 1], but they span [{palette.min():g}, {palette.max():g}]. "
            f"If they are 0–255 colours, divide by 255."
        )
    if num_classes is not None and len(palette) < num_classes:
        raise SegeduInputError(
            f"palette has {len(palette)} colours but num_classes={num_classes}: give one row per class, "
            f"e.g. segedu.viz.label_palette({num_classes})."
        )
    return palette


def _check_labels(labels, name: str = "labels") -> np.ndarray:
    labels = check_integer_labels(as_array(labels, name), name)
    check_ndim(labels, name, 2, "an H×W label map")
    return labels


def _infer_num_classes(labels: np.ndarray, ignore_index) -> int:
    values = labels if ignore_index is None else labels[labels != ignore_index]
    return max(2, int(values.max()) + 1) if values.size else 2


def colorize(labels, num_classes=None, palette=None, ignore_index=None, ignore_color=(1.0, 1.0, 1.0)):
    """Paint a label map: each pixel gets its class's colour.

    Parameters
    ----------
    labels : array_like of int or bool, shape (H, W)
        Class ids (a bool mask counts as the labels 0 and 1).
    num_classes : int, optional
        Number of classes; by default ``len(palette)`` if a palette is given, else
        ``labels.max() + 1``. Labels must lie in ``0 .. num_classes - 1``.
    palette : array_like, shape (K, 3), optional
        RGB rows in ``[0, 1]``; default :func:`label_palette` ``(num_classes)``.
    ignore_index : int, optional
        Label of "void" pixels (such as 255), painted with ``ignore_color``.
    ignore_color : 3 floats
        Colour of the void pixels (white by default).

    Returns
    -------
    numpy.ndarray, float64, shape (H, W, 3)
        ``palette[labels]``.

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.viz import colorize, label_palette
    >>> labels = np.array([[0, 1], [2, 1]])
    >>> rgb = colorize(labels, num_classes=3)
    >>> bool((rgb == label_palette(3)[labels]).all())
    True
    """
    labels = _check_labels(labels)
    ignore_index = check_ignore_index(ignore_index)
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes", minimum=1)
    if palette is not None:
        palette = _check_palette(palette, num_classes)
        if num_classes is None:
            num_classes = len(palette)
    if num_classes is None:
        num_classes = _infer_num_classes(labels, ignore_index)
    check_label_range(labels, "labels", num_classes, ignore_index)
    if palette is None:
        palette = label_palette(num_classes)
    if ignore_index is None:
        return palette[labels]
    void = labels == ignore_index
    out = palette[np.where(void, 0, labels)]
    out[void] = np.asarray(ignore_color, dtype=np.float64)[:3]
    return out


def _as_display_image(image, name: str = "image") -> np.ndarray:
    """An H×W×3 float image in [0, 1] (grey is repeated in three channels)."""
    arr = as_array(image, name)
    check_ndim(arr, name, (2, 3), "an H×W grey or H×W×3 colour image")
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        hint = " It looks channels-first: use image.transpose(1, 2, 0)." if arr.shape[0] in (1, 3, 4) else ""
        raise SegeduInputError(
            f"{name} must be H×W or H×W×3, but got shape {arr.shape} (last axis {arr.shape[-1]}).{hint}"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    elif arr.dtype == np.uint8:
        arr = arr / 255.0
    arr = check_float_image(arr, name)  # other integers become float64; NaN and inf are refused
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        lo, hi = arr.min(), arr.max()
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    else:
        arr = arr[..., :3].copy()
    return arr


def overlay(
    image,
    labels,
    num_classes=None,
    alpha: float = 0.45,
    contours: bool = True,
    ignore_index=None,
    palette=None,
    contour_color=(1.0, 1.0, 1.0),
):
    """Blend class colours over an image and outline every region.

    Pixels of class 0 (background) and ``ignore_index`` keep the image's own colour; every other
    pixel becomes ``(1 - alpha) * image + alpha * palette[label]``. With ``contours=True`` the
    pixels on the inside edge of each region, ``skimage.segmentation.find_boundaries(labels,
    mode="inner")``, are painted ``contour_color``, so the regions can be told apart without colour.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        Grey or RGB image. uint8 images are divided by 255; float images outside ``[0, 1]`` are
        rescaled by their minimum and maximum.
    labels : array_like of int or bool, shape (H, W)
        Class ids (a bool mask counts as 0/1).
    num_classes : int, optional
        Default ``labels.max() + 1``.
    alpha : float
        Opacity of the class colour, in ``[0, 1]``.
    contours : bool
        Draw the region boundaries.
    ignore_index : int, optional
        Label of "void" pixels, left unchanged and without contour.
    palette : array_like, shape (K, 3), optional
        Default :func:`label_palette` ``(num_classes)``.
    contour_color : 3 floats
        Colour of the boundary pixels (white by default).

    Returns
    -------
    numpy.ndarray, shape (H, W, 3)
        Float in ``[0, 1]``; float32 for a float32 image, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.viz import overlay
    >>> image = np.full((5, 5), 0.5)
    >>> mask = np.zeros((5, 5), dtype=bool); mask[1:4, 1:4] = True
    >>> out = overlay(image, mask)
    >>> out.shape, out[0, 0].tolist(), out[1, 1].tolist(), out[2, 2].round(3).tolist()
    ((5, 5, 3), [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.681, 0.556, 0.275])
    """
    raw = as_array(image, "image")
    out_dtype = np.float32 if raw.dtype == np.float32 else np.float64
    rgb = _as_display_image(raw, "image")
    labels = _check_labels(labels)
    ignore_index = check_ignore_index(ignore_index)
    if rgb.shape[:2] != labels.shape:
        raise SegeduInputError(
            f"image and labels must cover the same pixels, but image is {raw.shape} and labels is "
            f"{labels.shape}; labels should be {raw.shape[:2]}. Resize with nearest-neighbour "
            f"interpolation (order=0) or crop them to match."
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= float(alpha) <= 1.0:
        raise SegeduInputError(f"alpha must be a number in [0, 1], but got {alpha!r}.")
    if num_classes is None:
        if palette is not None:
            num_classes = len(_check_palette(palette, None))
        else:
            num_classes = _infer_num_classes(labels, ignore_index)
    num_classes = check_positive_int(num_classes, "num_classes", minimum=1)
    check_label_range(labels, "labels", num_classes, ignore_index)
    palette = label_palette(num_classes) if palette is None else _check_palette(palette, num_classes)

    clean = labels if ignore_index is None else np.where(labels == ignore_index, 0, labels)
    fg = clean != 0
    out = rgb
    out[fg] = (1.0 - alpha) * out[fg] + alpha * palette[clean[fg]]
    if contours:
        from skimage.segmentation import find_boundaries

        edges = find_boundaries(clean, mode="inner")
        out[edges] = np.asarray(contour_color, dtype=np.float64)[:3]
    return np.clip(out, 0.0, 1.0).astype(out_dtype, copy=False)


def _panel_array(img, index: int) -> np.ndarray:
    name = f"images[{index}]"
    arr = as_array(img, name)
    check_ndim(arr, name, (2, 3), "an H×W grey image or an H×W×3 colour image")
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first (a torch image): move channels last
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        raise SegeduInputError(f"{name} must be H×W or H×W×3, but got shape {arr.shape}.")
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.number):
        raise SegeduTypeError(f"{name} must hold numbers, but its dtype is {arr.dtype}.")
    return arr


def show_panels(images, titles=None, caption=None, cmap="gray", ncols=None, figsize=None):
    """Draw images side by side, with titles and a caption underneath.

    Parameters
    ----------
    images : array or sequence of arrays
        Each ``H×W`` (drawn with ``cmap``; floats in ``[0, 1]`` are drawn on a fixed 0–1 scale,
        other values are stretched) or ``H×W×3`` RGB (e.g. the output of :func:`colorize` or
        :func:`overlay`). Label maps should be passed through :func:`colorize` first.
        Channels-first ``3×H×W`` arrays (torch layout) are moved to channels-last.
    titles : sequence of str, optional
        One title per panel.
    caption : str
        What the reader should see in the figure. The course's accessibility rule says every
        figure has one; it is wrapped and written below the panels.
    cmap : str
        Colormap for grey panels.
    ncols : int, optional
        Panels per row; default ``min(len(images), 4)``.
    figsize : (float, float), optional
        Figure size in inches; by default about 3 inches per panel plus room for the caption.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from segedu.data import shapes_sample
    >>> from segedu.viz import colorize, overlay, show_panels
    >>> image, labels = shapes_sample(seed=3)
    >>> fig = show_panels([image, colorize(labels, 4), overlay(image, labels, 4)],
    ...                   titles=["image", "labels", "overlay"],
    ...                   caption="Each shape has its own class colour; outlines mark the regions.")
    >>> len(fig.axes)
    3
    """
    import matplotlib.pyplot as plt

    if isinstance(images, np.ndarray) or type(images).__module__.startswith("torch"):
        images = [images]
    images = list(images)
    if not images:
        raise SegeduInputError("images is empty: pass at least one image.")
    arrays = [_panel_array(img, i) for i, img in enumerate(images)]
    n = len(arrays)
    if titles is not None:
        if isinstance(titles, str):
            titles = [titles]
        titles = list(titles)
        if len(titles) != n:
            raise SegeduInputError(
                f"titles has {len(titles)} entries but there are {n} images: give one title per image (or None)."
            )
    if caption is not None and not isinstance(caption, str):
        raise SegeduTypeError(f"caption must be a string, but got {type(caption).__name__}.")
    ncols = min(n, 4) if ncols is None else check_positive_int(ncols, "ncols", minimum=1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)

    fontsize = 10.0
    title_in = 0.35 if titles is not None else 0.1
    width = figsize[0] if figsize is not None else 3.0 * ncols
    lines = []
    if caption:
        chars_per_line = max(30, int(width * 72 / (0.55 * fontsize)))
        lines = textwrap.wrap(" ".join(caption.split()), width=chars_per_line)
    caption_in = (len(lines) * 1.4 * fontsize / 72 + 0.2) if lines else 0.05
    if figsize is None:
        figsize = (width, 3.0 * nrows + title_in * nrows + caption_in)
    fig = plt.figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= n:
            continue
        arr = arrays[k]
        if arr.ndim == 2:
            is_float = np.issubdtype(arr.dtype, np.floating)
            finite = arr[np.isfinite(arr)] if is_float else arr
            in_unit = is_float and finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
            limits = {"vmin": 0.0, "vmax": 1.0} if in_unit else {}
            ax.imshow(arr, cmap=cmap, interpolation="nearest", **limits)
        else:
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.clip(arr, 0.0, 1.0)
            ax.imshow(arr, interpolation="nearest")
        if titles is not None and titles[k] is not None:
            ax.set_title(str(titles[k]), fontsize=fontsize + 1)
    height = figsize[1]
    fig.subplots_adjust(
        left=0.02,
        right=0.98,
        bottom=min(0.5, caption_in / height + 0.01),
        top=1.0 - min(0.3, title_in / height),
        wspace=0.06,
        hspace=0.06 + title_in / 3.0,
    )
    if lines:
        fig.text(0.5, 0.08 / height, "\n".join(lines), ha="center", va="bottom", fontsize=fontsize)
    return fig


def label_legend(ax, class_names, palette=None, **legend_kwargs):
    """Add a legend of coloured patches, one per class, to a matplotlib axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    class_names : sequence of str
        Name of class 0, 1, ...
    palette : array_like, shape (K, 3), optional
        At least one colour per name; default :func:`label_palette` ``(len(class_names))``.
    **legend_kwargs
        Passed to ``ax.legend`` (default: to the right of the axes).

    Returns
    -------
    matplotlib.legend.Legend

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from segedu.data import SHAPE_CLASSES
    >>> from segedu.viz import label_legend, label_palette
    >>> fig, ax = plt.subplots()
    >>> legend = label_legend(ax, SHAPE_CLASSES[:4], label_palette(4))
    >>> [t.get_text() for t in legend.get_texts()]
    ['background', 'disk', 'square', 'triangle']
    """
    from matplotlib.patches import Patch

    if isinstance(class_names, str):
        raise SegeduTypeError("class_names must be a sequence of names, e.g. ['background', 'disk'], not one string.")
    names = [str(name) for name in class_names]
    if not names:
        raise SegeduInputError("class_names is empty: give one name per class.")
    palette = label_palette(len(names)) if palette is None else _check_palette(palette, len(names))
    handles = [
        Patch(facecolor=palette[k], edgecolor="black", linewidth=0.8, label=name) for k, name in enumerate(names)
    ]
    options = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, "frameon": False}
    options.update(legend_kwargs)
    return ax.legend(handles=handles, **options)


def add_controls(draw, **controls):
    """Show ipywidgets controls and redraw ``draw(**values)`` below them whenever one changes.

    Widgets are never the only way to see something in this course: a lecture first draws the
    static figure with the start values, then calls this to add the controls on top. Nothing is
    drawn until a control moves. That is also why this is not ``ipywidgets.interact``: a headless
    runner (nbclient, as in CI) can stall for a whole cell timeout on a figure drawn inside a widget
    at start-up (jupyter/nbclient#312). It uses only what ipywidgets 7.7 (Colab's) and 8 both have:
    ``Output``, ``VBox`` and ``observe(..., names="value")``; the Colab-versions CI stage
    (:mod:`segedu.instructor.colab_versions`) runs it on 7.7.1 with IPython 7.34.

    Parameters
    ----------
    draw : callable
        Draws the figure for one set of values, given as keyword arguments.
    **controls : ipywidgets.ValueWidget
        One control per keyword argument of ``draw``.

    Returns
    -------
    ipywidgets.VBox or None
        The displayed box, or ``None`` when ipywidgets is not installed (then only the static
        figure is shown, and a note says so).

    Examples
    --------
    >>> import ipywidgets as widgets                                     # doctest: +SKIP
    >>> add_controls(lambda t: print(t), t=widgets.FloatSlider(value=0.5))  # doctest: +SKIP
    """
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: the static figure above shows the default values.")
        return None
    output = widgets.Output()

    def redraw(change):
        with output:
            output.clear_output(wait=True)
            draw(**{name: control.value for name, control in controls.items()})

    for control in controls.values():
        control.observe(redraw, names="value")
    box = widgets.VBox([*controls.values(), output])
    display(box)
    return box


# -- captions and credits of hand-made figures (shared by the lectures, as d2l's #@save helpers) ----


def add_caption(fig, text, fontsize=9.5):
    """Write ``text`` under ``fig``, wrapped to its width: the caption says what the reader should see.

    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure(figsize=(4, 2))
    >>> add_caption(fig, "A caption.").get_text()
    'A caption.'
    >>> plt.close(fig)
    """
    import textwrap

    chars_per_line = max(20, int(fig.get_figwidth() * 72 / (0.52 * fontsize)))
    return fig.text(0.5, -0.01, textwrap.fill(" ".join(str(text).split()), chars_per_line),
                    ha="center", va="top", fontsize=fontsize)


def credit(name) -> str:
    """The credit line of a bundled image, read from its metadata so that it cannot drift.

    >>> credit("camera").startswith("Image: ")
    True
    """
    from .data import sample_info

    return f"Image: {sample_info(name).attribution}."


def add_credit(fig, name_or_text):
    """Print an image credit under a hand-made figure: a bundled image's name, or the credit's text."""
    from .data import SAMPLE_NAMES

    text = credit(name_or_text) if name_or_text in SAMPLE_NAMES else str(name_or_text)
    return fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=8, style="italic", wrap=True)


def label_view(labels, num_classes):
    """A label map in the course's colour-blind-safe colours, with a white outline around every region."""
    return overlay(colorize(labels, num_classes), labels, num_classes, alpha=1.0)


def best_time(function, repeats=3) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``function()``.

    The best of a few runs is the least disturbed by other work on a shared machine, so lectures
    compare two implementations by it.

    >>> best_time(lambda: sum(range(1000))) < 1.0
    True
    """
    import time

    best = float("inf")
    for _ in range(check_positive_int(repeats, "repeats")):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
