"""Tests of segedu._validation's shared checks: good inputs pass, bad ones get a message that names
the problem and the fix (students read these)."""

from __future__ import annotations

import numpy as np
import pytest

from segedu._validation import (
    SegeduInputError,
    SegeduTypeError,
    check_binary_mask,
    check_ignore_index,
    check_positive_int,
    check_seed,
    check_size,
)


def test_error_classes_are_value_and_type_errors():
    assert issubclass(SegeduInputError, ValueError)
    assert issubclass(SegeduTypeError, TypeError)


# --------------------------------------------------------------------------- check_binary_mask


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[True, False], [False, True]]),
        np.array([[1, 0], [0, 1]], dtype=np.uint8),
        np.array([[1, 0], [0, 1]], dtype=np.int64),
        np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        [[1, 0], [0, 1]],
    ],
)
def test_binary_mask_accepts_bool_and_0_1(mask):
    out = check_binary_mask(mask, "mask")
    assert out.dtype == bool
    np.testing.assert_array_equal(out, np.eye(2, dtype=bool))


def test_binary_mask_keeps_a_bool_array_and_accepts_empty():
    mask = np.zeros((3, 4), dtype=bool)
    assert check_binary_mask(mask, "mask") is mask
    assert check_binary_mask(np.zeros((0, 5), dtype=int), "mask").shape == (0, 5)


def test_binary_mask_accepts_a_torch_tensor():
    torch = pytest.importorskip("torch")
    out = check_binary_mask(torch.tensor([[0, 1]]), "mask")
    np.testing.assert_array_equal(out, [[False, True]])


def test_binary_mask_0_255_image_shows_values_and_fix():
    with pytest.raises(SegeduInputError) as info:
        check_binary_mask(np.array([[0, 255], [255, 0]], dtype=np.uint8), "target_mask")
    message = str(info.value)
    assert "target_mask must be a binary mask" in message
    assert "0, 255" in message
    assert "(target_mask > 0)" in message


def test_binary_mask_label_map_names_one_class_selection():
    with pytest.raises(SegeduInputError, match=r"0, 1, 2.*\(pred_mask == c\)"):
        check_binary_mask(np.array([0, 1, 2]), "pred_mask")
    with pytest.raises(SegeduInputError, match=r"-1, 0, 1"):
        check_binary_mask(np.array([-1, 0, 1]), "mask")


def test_binary_mask_shows_at_most_five_values():
    with pytest.raises(SegeduInputError) as info:
        check_binary_mask(np.arange(10), "mask")
    assert "0, 1, 2, 3, 4, ..." in str(info.value)
    assert "9" not in str(info.value)


def test_binary_mask_probabilities_say_threshold():
    with pytest.raises(SegeduTypeError) as info:
        check_binary_mask(np.array([0.2, 0.9, 1.0]), "pred_mask")
    message = str(info.value)
    assert "0.2, 0.9" in message  # the offending values, not the good 1.0
    assert "(pred_mask > 0.5)" in message
    with pytest.raises(SegeduTypeError, match="nan"):
        check_binary_mask(np.array([0.0, np.nan]), "mask")


def test_binary_mask_other_dtypes_are_refused():
    with pytest.raises(SegeduTypeError, match=r"dtype is <U1.*\(mask > 0\)"):
        check_binary_mask(np.array(["a", "b"]), "mask")
    with pytest.raises(SegeduTypeError, match="complex"):
        check_binary_mask(np.array([1 + 0j]), "mask")


# --------------------------------------------------------------------------- check_size


@pytest.mark.parametrize(
    "size, expected",
    [
        (32, (32, 32)),
        (np.int64(16), (16, 16)),
        ((48, 64), (48, 64)),
        ([48, 64], (48, 64)),
        (np.array([8, 9]), (8, 9)),
    ],
)
def test_size_accepts_int_or_pair(size, expected):
    out = check_size(size, "size")
    assert out == expected
    assert all(type(v) is int for v in out)


def test_size_minimum():
    assert check_size((8, 8), "size", minimum=8) == (8, 8)
    with pytest.raises(SegeduInputError, match=r"size\[0\] \(height\) must be at least 8, but got 4"):
        check_size((4, 64), "size", minimum=8)
    with pytest.raises(SegeduInputError, match=r"size\[1\] \(width\) must be at least 1, but got 0"):
        check_size((3, 0), "size")
    with pytest.raises(SegeduInputError, match="at least 1"):
        check_size(-2, "size")


