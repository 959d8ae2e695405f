"""segedu.training beyond cross-entropy: the device it is given, per-pixel weight maps (U-Net's
weighted loss), other losses, and one-channel binary networks.

Peers: ``F.cross_entropy`` with per-class weights (a weight map that is constant per class is the
same loss), the softmax gradient written out by hand, ``torch.optim.Adam`` stepping a copy of the
model, and ``segedu.metrics.confusion_matrix``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from segedu import metrics
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.training import as_dataset, evaluate, set_seed, train_segmentation, weighted_cross_entropy

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class _DeviceSpy(nn.Module):
    """A 1×1 convolution that records the device of every input batch and of its weights when called."""

    def __init__(self, in_channels=3, num_classes=2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append((x.device.type, {p.device.type for p in self.parameters()}))
        return self.conv(x)


def _data(n=6, size=8, seed=0, with_weights=True):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    labels = (images[:, 0] > 0.5).long()
    weights = 0.5 + torch.rand(n, size, size, generator=g) * 4
    return (images, labels, weights) if with_weights else (images, labels)


@pytest.mark.parametrize("device", DEVICES)
def test_every_batch_and_parameter_follows_the_device_given(device):
    set_seed(0)
    model = _DeviceSpy()
    received = []

    def spy_loss(logits, target, weight):
        received.append({t.device.type for t in (logits, target, weight)})
        return weighted_cross_entropy(logits, target, weight)

    history = train_segmentation(model, _data(), val_set=_data(seed=1), epochs=2, batch_size=4, device=device,
                                 progress=False, loss_fn=spy_loss)
    assert len(received) == 4 and all(devices == {device} for devices in received)
    training_calls = model.seen[:2] + model.seen[3:5]  # 2 batches per epoch, then one validation batch
    assert len(model.seen) == 6
    assert all(batch == device and params == {device} for batch, params in model.seen), model.seen
    assert training_calls and all(p.device.type == device for p in model.parameters())
    assert len(history["val_mean_iou"]) == 2
    # evaluate runs where it is told, default: where the parameters are
    model.seen.clear()
    evaluate(model, _data(seed=2))
    assert model.seen == [(device, {device})]


def test_evaluate_moves_the_batches_to_the_device_it_is_given():
    model = _DeviceSpy().to(DEVICES[-1])
    evaluate(model, _data(with_weights=False), device=DEVICES[-1])
    assert model.seen == [(DEVICES[-1], {DEVICES[-1]})]


def test_weighted_cross_entropy_is_class_weighted_cross_entropy_when_the_map_is_constant_per_class():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 5, 7))
    class_weight = torch.tensor([0.5, 2.0, 7.0], dtype=torch.float64)
    weight_map = class_weight[target]
    ours = weighted_cross_entropy(logits, target, weight_map)
    # the peer normalises by the sum of the weights; ours by the number of pixels
    peer = F.cross_entropy(logits, target, weight=class_weight, reduction="sum") / target.numel()
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, peer)
    torch.testing.assert_close(weighted_cross_entropy(logits, target), F.cross_entropy(logits, target))
    # ignored pixels count neither in the sum nor in the number of pixels
    target_ignored = target.clone()
    target_ignored[:, 0] = 255
    counted = (target_ignored != 255).sum()
    peer = F.cross_entropy(logits, target_ignored, weight=class_weight, ignore_index=255, reduction="sum") / counted
    torch.testing.assert_close(weighted_cross_entropy(logits, target_ignored, class_weight[target], 255), peer)


def test_a_weight_map_scales_each_pixels_gradient_as_the_formula_says():
    # dL/dz_k(x) = w(x) (softmax_k(z(x)) - [k = y(x)]) / |Omega|
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 6))
    weight = torch.rand(2, 4, 6, dtype=torch.float64) * 10
    weighted_cross_entropy(logits, target, weight).backward()
    by_hand = weight[:, None] * (logits.detach().softmax(1) - F.one_hot(target, 3).permute(0, 3, 1, 2)) / target.numel()
    torch.testing.assert_close(logits.grad, by_hand)
    # a pixel of weight 0 gets no gradient, and doubling one pixel's weight doubles its gradient only
    grad_before = logits.grad.clone()
    logits.grad = None
    changed = weight.clone()
    changed[0, 1, 2], changed[1, 3, 5] = 0.0, 2 * weight[1, 3, 5]
    weighted_cross_entropy(logits, target, changed).backward()
    assert torch.count_nonzero(logits.grad[0, :, 1, 2]) == 0
    torch.testing.assert_close(logits.grad[1, :, 3, 5], 2 * grad_before[1, :, 3, 5])
    untouched = torch.ones_like(weight, dtype=torch.bool)
    untouched[0, 1, 2] = untouched[1, 3, 5] = False
    torch.testing.assert_close(logits.grad.permute(0, 2, 3, 1)[untouched], grad_before.permute(0, 2, 3, 1)[untouched])


def _adam_steps_by_hand(model, images, labels, weights, lr, steps):
    reference = copy.deepcopy(model)
    optimiser = torch.optim.Adam(reference.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        logits = reference(images)
        per_pixel = -logits.log_softmax(1).gather(1, labels[:, None])[:, 0]
        loss = (weights * per_pixel).sum() / labels.numel()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return reference, losses


def test_training_with_a_weight_map_takes_the_weighted_steps():
    images, labels, weights = _data(n=4)
    set_seed(0)
    model = nn.Conv2d(3, 2, 1)
    # Adam's first step is about lr·sign(gradient), so the weights show from the second step on
    reference, losses = _adam_steps_by_hand(model, images, labels, weights, lr=0.05, steps=3)
    unweighted, _ = _adam_steps_by_hand(model, images, labels, torch.ones_like(weights), lr=0.05, steps=3)
    # one batch holds the whole set, so the shuffled order cannot change the sum
    history = train_segmentation(model, (images, labels, weights), epochs=3, batch_size=4, lr=0.05, device="cpu",
                                 progress=False)
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)
    assert history["train_loss"] == pytest.approx(losses, rel=1e-6)
    assert not all(torch.allclose(a, b) for a, b in zip(model.parameters(), unweighted.parameters()))


class _WeightedItems(Dataset):
    """A Dataset (not arrays) of (image, labels, weight) items, as segedu.data's tile sets give."""

    def __init__(self, images, labels, weights):
        self.items = list(zip(images, labels, weights))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_a_custom_loss_gets_logits_targets_and_weights():
    images, labels, weights = _data(n=4)
    calls = []

    def dice_like(logits, target, weight):
        calls.append((tuple(logits.shape), target.dtype, None if weight is None else tuple(weight.shape)))
        p = logits.softmax(1)[:, 1]
        return 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)

    set_seed(0)
    history = train_segmentation(nn.Conv2d(3, 2, 1), _WeightedItems(images, labels, weights), epochs=2,
                                 batch_size=2, device="cpu", progress=False, loss_fn=dice_like)
    assert calls == [((2, 2, 8, 8), torch.int64, (2, 8, 8))] * 4
    assert all(0 < value < 1 for value in history["train_loss"])
    train_segmentation(nn.Conv2d(3, 2, 1), _data(with_weights=False), epochs=1, batch_size=6, device="cpu",
                       progress=False, loss_fn=dice_like)
    assert calls[-1][2] is None
    with pytest.raises(SegeduTypeError, match="loss_fn must be a function"):
        train_segmentation(nn.Conv2d(3, 2, 1), _data(), loss_fn="dice", progress=False)


