"""Tests of segedu.viz: colour-blind-safe palettes, overlays with contours, captioned panels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from skimage.color import rgb2lab  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from segedu._validation import SegeduInputError, SegeduTypeError  # noqa: E402
from segedu.viz import colorize, label_legend, label_palette, overlay, show_panels  # noqa: E402

OKABE_ITO_HEX = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]

# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _rgb(code):
    return [int(code[i : i + 2], 16) / 255 for i in (1, 3, 5)]


def _simulate(rgb, matrix):
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    seen = np.clip(linear @ np.asarray(matrix).T, 0, 1)
    return np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)


def _min_delta_e(rgb):
    lab = rgb2lab(rgb[None])[0]
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return d.min()


# --------------------------------------------------------------------------- palette


def test_palette_shape_background_and_okabe_ito_order():
    pal = label_palette(8)
    assert pal.shape == (8, 3) and pal.dtype == np.float64
    assert pal.min() >= 0 and pal.max() <= 1
    r, g, b = pal[0]
    assert r == g == b and r <= 0.35, "background is a neutral dark grey or black"
    np.testing.assert_allclose(pal[1:], [_rgb(c) for c in OKABE_ITO_HEX])
    assert len({tuple(row) for row in pal}) == 8


def test_palette_prefixes_and_cycling():
    np.testing.assert_array_equal(label_palette(3), label_palette(8)[:3])
    assert label_palette(1).shape == (1, 3)
    big = label_palette(17)
    np.testing.assert_array_equal(big[8:15], big[1:8])  # foreground colours repeat ...
    assert not (big[1:] == big[0]).all(axis=1).any()  # ... and never take the background grey
    with pytest.raises(SegeduInputError):
        label_palette(0)


@pytest.mark.parametrize("kind", ["normal", *CVD])
def test_palette_stays_distinct_under_colour_blindness(kind):
    pal = label_palette(8)
    seen = pal if kind == "normal" else _simulate(pal, CVD[kind])
    assert _min_delta_e(seen) > 12, f"two classes look alike under {kind}"


# --------------------------------------------------------------------------- colorize


def test_colorize_is_palette_indexing():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(9, 11))
    np.testing.assert_array_equal(colorize(labels, 6), label_palette(6)[labels])
    np.testing.assert_array_equal(colorize(labels), label_palette(int(labels.max()) + 1)[labels])
    custom = rng.random((6, 3))
    np.testing.assert_array_equal(colorize(labels, palette=custom), custom[labels])
    assert colorize(labels).shape == (9, 11, 3)


def test_colorize_masks_void_and_errors():
    mask = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(colorize(mask), label_palette(2)[mask.astype(int)])
    labels = np.array([[0, 255], [1, 2]])
    out = colorize(labels, 3, ignore_index=255)
    np.testing.assert_array_equal(out[0, 1], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out[1, 1], label_palette(3)[2])
    with pytest.raises(SegeduInputError, match="contains the label 3"):
        colorize(np.array([[0, 3]]), num_classes=3)
    with pytest.raises(SegeduTypeError, match="integer dtype"):
        colorize(np.array([[0.0, 1.0]]))
    with pytest.raises(SegeduInputError, match="palette has 2 colours"):
        colorize(np.array([[0, 2]]), num_classes=3, palette=label_palette(2))


# --------------------------------------------------------------------------- overlay


def _scene():
    rng = np.random.default_rng(1)
    labels = np.zeros((20, 24), dtype=np.int64)
    labels[2:9, 3:12] = 1
    labels[6:15, 10:20] = 2  # touches class 1
    labels[15:19, 2:6] = 3
    image = rng.random((20, 24))
    return image, labels


@pytest.mark.parametrize("colour", [False, True])
def test_overlay_background_unchanged_foreground_blended(colour):
    image, labels = _scene()
    if colour:
        image = np.stack([image, image[::-1], 1 - image], axis=-1)
    rgb = image if colour else np.repeat(image[..., None], 3, axis=-1)
    alpha = 0.3
    out = overlay(image, labels, num_classes=4, alpha=alpha, contours=False)
    assert out.shape == (20, 24, 3) and out.dtype == np.float64
    bg = labels == 0
    np.testing.assert_array_equal(out[bg], rgb[bg])
    expected = (1 - alpha) * rgb + alpha * label_palette(4)[labels]
    np.testing.assert_allclose(out[~bg], expected[~bg])


def test_overlay_marks_the_boundaries_of_find_boundaries():
    image, labels = _scene()
    plain = overlay(image, labels, num_classes=4, contours=False)
    out = overlay(image, labels, num_classes=4, contour_color=(1.0, 0.0, 1.0))
    edges = find_boundaries(labels, mode="inner")
    assert edges.any() and not edges[labels == 0].any()
    np.testing.assert_array_equal(out[edges], np.tile([1.0, 0.0, 1.0], (edges.sum(), 1)))
    np.testing.assert_array_equal(out[~edges], plain[~edges])
    # The boundary between the touching classes 1 and 2 is drawn as well.
    touching = (labels == 1) & np.roll(labels == 2, -1, axis=1)
    assert touching.any() and edges[touching].all()


def test_overlay_masks_dtypes_void_and_no_mutation():
    image, labels = _scene()
    before = image.copy()
    mask = labels > 0
    out_mask = overlay(image, mask)
    np.testing.assert_array_equal(out_mask[~mask], np.repeat(image[..., None], 3, axis=-1)[~mask])
    np.testing.assert_array_equal(image, before)
    assert overlay(image.astype(np.float32), labels).dtype == np.float32
    uint8 = (image * 255).astype(np.uint8)
    np.testing.assert_allclose(overlay(uint8, labels, contours=False)[labels == 0, 0], uint8[labels == 0] / 255)
    void = labels.copy()
    void[0:2, 0:4] = 255
    out = overlay(image, void, num_classes=4, ignore_index=255)
    np.testing.assert_array_equal(out[0:2, 0:4, 0], image[0:2, 0:4])


def test_overlay_errors_name_both_shapes():
    image, labels = _scene()
    with pytest.raises(SegeduInputError) as info:
        overlay(np.zeros((20, 25, 3)), labels)
    assert "(20, 25, 3)" in str(info.value) and "(20, 24)" in str(info.value)
    with pytest.raises(SegeduInputError, match="alpha"):
        overlay(image, labels, alpha=1.5)
    with pytest.raises(SegeduInputError, match="contains the label 3"):
        overlay(image, labels, num_classes=3)


# --------------------------------------------------------------------------- figures


def test_show_panels_returns_captioned_figure():
    image, labels = _scene()
    caption = "Left: the image. Middle: the label map. Right: the overlay, where white outlines mark every region. " * 3
    fig = show_panels(
        [image, colorize(labels, 4), overlay(image, labels, 4)],
        titles=["image", "labels", "overlay"],
        caption=caption,
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["image", "labels", "overlay"]
    assert all(not ax.axison for ax in fig.axes)
    texts = [" ".join(t.get_text().split()) for t in fig.texts]
    assert " ".join(caption.split()) in texts
    assert max(len(line) for t in fig.texts for line in t.get_text().splitlines()) < len(caption)
    grey = fig.axes[0].images[0]
    assert grey.get_cmap().name == "gray" and grey.get_clim() == (0.0, 1.0)
    fig.canvas.draw()


def test_show_panels_grid_single_image_and_errors():
    fig = show_panels([np.zeros((4, 4))] * 5, ncols=2, caption="Five black squares.")
    assert len(fig.axes) == 6 and sum(bool(ax.images) for ax in fig.axes) == 5
    fig = show_panels(np.random.default_rng(0).random((3, 8, 8)), caption="A channels-first image.")
    assert fig.axes[0].images[0].get_array().shape == (8, 8, 3)
    with pytest.raises(SegeduInputError, match="one title per image"):
        show_panels([np.zeros((4, 4))] * 2, titles=["only one"])
    with pytest.raises(SegeduInputError, match="empty"):
        show_panels([])


def test_label_legend_patches_match_palette():
    fig, ax = plt.subplots()
    names = ["background", "disk", "square"]
    legend = label_legend(ax, names, label_palette(3))
    assert [t.get_text() for t in legend.get_texts()] == names
    colours = [h.get_facecolor()[:3] for h in legend.legend_handles]
    np.testing.assert_allclose(colours, label_palette(3))
    with pytest.raises(SegeduInputError, match="palette has 2 colours"):
        label_legend(ax, names, label_palette(2))


def test_add_controls_redraws_only_when_a_control_moves():
    widgets = pytest.importorskip("ipywidgets")
    from segedu.viz import add_controls

    calls = []
    slider = widgets.IntSlider(value=3, min=1, max=9)
    box = add_controls(lambda size: calls.append(size), size=slider)
    assert calls == [], "the static figure shows the start value; nothing is drawn at start"
    slider.value = 7
    assert calls == [7]
    assert slider in box.children
