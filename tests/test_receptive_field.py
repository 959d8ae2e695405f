"""segedu.conv.receptive_field and receptive_field_by_gradient, against autograd and scipy.ndimage.

The formula's peer is the gradient of one output pixel with respect to the input (torch autograd on
nn.Conv2d stacks); the gradient mask's peer is scipy's binary dilation by the dilated kernels'
footprints (the set of input offsets that a stack of convolutions can reach is the Minkowski sum of
their tap offsets).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.conv import receptive_field, receptive_field_by_gradient


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _conv_stack(layers, weight="ones", channels=1, seed=0):
    """nn.Conv2d layers without padding, bias or nonlinearity, for (k, s, d) triples."""
    torch.manual_seed(seed)
    convs = [nn.Conv2d(channels, channels, k, stride=s, dilation=d, bias=False) for k, s, d in layers]
    if weight == "ones":
        for conv in convs:
            nn.init.ones_(conv.weight)
    return nn.Sequential(*convs).double()


def _bounding_box(mask):
    rows, cols = np.nonzero(mask)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def _reachable_offsets(layers):
    """Input pixels that reach one output of a stride-1 stack: dilate a point by each kernel's footprint."""
    size, _ = receptive_field(layers)
    canvas = np.zeros((size, size), dtype=bool)
    canvas[size // 2, size // 2] = True
    for k, s, d in layers:
        assert s == 1
        footprint = np.zeros((d * (k - 1) + 1,) * 2, dtype=bool)
        footprint[::d, ::d] = True
        canvas = ndimage.binary_dilation(canvas, structure=footprint)
    return canvas


# --------------------------------------------------------------------------- the formula


@pytest.mark.parametrize("case", range(12))
def test_receptive_field_equals_the_gradient_bounding_box_of_random_stacks(case):
    rng = np.random.default_rng(case)
    layers = [
        (int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 2])), int(rng.choice([1, 2, 3])))
        for _ in range(int(rng.integers(1, 5)))
    ]
    size, jump = receptive_field(layers)
    n = size + 4 * jump  # valid convolutions only: the whole field lies inside the input
    mask = receptive_field_by_gradient(_conv_stack(layers), (1, n, n))
    assert _bounding_box(mask) == (size, size), layers
    assert jump == int(np.prod([s for _, s, _ in layers]))


def test_receptive_field_jump_is_the_distance_between_neighbouring_outputs():
    layers = [(3, 2, 1), (3, 1, 2), (2, 2, 1), (3, 1, 1)]
    size, jump = receptive_field(layers)
    stack = _conv_stack(layers)
    n = size + 6 * jump
    left = receptive_field_by_gradient(stack, (1, n, n), output_index=(2, 2))
    right = receptive_field_by_gradient(stack, (1, n, n), output_index=(2, 3))
    assert np.array_equal(np.roll(left, jump, axis=1), right)


def test_receptive_field_of_vgg16_and_known_values():
    vgg16 = []
    for convs in (2, 2, 3, 3, 3):
        vgg16 += [(3, 1, 1)] * convs + [(2, 2, 1)]
    assert receptive_field(vgg16) == (212, 32)  # Araujo et al. (Distill 2019), VGG-16 at pool5
    assert receptive_field([]) == (1, 1)
    assert receptive_field([(3, 1, 1)] * 3) == (7, 1)
    # effective kernel size k + (k - 1)(d - 1)
    for k, d in [(3, 2), (3, 6), (5, 3), (1, 4)]:
        assert receptive_field([(k, 1, d)])[0] == k + (k - 1) * (d - 1)


def test_strides_multiply_not_add():
    # two stride-2 layers, then a 3x3 conv: it adds (3 - 1) * 4, a jump of 4 (2 + 2 would give the same;
    # three stride-2 layers tell the two apart: 8 against 6)
    layers = [(1, 2, 1)] * 3 + [(3, 1, 1)]
    assert receptive_field(layers) == (1 + 2 * 8, 8)


def test_receptive_field_accepts_numpy_ints_and_lists():
    assert receptive_field([[np.int64(3), 1, np.int32(2)], (3, 1, 1)]) == (7, 1)
    assert receptive_field(iter([(3, 1, 1)])) == (3, 1)


@pytest.mark.parametrize(
    "layers, error, words",
    [
        ((3, 1, 1), SegeduTypeError, r"single triple .*receptive_field\(\[\(3, 1, 1\)\]\)"),
        ([3, 3], SegeduTypeError, r"layers\[0\] .*int 3.*\[\(3, 1, 1\)\]"),
        ([(3, 2)], SegeduInputError, r"layers\[0\] must have 3 entries.*Add the dilation.*\(3, 2, 1\)"),
        ([(3, 1, 1), (3, 0, 1)], SegeduInputError,
         r"layers\[1\]\[1\] \(stride\) must be at least 1 \(1 for no stride\), but got 0"),
        ([(3, 1, 0)], SegeduInputError, r"layers\[0\]\[2\] \(dilation\) must be at least 1 \(1 for no dilation\)"),
        ([(0, 1, 1)], SegeduInputError, r"layers\[0\]\[0\] \(kernel_size\) must be at least 1, but got 0"),
        ([(3, 1, 1.5)], SegeduTypeError, r"layers\[0\]\[2\] \(dilation\) must be an int"),
        ([(True, 1, 1)], SegeduTypeError, r"kernel_size"),
        ("331", SegeduTypeError, r"sequence of \(kernel_size, stride, dilation\)"),
        (3, SegeduTypeError, r"sequence of \(kernel_size, stride, dilation\)"),
        ([{"k": 3}], SegeduTypeError, r"triple of ints"),
    ],
)
def test_receptive_field_bad_input_names_the_fix(layers, error, words):
    with pytest.raises(error, match=words):
        receptive_field(layers)