def test_one_channel_networks_are_evaluated_with_logit_above_zero():
    images, labels = _data(n=5, with_weights=False)
    model = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        pred = (model(images)[:, 0] > 0).long()
    cm = metrics.confusion_matrix(pred.numpy(), labels.numpy(), 2)
    scores = evaluate(model, TensorDataset(images, labels, torch.ones(5, 8, 8)), batch_size=2)
    assert scores["mean_iou"] == pytest.approx(metrics.mean_iou(cm))
    assert scores["pixel_accuracy"] == pytest.approx(metrics.pixel_accuracy(cm))


def test_weight_map_input_errors_name_the_fix():
    images, labels, weights = _data(n=2)
    with pytest.raises(SegeduInputError, match=r"weight maps have shape \(2, 8, 7\).*one weight per pixel"):
        as_dataset((images, labels, weights[..., :7]))
    with pytest.raises(SegeduTypeError, match="must be floating point.*astype"):
        as_dataset((images, labels, np.ones((2, 8, 8), dtype=np.int64)))
    with pytest.raises(SegeduInputError, match="one weight per pixel of the target"):
        weighted_cross_entropy(torch.zeros(2, 2, 8, 8), labels, weights[:1])
    with pytest.raises(SegeduInputError, match="must be \\(image, labels\\) or \\(image, labels, weight\\)"):
        train_segmentation(nn.Conv2d(3, 2, 1), TensorDataset(images, labels, weights, weights), progress=False,
                           device="cpu")