def test_size_three_entries_suggests_shape_2():
    with pytest.raises(SegeduInputError) as info:
        check_size((64, 64, 3), "size")
    message = str(info.value)
    assert "(height, width)" in message and "3 entries" in message
    assert "image.shape[:2]" in message


@pytest.mark.parametrize("size", [True, 3.0, "64", None, (64.0, 64), (True, 8)])
def test_size_refuses_non_ints(size):
    with pytest.raises(SegeduTypeError, match="must be an int"):
        check_size(size, "out_size")


def test_size_message_uses_the_name():
    with pytest.raises(SegeduTypeError, match=r"out_size must be an int or a \(height, width\) pair"):
        check_size(None, "out_size")


# --------------------------------------------------------------------------- check_seed


@pytest.mark.parametrize("seed, expected", [(0, 0), (7, 7), (np.int32(3), 3), (2**40, 2**40), (None, None)])
def test_seed_accepts_non_negative_ints_and_none(seed, expected):
    out = check_seed(seed)
    assert out == expected and (out is None or type(out) is int)


def test_seed_refuses_bool_float_and_str():
    for bad in (True, 1.5, 2.0, "0"):
        with pytest.raises(SegeduTypeError, match=r"seed must be an int or None.*seed=0"):
            check_seed(bad)


def test_seed_refuses_negative_with_fix():
    with pytest.raises(SegeduInputError, match=r"seed must be at least 0.*-1.*non-negative"):
        check_seed(-1)


def test_seed_none_can_be_refused_and_name_is_used():
    with pytest.raises(SegeduTypeError, match=r"^grading_seed must be an int, but got None"):
        check_seed(None, "grading_seed", allow_none=False)
    assert check_seed(5, "grading_seed", allow_none=False) == 5


# --------------------------------------------------------------------------- check_ignore_index


@pytest.mark.parametrize("value, expected", [(None, None), (255, 255), (-1, -1), (np.uint8(255), 255)])
def test_ignore_index_accepts_ints_and_none(value, expected):
    out = check_ignore_index(value)
    assert out == expected and (out is None or type(out) is int)


@pytest.mark.parametrize("value", [True, 255.0, "255", [255]])
def test_ignore_index_refuses_other_types_with_fix(value):
    with pytest.raises(SegeduTypeError, match=r"ignore_index must be an int \(such as 255\) or None.*ignore_index=255"):
        check_ignore_index(value)


# --------------------------------------------------------------------------- check_positive_int


def test_positive_int_hint_ends_the_range_error():
    assert check_positive_int(np.int16(0), "padding", minimum=0) == 0
    with pytest.raises(SegeduInputError, match=r"^padding must be at least 0, but got -1\. Slice instead\.$"):
        check_positive_int(-1, "padding", minimum=0, hint=" Slice instead.")
    with pytest.raises(SegeduTypeError, match="k must be an int, but got True"):
        check_positive_int(True, "k")


# --------------------------------------------------------------------------- check_binary_target (unit 06)

torch = pytest.importorskip("torch")

from segedu._validation import check_binary_target, check_instance_labels, check_label_map  # noqa: E402


def test_binary_target_accepts_float_0_1_and_returns_it():
    logits = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    target = (torch.rand(2, 1, 3, 3) > 0.5).double()
    assert check_binary_target(target, logits) is target
    empty = torch.zeros(0, 1, 3, 3)
    assert check_binary_target(empty, torch.zeros(0, 1, 3, 3)) is empty
    meta = torch.empty(2, 1, 3, 3, device="meta")  # values unknown: only shape and dtype are checked
    assert check_binary_target(meta, torch.empty(2, 1, 3, 3, device="meta")) is meta


@pytest.mark.parametrize(
    "target, error, pattern",
    [
        (torch.full((2, 1, 4, 4), 255.0), SegeduInputError, r"0 and 255.*divide it by 255.*\(target / 255\)"),
        (torch.ones(2, 1, 4, 4, dtype=torch.long), SegeduTypeError, r"dtype is torch\.int64\. Use target\.float\(\)"),
        (torch.full((2, 1, 4, 4), 255, dtype=torch.uint8), SegeduTypeError, r"target\.float\(\) / 255"),
        (torch.ones(2, 1, 4, 4, dtype=torch.bool), SegeduTypeError, r"target\.float\(\)"),
        (torch.zeros(2, 3, 4, 4), SegeduInputError, r"RGB.*target\[:, :1\]"),
        (torch.zeros(2, 4, 4, 3), SegeduInputError, r"RGB.*target\[\.\.\., 0\]\[:, None\]"),
        (torch.zeros(2, 1, 4, 4, 3), SegeduInputError, r"RGB.*target\[\.\.\., 0\]"),
        (torch.zeros(2, 4, 4), SegeduInputError, r"target\[:, None\]"),
        (torch.zeros(2, 1, 1, 4, 4), SegeduInputError, r"target\[:, 0\]"),
        (torch.full((2, 1, 4, 4), 0.7), SegeduInputError, r"0\.7.*\(target > 0\.5\)\.float\(\)"),
        (torch.full((2, 1, 4, 4), 3.0), SegeduInputError, r"label map.*\(target == c\)"),
        (torch.full((2, 1, 4, 4), float("nan")), SegeduInputError, r"nan_to_num"),
        (np.zeros((2, 1, 4, 4), dtype=np.float32), SegeduTypeError, r"torch\.from_numpy\(target\)\.float\(\)"),
    ],
)
def test_binary_target_errors_name_the_fix(target, error, pattern):
    with pytest.raises(error, match=pattern):
        check_binary_target(target, torch.zeros(2, 1, 4, 4))