# --------------------------------------------------------------------------- the gradient picture


def test_equal_rates_grid_and_hybrid_rates_fill_the_square():
    equal = [(3, 1, 2)] * 3
    hybrid = [(3, 1, 1), (3, 1, 2), (3, 1, 3)]
    assert receptive_field(equal)[0] == receptive_field(hybrid)[0] == 13
    n = 21
    for layers, solid in ((equal, False), (hybrid, True)):
        mask = receptive_field_by_gradient(_conv_stack(layers), (1, n, n))
        rows, cols = np.nonzero(mask)
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.shape == (13, 13)
        assert bool(box.all()) is solid, layers
        assert np.array_equal(box, _reachable_offsets(layers)), layers
    # the gridding: only every other row and column, a quarter of the square
    mask = receptive_field_by_gradient(_conv_stack(equal), (1, n, n))
    assert mask.sum() == 7 * 7


@pytest.mark.parametrize("rates", [(2, 2, 2), (1, 2, 5), (1, 3, 3), (2, 4)])
def test_random_weights_give_the_same_holes_as_scipy_dilation(rates):
    layers = [(3, 1, r) for r in rates]
    size, _ = receptive_field(layers)
    stack = _conv_stack(layers, weight="random", channels=2, seed=sum(rates))
    mask = receptive_field_by_gradient(stack, (2, size, size))
    assert np.array_equal(mask, _reachable_offsets(layers))


def test_linearize_shows_the_field_behind_switched_off_relus():
    torch.manual_seed(0)
    layers = [(3, 1, 1), (3, 1, 2), (3, 1, 1)]
    body = []
    for k, _, d in layers:
        body += [nn.Conv2d(4, 4, k, dilation=d), nn.ReLU(inplace=True)]
    net = nn.Sequential(*body).double()
    for conv in net[::2]:  # mostly negative pre-activations: many units off
        nn.init.constant_(conv.bias, -0.5)
    size, _ = receptive_field(layers)
    plain = receptive_field_by_gradient(net, (4, size, size))
    linear = receptive_field_by_gradient(net, (4, size, size), linearize=True)
    assert np.array_equal(linear, _reachable_offsets(layers))
    assert not (plain & ~linear).any()  # switching units on can only add pixels
    assert plain.sum() < linear.sum()
    # the mode is gone afterwards: relu works as usual
    assert torch.relu(torch.tensor([-1.0])).item() == 0.0


def test_batchnorm_in_training_mode_is_run_in_eval_and_restored():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)).train()
    mask = receptive_field_by_gradient(net, (1, 9, 9))
    assert net.training and all(m.training for m in net)
    assert _bounding_box(mask) == (3, 3) and mask.sum() == 9
    net.eval()
    receptive_field_by_gradient(net, (1, 9, 9))
    assert not net.training
    net.train()
    net[1].eval()  # a frozen batch norm stays frozen
    receptive_field_by_gradient(net, (1, 9, 9))
    assert net.training and net[0].training and not net[1].training


def test_padding_clips_the_field_at_the_border_and_output_index():
    net = _conv_stack([(3, 1, 1)] * 2)
    for conv in net:
        conv.padding = (1, 1)
    mask = receptive_field_by_gradient(net, (1, 8, 10), output_index=(0, -1))
    expected = np.zeros((8, 10), dtype=bool)
    expected[:3, -3:] = True
    assert np.array_equal(mask, expected)
    centre = receptive_field_by_gradient(net, (1, 1, 8, 10))  # (1, C, H, W) is accepted too
    assert np.argwhere(centre).mean(axis=0).tolist() == [4.0, 5.0]


def test_dict_outputs_functions_and_dtypes():
    conv = nn.Conv2d(3, 2, 3, padding=1)
    mask = receptive_field_by_gradient(lambda x: {"out": conv(x.float()), "aux": None}, (3, 7, 7))
    assert mask.dtype == bool and mask.shape == (7, 7) and mask.sum() == 9
    float32 = receptive_field_by_gradient(conv, (3, 7, 7))
    float64 = receptive_field_by_gradient(nn.Conv2d(3, 2, 3, padding=1).double(), (3, 7, 7))
    assert np.array_equal(float32, float64)
    # an output that does not depend on the input
    assert not receptive_field_by_gradient(lambda x: torch.zeros(1, 1, 3, 3), (1, 5, 5)).any()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"forward": "net"}, SegeduTypeError, "forward must be a callable"),
        ({"input_shape": (7, 7)}, SegeduInputError, r"\(C, H, W\) or \(1, C, H, W\)"),
        ({"input_shape": (2, 1, 7, 7)}, SegeduInputError, "one image"),
        ({"input_shape": (1, 0, 7)}, SegeduInputError, r"input_shape\[1\] must be at least 1"),
        ({"output_index": (9, 0)}, SegeduInputError, r"outside the 5×5 output.*0\.\.4"),
        ({"output_index": 3}, SegeduInputError, r"\(row, col\) pair"),
        ({"output_index": (1.5, 0)}, SegeduTypeError, r"output_index\[0\] must be an int"),
        ({"forward": lambda x: x[0]}, SegeduInputError, r"\(1, K, h, w\) tensor.*shape \(1, 7, 7\)"),
        ({"forward": lambda x: {"logits": x}}, SegeduInputError, "without an 'out' entry"),
    ],
)
def test_gradient_bad_input_names_the_fix(kwargs, error, words):
    arguments = {"forward": nn.Conv2d(1, 1, 3).double(), "input_shape": (1, 7, 7), **kwargs}
    with pytest.raises(error, match=words):
        receptive_field_by_gradient(**arguments)