# --------------------------------------------------------------------------------------------------
# unit 06's recipe helpers (segedu.models.unet_recipes), against scipy.ndimage and torchvision
# --------------------------------------------------------------------------------------------------
def _random_instances(seed, shape=(40, 50), n=25):
    from skimage.segmentation import watershed

    rng = np.random.default_rng(seed)
    markers = np.zeros(shape, dtype=np.int64)
    markers[tuple(rng.integers(0, s, n) for s in shape)] = np.arange(1, n + 1)
    labels = watershed(np.zeros(shape), markers)  # tiles the plane: every instance touches others
    labels[rng.random(shape) < 0.25] = 0  # holes of background
    return labels


def test_separate_touching_carves_exactly_the_contacts_between_instances():
    from scipy import ndimage

    from segedu.models.unet_recipes import separate_touching

    cross = ndimage.generate_binary_structure(2, 1)
    for seed in range(3):
        labels = _random_instances(seed)
        big = int(labels.max()) + 1  # above every id (a huge cval would overflow through float)
        highest = ndimage.maximum_filter(labels, footprint=cross, mode="constant", cval=0)
        lowest = ndimage.minimum_filter(np.where(labels > 0, labels, big), footprint=cross, mode="constant", cval=big)
        contact = (labels > 0) & ((highest > labels) | (lowest < labels))
        expected = np.where(contact, 0, labels)
        np.testing.assert_array_equal(separate_touching(labels), expected)
        assert contact.any()


def test_touching_ids_against_a_dilation_of_each_instance():
    from scipy import ndimage

    from segedu.models.unet_recipes import touching_ids

    labels = _random_instances(4)
    labels[labels % 3 == 0] = 0
    labels = np.pad(labels, ((0, 6), (0, 0)))
    labels[-3:-1, 2:4] = 99  # one instance that stands alone
    expected = [i for i in np.unique(labels)[1:]
                if (np.unique(labels[ndimage.binary_dilation(labels == i, np.ones((3, 3)))]) > 0).sum() > 1]
    np.testing.assert_array_equal(touching_ids(labels), expected)
    assert 0 < len(expected) < len(np.unique(labels)) - 1


def test_shallow_resnet_unet_holds_torchvisions_resnet18_encoder():
    from torchvision.models import resnet18

    from segedu.models.unet import ShallowResNetUNet

    torch.manual_seed(0)
    reference = resnet18(weights=None).eval()
    model = ShallowResNetUNet(num_classes=3, in_channels=3).eval()
    model.load_encoder_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        ours = model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
        theirs = reference.layer2(reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))
        torch.testing.assert_close(ours, theirs)
        assert tuple(model(x).shape) == (2, 3, 32, 40)
    grey = ShallowResNetUNet(num_classes=2, in_channels=1)
    grey.load_encoder_state_dict(reference.state_dict())  # RGB kernels summed, as ResNetUNet does
    torch.testing.assert_close(grey.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    with pytest.raises(SegeduInputError, match="multiples of 8"):
        grey(torch.zeros(1, 1, 30, 32))


def test_a_last_batch_of_one_image_is_dropped_so_image_pooling_batch_norm_trains():
    """5 images in batches of 4 leave one: batch norm of ASPP's 1×1 pooled map cannot train on it."""
    from segedu.models import DeepLab

    set_seed(0)
    model = DeepLab(num_classes=2, base_channels=4, rates=(1, 2, 3), output_stride=16)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]) if module.training else None)
    for n_images, batches in ((5, [4]), (6, [2, 4])):   # a last batch of two is kept
        images = torch.rand(n_images, 3, 64, 64)
        seen.clear()
        train_segmentation(model, (images, (images[:, 0] > 0.5).long()), epochs=1, batch_size=4, device="cpu",
                           progress=False)
        assert sorted(seen) == batches