def test_binary_target_checks_logits_too():
    with pytest.raises(SegeduTypeError, match=r"logits must be a torch\.Tensor"):
        check_binary_target(torch.zeros(1, 2), np.zeros((1, 2)))
    with pytest.raises(SegeduTypeError, match=r"Use scores\.float\(\)"):
        check_binary_target(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long), logits_name="scores")


# --------------------------------------------------------------------------- check_label_map (unit 06)


@pytest.mark.parametrize("to", [np.asarray, torch.as_tensor])
def test_label_map_accepts_class_indices(to):
    labels = to(np.array([[0, 1], [2, 255]]))
    assert check_label_map(labels, 3, ignore_index=255) is labels
    assert check_label_map(to(np.array([[True, False]])), 2) is not None


@pytest.mark.parametrize("to", [np.asarray, torch.as_tensor])
def test_label_map_errors_name_the_fix(to):
    with pytest.raises(SegeduInputError, match=r"class 4, but with num_classes=4.*num_classes=5"):
        check_label_map(to(np.array([[0, 4]])), 4)
    with pytest.raises(SegeduInputError, match=r"class -1"):
        check_label_map(to(np.array([[0, -1]])), 4)
    with pytest.raises(SegeduInputError, match=r"0 and 255.*divide it by 255"):
        check_label_map(to(np.array([[0, 255]])), 2)
    with pytest.raises(SegeduInputError, match=r"RGB"):
        check_label_map(to(np.zeros((4, 4, 3), dtype=np.int64)), 3, ndim=2)
    with pytest.raises(SegeduInputError, match=r"channel axis of size 1.*squeeze\(1\)"):
        check_label_map(to(np.zeros((2, 1, 4, 4), dtype=np.int64)), 3, ndim=3)
    fix = r"\.long\(\)" if to is torch.as_tensor else r"\.astype\(np\.int64\)"
    with pytest.raises(SegeduTypeError, match=fix):
        check_label_map(to(np.array([[0.0, 2.0]])), 3)
    with pytest.raises(SegeduTypeError, match="argmax"):
        check_label_map(to(np.array([[0.2, 0.8]])), 3)


def test_label_map_ignore_index_skips_void_pixels():
    with pytest.raises(SegeduInputError, match="ignore_index"):
        check_label_map(np.array([[0, 255]]), 3)
    check_label_map(np.array([[0, 255]]), 3, ignore_index=255)
    check_label_map(np.full((2, 2), 255), 3, ignore_index=255)


# --------------------------------------------------------------------------- check_instance_labels (unit 06)


def test_instance_labels_accepts_integer_maps_of_any_ids():
    labels = np.array([[0, 7], [7, 300]], dtype=np.uint16)
    assert check_instance_labels(labels) is labels
    assert check_instance_labels(torch.tensor([[0, 1]])).dtype == np.int64


@pytest.mark.parametrize(
    "labels, error, pattern",
    [
        (np.array([[True, False]]), SegeduTypeError, r"boolean mask.*skimage\.measure\.label\(mask\)"),
        (np.array([[0.0, 1.0]]), SegeduTypeError, r"float64.*skimage\.measure\.label\(mask\)"),
        (np.array([[0.0, 1.0, 2.0]]), SegeduTypeError, r"astype\(np\.int32\)"),
        (np.array([[0, -2]]), SegeduInputError, r"negative id -2"),
        (np.zeros((2, 3, 3), dtype=int), SegeduInputError, r"H×W"),
    ],
)
def test_instance_labels_errors_name_the_fix(labels, error, pattern):
    with pytest.raises(error, match=pattern):
        check_instance_labels(labels, "instance_labels")
