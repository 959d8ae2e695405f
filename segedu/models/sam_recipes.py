r"""TinySAM trained for this course (unit 10): the recipe, the one-click evaluation and the shipped checkpoint.

Segment Anything (Kirillov et al. 2023, arXiv:2304.02643) answers one click with three masks
(whole, part, subpart) and ranks them with a predicted IoU. This module trains a
:class:`~segedu.models.sam.tiny_sam.TinySAM` on the nested shapes of :mod:`segedu.data.nested`
(a dot inside a disk inside a square, where a click is genuinely ambiguous), measures it the way
lecture 10 does, and registers the result as the checkpoint ``tinysam_nested_s0`` (``make
checkpoints NAMES=tinysam_nested_s0`` retrains it).

The training (SAM's recipe in miniature)
----------------------------------------
Each step takes ``batch_size`` training images, encodes each image once, and decodes
``clicks_per_image`` single-click prompts per image (as SAM decodes many prompts per image
embedding). A prompt is made as follows:

1. pick a level uniformly among those present in the image (whole, part, subpart), then an object
   of that level uniformly (dots are the fewest objects and the hardest to rank, so balancing the
   levels gives them more clicks), and click uniformly on its
   :func:`~segedu.data.nested.click_region` (inside it, in none of its children, a pixel away from
   every border), so that the object is the *innermost* object under the click;
2. the **target** is one of the objects under the click, the innermost one :math:`o_0` or one of
   its :math:`a` ancestors :math:`o_1, \dots, o_a`, with the prior

   .. math:: P(o_0) = \pi = 0.7, \qquad P(o_j) = \frac{1 - \pi}{a} \quad (1 \le j \le a),

   i.e. 0.7, 0.15, 0.15 under a dot, 0.7, 0.3 on a disk's ring, 1 on a square's own band
   (:func:`target_prior`). **Assumption:** people usually mean the smallest thing they click
   on, and mean something larger in a minority of cases.

   Rather than drawing one target per click, the recipe minimises the *expected* loss under the
   prior exactly, :math:`\sum_j P(o_j)\, L(\text{click}, o_j)` (every object under the click is a
   target, weighted by its prior; :func:`_expected_sam_loss`): the same objective as drawing, without
   its sampling noise (``"expected_loss": False`` in the configuration draws instead). This matters
   for the IoU head: it is trained by a squared error, so it learns the expected IoU
   :math:`\sum_j P(o_j)\,\mathrm{IoU}(\hat m, o_j)` of each mask, and ranks first the mask of the
   most probable level, the innermost object, which the evaluation protocol intends. With drawn
   targets the IoU regression target jumps between levels from one click to the next, and a
   small head trained for minutes learned little more than the average IoU of each output (it
   picked the best mask for under a third of the part and subpart clicks).

   The prior matters twice. The three masks are trained by the minimum over the masks (below),
   so each output specialises in one level as long as every level is a target often enough (which
   output takes which level depends on the seed). The head's
   ranking follows the prior: with a uniform prior it would have no reason to prefer a level, and
   with weights 2:1:1 (0.5, 0.25, 0.25) the expected IoUs of the dot's and the disk's masks
   under a dot click differ by a few hundredths only (the disk's mask also overlaps the dot);
3. images (with their masks and clicks) are flipped and transposed at random (the 8 symmetries of
   the square), which the data do not distinguish.

The loss is :func:`segedu.losses.sam_loss` (20 · focal + 1 · Dice of the best of the three
masks, plus the mean squared error of the predicted IoUs), weighted by the prior; AdamW with a
linear warm-up and a cosine decay of the learning rate (:data:`TINYSAM_NESTED` has the numbers:
2000 steps of 16 images × 4 clicks, about 8 minutes on one thread of a loaded 2-core CPU).

The evaluation
--------------
:func:`one_click_evaluation` places, on held-out images, one click at a random interior point of
each object where that object is the innermost one under it, runs the network with multimask
output, and reports

- ``best_miou``: the mean over clicks of the best of the three masks' IoU with the intended object
  (target 0.8, :data:`TARGETS`);
- ``picked_miou``: the mean IoU of the mask with the highest predicted IoU (target 0.7);
- ``pick_accuracy``: how often that mask is the best of the three;

and the same per level (``best_miou_whole``, ``picked_miou_part``, ...).

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Lin, T.-Y., Goyal, P., Girshick, R., He, K. and Dollár, P. "Focal Loss for Dense Object
       Detection." ICCV 2017. arXiv:1708.02002
.. [3] Milletari, F., Navab, N. and Ahmadi, S.-A. "V-Net." 3DV 2016. arXiv:1606.04797
.. [4] Loshchilov, I. and Hutter, F. "Decoupled Weight Decay Regularization." ICLR 2019.
       arXiv:1711.05101

Examples
--------
>>> from segedu.models.checkpoint import checkpoint_names, get_spec
>>> print(checkpoint_names("10"))
['tinysam_nested_s0']
>>> spec = get_spec("tinysam_nested_s0")
>>> spec.metric, spec.target, spec.data["val"]["seed"]
('best_miou', 0.8, 100)
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._validation import SegeduInputError, SegeduTypeError, check_positive_int, check_seed
from .checkpoint import CheckpointSpec, _resolve, make_data, register

__all__ = [
    "TINYSAM_NESTED",
    "TARGETS",
    "tinysam_data_description",
    "architecture_10",
    "target_prior",
    "ClickSampler",
    "train_tiny_sam",
    "one_click_evaluation",
    "print_one_click",
    "evaluate_tiny_sam_checkpoint",
    "click_masks",
]

#: The network, the data and the training of the shipped TinySAM.
TINYSAM_NESTED = {
    "model": {"image_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "prompt_dim": 64,
              "decoder_depth": 2, "decoder_mlp_dim": 256, "decoder_heads": 4},
    "size": 64,
    "n_train": 3000,
    "n_val": 40,
    "iterations": 2000,
    "batch_size": 16,
    "clicks_per_image": 4,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "warmup": 50,
    "margin": 1,
    "innermost_prior": 0.7,
    "expected_loss": True,
    "balance_levels": True,
}
#: The quality the lecture promises, per metric of :func:`one_click_evaluation`.
TARGETS = {"best_miou": 0.8, "picked_miou": 0.7}
#: Seeds of the shipped checkpoints (training images seed ``s``, held-out images ``100 + s``).
TINYSAM_SEEDS = (0,)
#: The seed of the evaluation's clicks (the same clicks for every network).
CLICK_SEED = 0

_LEVEL_NAMES = ("whole", "part", "subpart")


def tinysam_data_description(seed: int, config: dict | None = None) -> dict:
    """The data description of the checkpoint of ``seed`` (training images seed ``s``, held-out ``100 + s``)."""
    c = TINYSAM_NESTED if config is None else {**TINYSAM_NESTED, **config}
    return {
        "function": "segedu.data.nested:nested_shapes",
        "train": {"n_images": c["n_train"], "seed": seed, "size": c["size"]},
        "val": {"n_images": c["n_val"], "seed": 100 + seed, "size": c["size"]},
    }


def architecture_10(config: dict | None = None) -> dict:
    """The ``{"builder", "kwargs"}`` of the shipped TinySAM."""
    c = TINYSAM_NESTED if config is None else {**TINYSAM_NESTED, **config}
    return {"builder": c.get("builder", "segedu.models.sam.tiny_sam:TinySAM"), "kwargs": dict(c["model"])}


def target_prior(depth: int, innermost: float = 0.7) -> np.ndarray:
    r"""The training prior over the objects under a click, innermost first.

    The innermost object gets probability ``innermost`` and the ``depth - 1`` objects around it
    share the rest equally; with one object under the click it gets probability 1.

    >>> target_prior(3).round(3).tolist(), target_prior(2).round(3).tolist(), target_prior(1).tolist()
    ([0.7, 0.15, 0.15], [0.7, 0.3], [1.0])
    >>> target_prior(3, innermost=0.5).tolist()
    [0.5, 0.25, 0.25]
    """
    depth = check_positive_int(depth, "depth", minimum=1)
    if isinstance(innermost, bool) or not isinstance(innermost, (int, float)) or not 0 < innermost <= 1:
        raise SegeduInputError(f"innermost is a probability in (0, 1], but got {innermost!r}.")
    if depth == 1:
        return np.ones(1)
    return np.array([innermost] + [(1 - innermost) / (depth - 1)] * (depth - 1))


class ClickSampler:
    """Training prompts for nested shapes: a click that means one object, and a target drawn from those under it.

    The click regions of every object are computed once (:func:`segedu.data.nested.click_region`),
    so that drawing a prompt costs a few random numbers.

    Parameters
    ----------
    objects : list of NestedObjects
        The objects of every training image.
    margin : int
        Pixels kept from every border by the clicks.
    innermost : float
        The probability that the target is the innermost object under the click (see :func:`target_prior`).
    balance_levels : bool
        Choose the clicked object's level uniformly first (see :meth:`click`).

    Examples
    --------
    >>> from segedu.data.nested import nested_shapes, innermost_object
    >>> _, objects = nested_shapes(2, seed=0)
    >>> sampler = ClickSampler(objects)
    >>> rng = np.random.default_rng(0)
    >>> index, (x, y), target = sampler.draw(1, rng)
    >>> innermost_object(objects[1], x, y) == index and target in objects[1].ancestors(index)
    True
    """

    def __init__(self, objects, margin: int = 1, innermost: float = 0.7, balance_levels: bool = False):
        from ..data.nested import click_region

        self.objects = list(objects)
        self.balance_levels = bool(balance_levels)
        self.innermost = innermost
        self.priors = {depth: target_prior(depth, innermost) for depth in (1, 2, 3)}
        self.regions = [[np.flatnonzero(click_region(o, k, margin)) for k in range(len(o))] for o in self.objects]
        self.chains = [[o.ancestors(k) for k in range(len(o))] for o in self.objects]

    def click(self, image: int, rng: np.random.Generator):
        """``(intended object, (x, y))``: an object of image ``image`` and a uniform click on its region.

        The object is uniform over the image's objects, or, with ``balance_levels``, a uniform level
        of those present and then a uniform object of that level (dots are the fewest objects and
        the hardest to rank, so balancing gives them more clicks).
        """
        if self.balance_levels:
            levels = self.objects[image].levels
            level = rng.choice(np.unique(levels))
            index = int(rng.choice(np.flatnonzero(levels == level)))
        else:
            index = int(rng.integers(len(self.regions[image])))
        flat = int(self.regions[image][index][rng.integers(len(self.regions[image][index]))])
        size = self.objects[image].masks.shape[-1]
        return index, (flat % size, flat // size)

    def prior(self, image: int, index: int):
        """``(objects under a click meaning object index, innermost first; their prior probabilities)``."""
        chain = self.chains[image][index]
        if len(chain) not in self.priors:
            self.priors[len(chain)] = target_prior(len(chain), self.innermost)
        return chain, self.priors[len(chain)]

    def draw(self, image: int, rng: np.random.Generator):
        """``(intended object, (x, y), target object)`` on image ``image``, the target drawn from the prior."""
        index, point = self.click(image, rng)
        chain, prior = self.prior(image, index)
        return index, point, chain[int(rng.choice(len(chain), p=prior))]


def _dihedral(array: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes.

    Transpose if bit 0 of ``code`` is set, then flip the rows if bit 1, the columns if bit 2.
    """
    if code & 1:
        array = np.swapaxes(array, -1, -2)
    if code & 2:
        array = array[..., ::-1, :]
    if code & 4:
        array = array[..., :, ::-1]
    return array


def _dihedral_point(x: int, y: int, size: int, code: int) -> tuple[int, int]:
    if code & 1:
        x, y = y, x
    if code & 2:
        y = size - 1 - y
    if code & 4:
        x = size - 1 - x
    return x, y


def _make_batch(images, objects, sampler, chosen, clicks_per_image, rng, augment=True, expected=True):
    """One training batch: images, clicks, and the targets of each click with their weights.

    Returns images ``(B, 3, S, S)``, clicks ``(P, 1, 2)`` (x, y) with ``P = B·k`` (the ``k``
    prompts of an image are consecutive), targets ``(R, S, S)``, ``rows`` ``(R,)`` (the prompt of
    each target) and ``weights`` ``(R,)``. With ``expected``, every object under a click is a
    target, weighted by its prior (the expected loss, :func:`_expected_sam_loss`); otherwise one
    target per click is drawn from the prior, with weight 1.
    """
    size = images.shape[-1]
    batch_images = np.empty((len(chosen), 3, size, size), dtype=np.float32)
    coords = np.empty((len(chosen) * clicks_per_image, 1, 2), dtype=np.float32)
    targets, rows, weights = [], [], []
    prompt = 0
    for slot, image in enumerate(chosen):
        image = int(image)
        code = int(rng.integers(8)) if augment else 0
        batch_images[slot] = _dihedral(images[image], code)
        for _ in range(clicks_per_image):
            index, (x, y) = sampler.click(image, rng)
            coords[prompt, 0] = _dihedral_point(x, y, size, code)
            chain, prior = sampler.prior(image, index)
            if expected:
                pairs = zip(chain, prior)
            else:
                pairs = [(chain[int(rng.choice(len(chain), p=prior))], 1.0)]
            for target, weight in pairs:
                targets.append(_dihedral(objects[image].masks[target], code))
                rows.append(prompt)
                weights.append(weight)
            prompt += 1
    return (batch_images, coords, np.asarray(targets, dtype=np.float32), np.asarray(rows, dtype=np.int64),
            np.asarray(weights, dtype=np.float32))


def _expected_sam_loss(mask_logits, iou_pred, targets, rows, weights):
    r"""The prior-weighted :func:`segedu.losses.sam_loss`.

    :math:`\frac{1}{P}\sum_r w_r L(\text{prompt}_r, \text{target}_r)` over the target rows :math:`r`.

    ``sam_loss`` averages over its batch, so the rows are grouped by weight (a handful of distinct
    priors) and each group's mean is scaled by its total weight. With one target of weight 1 per
    prompt this is ``sam_loss`` itself.
    """
    import torch

    from ..losses import sam_loss

    prompts = mask_logits.shape[0]
    total = mask_logits.new_zeros(())
    for weight in torch.unique(weights):
        group = torch.nonzero(weights == weight).flatten()
        chosen = rows[group]
        loss = sam_loss(mask_logits[chosen], iou_pred[chosen], targets[group])
        total = total + loss * (float(weight) * len(group) / prompts)
    return total


def train_tiny_sam(seed: int = 0, device=None, progress: bool = False, config: dict | None = None, model=None,
                   train=None, val=None):
    """The recipe of ``tinysam_nested_s*``: build TinySAM after ``set_seed(seed)`` and train it on nested shapes.

    See the module docstring for the prompts, the target prior and the loss. Prints the loss
    reached and the one-click quality on the held-out images against :data:`TARGETS`.

    Parameters
    ----------
    seed : int
        Seeds the network's initial weights, the training images (``nested_shapes(..., seed=seed)``)
        and the prompts.
    device : str or torch.device, optional
        Where to train; by default :func:`segedu.training.pick_device` (CUDA when present).
    progress : bool
        Show a tqdm bar.
    config : dict, optional
        Entries that replace those of :data:`TINYSAM_NESTED` (e.g. ``{"iterations": 20}``; a
        ``"model"`` entry replaces the whole network configuration).
    model : torch.nn.Module, optional
        Continue training this network instead of building a new one (fine-tuning).
    train, val : (images, objects), optional
        The training and held-out data when the caller already generated them.

    Returns
    -------
    torch.nn.Module
        The trained network, in ``eval()`` mode, on ``device``.

    Examples
    --------
    Two steps on four images (the shipped network takes 2000 steps on 3000 images):

    >>> model = train_tiny_sam(seed=0, device="cpu", config={"iterations": 2, "n_train": 4, "n_val": 2,
    ...                                                      "batch_size": 2})  # doctest: +ELLIPSIS
    TinySAM trained for 2 steps in ... s on cpu; final loss ...
    one-click evaluation on ... clicks (intended object: the innermost under the click)
    ...
    >>> type(model).__name__, model.training
    ('TinySAM', False)
    """
    import torch

    from ..training import pick_device, set_seed

    seed = check_seed(seed, allow_none=False)
    if config is not None and not isinstance(config, dict):
        raise SegeduTypeError(f"config must be a dict of entries of TINYSAM_NESTED, but got {type(config).__name__}.")
    unknown = sorted(set(config or {}) - set(TINYSAM_NESTED) - {"builder"})
    if unknown:
        raise SegeduInputError(f"Unknown config entries {unknown}; the entries are {sorted(TINYSAM_NESTED)}.")
    c = {**TINYSAM_NESTED, **(config or {})}
    for key in ("iterations", "batch_size", "clicks_per_image", "n_train", "n_val"):
        check_positive_int(c[key], f"config[{key!r}]")
    device = pick_device() if device is None else torch.device(device)
    description = tinysam_data_description(seed, c)
    images, objects = make_data(description, "train") if train is None else train
    if c["batch_size"] > len(images):
        raise SegeduInputError(f"config['batch_size']={c['batch_size']} is more than the {len(images)} training "
                               f"images; lower it or raise config['n_train'].")
    sampler = ClickSampler(objects, margin=c["margin"], innermost=c["innermost_prior"],
                           balance_levels=c["balance_levels"])
    if model is None:
        set_seed(seed)
        model = _resolve(architecture_10(c)["builder"])(**c["model"])
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
    iterations, warmup = c["iterations"], c["warmup"]

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, iterations - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 10]))
    k = c["clicks_per_image"]
    labels = torch.ones(c["batch_size"] * k, 1, dtype=torch.int64, device=device)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc="training TinySAM", unit="batch")
    running = None
    start = time.perf_counter()
    for _ in range(iterations):
        chosen = rng.choice(len(images), size=c["batch_size"], replace=False)
        batch, coords, targets, rows, weights = (torch.from_numpy(a).to(device) for a in _make_batch(
            images, objects, sampler, chosen, k, rng, expected=c["expected_loss"]))
        # one embedding per image, shared by its k consecutive prompts (the decoder copies it per prompt)
        mask_logits, iou_pred = model.decode(model.embed(batch), point_coords=coords, point_labels=labels,
                                             multimask_output=True)
        loss = _expected_sam_loss(mask_logits, iou_pred, targets, rows, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    seconds = time.perf_counter() - start
    val_images, val_objects = make_data(description, "val") if val is None else val
    scores = one_click_evaluation(model, val_images, val_objects, device=device)
    print(f"TinySAM trained for {iterations} steps in {seconds:.0f} s on {device}; final loss {running:.3f}",
          flush=True)
    print_one_click(scores)
    return model


# ----------------------------------------------------------------------------------- evaluation


def _check_images_objects(images, objects):
    from ..data.nested import NestedObjects

    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1] != 3:
        shape = getattr(images, "shape", None)
        raise SegeduInputError(
            f"images must be an (N, 3, S, S) array of RGB images in [0, 1] (as nested_shapes returns), but got "
            f"{type(images).__name__} of shape {shape}. Move a channels-last stack with images.transpose(0, 3, 1, 2)."
        )
    if not isinstance(objects, (list, tuple)) or len(objects) != len(images) or not all(
            isinstance(o, NestedObjects) for o in objects):
        raise SegeduTypeError(
            f"objects must be a list of NestedObjects, one per image ({len(images)}), as nested_shapes returns it, "
            f"but got {type(objects).__name__}"
            f"{f' of length {len(objects)}' if isinstance(objects, (list, tuple)) else ''}."
        )
    return images, list(objects)


def _iou(masks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each of the ``(M, H, W)`` boolean masks with ``target`` (H, W); two empty masks have IoU 1."""
    inter = np.logical_and(masks, target).sum(axis=(-2, -1))
    union = np.logical_or(masks, target).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def one_click_evaluation(model, images=None, objects=None, n_images: int = 40, seed: int = 100, size: int = 64,
                         device=None, click_seed: int = CLICK_SEED, margin: int = 1, batch_size: int = 128,
                         verbose: bool = False) -> dict:
    r"""One click per object on held-out images; the quality of the three masks and of the IoU head's pick.

    For every object of every image, one click is placed uniformly at random on the object's
    :func:`~segedu.data.nested.click_region` (an interior point of the object that lies in none of
    its children), so the intended object is the innermost object under the click. The network
    answers with three masks (logits :math:`> 0`) and their predicted IoUs. With
    :math:`\mathrm{IoU}_{c,m}` the IoU of mask :math:`m` of click :math:`c` with the intended
    object (two empty masks have IoU 1),

    .. math::

        \text{best\_miou} = \frac{1}{C}\sum_c \max_m \mathrm{IoU}_{c,m}, \qquad
        \text{picked\_miou} = \frac{1}{C}\sum_c \mathrm{IoU}_{c,\hat m_c}, \qquad
        \hat m_c = \arg\max_m \widehat{\mathrm{IoU}}_{c,m},

    and ``pick_accuracy`` is the fraction of clicks where :math:`\hat m_c` reaches the best IoU.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(images, point_coords=(B, 1, 2), point_labels=(B, 1), multimask_output=True)``
        and returning ``(mask_logits (B, 3, S, S), iou_pred (B, 3))``, as TinySAM.
    images, objects : optional
        The held-out images ``(N, 3, S, S)`` and their objects, as :func:`segedu.data.nested.nested_shapes`
        returns them; by default ``nested_shapes(n_images, size, seed)``.
    n_images, seed, size : int
        The held-out images when ``images`` is not given (seed 100: never seen in training).
    device : str or torch.device, optional
        Where to run the network; by default the device of its parameters.
    click_seed : int
        Seeds the clicks (click ``k`` of image ``i`` uses ``SeedSequence([click_seed, i])``), so
        every network is measured on the same clicks.
    margin : int
        Pixels kept from every border by the clicks.
    batch_size : int
        Prompts per forward pass.
    verbose : bool
        Print the results against :data:`TARGETS` (see :func:`print_one_click`).

    Returns
    -------
    dict
        ``best_miou``, ``picked_miou``, ``pick_accuracy``, ``n_clicks``, and for each level
        ``L`` in ``whole``, ``part``, ``subpart``: ``best_miou_L``, ``picked_miou_L``,
        ``pick_accuracy_L`` and ``n_clicks_L``. All values are Python floats.

    Examples
    --------
    A stand-in that answers every click with the true mask of the innermost object as its first
    mask scores 1:

    >>> import torch
    >>> from segedu.data.nested import nested_shapes, innermost_object
    >>> images, objects = nested_shapes(4, seed=100)
    >>> class Oracle(torch.nn.Module):
    ...     def forward(self, x, point_coords, point_labels, multimask_output=True):
    ...         masks = torch.zeros(len(x), 3, 64, 64)
    ...         for row, (image, (cx, cy)) in enumerate(zip(x, point_coords[:, 0].tolist())):
    ...             i = next(i for i in range(len(images)) if torch.equal(image, torch.from_numpy(images[i])))
    ...             masks[row, 0] = torch.from_numpy(objects[i].masks[innermost_object(objects[i], cx, cy)]) * 2 - 1
    ...         return masks, torch.tensor([[1.0, 0.0, 0.0]]).expand(len(x), 3)
    >>> scores = one_click_evaluation(Oracle(), images, objects, device="cpu")
    >>> scores["best_miou"], scores["picked_miou"], scores["pick_accuracy"]
    (1.0, 1.0, 1.0)
    """
    import torch

    from ..data.nested import nested_shapes, sample_click

    if images is None and objects is None:
        images, objects = nested_shapes(n_images, size=size, seed=seed)
    elif images is None or objects is None:
        raise SegeduInputError("Pass both images and objects (as nested_shapes returns them), or neither.")
    images, objects = _check_images_objects(images, objects)
    click_seed = check_seed(click_seed, "click_seed", allow_none=False)
    batch_size = check_positive_int(batch_size, "batch_size")
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    if device is None:
        device = parameter.device if parameter is not None else torch.device("cpu")
    device = torch.device(device)

    image_index, coords, levels, intended = [], [], [], []
    for i, image_objects in enumerate(objects):
        rng = np.random.default_rng(np.random.SeedSequence([click_seed, i]))
        for k in range(len(image_objects)):
            image_index.append(i)
            coords.append(sample_click(image_objects, k, rng=rng, margin=margin))
            levels.append(int(image_objects.levels[k]))
            intended.append(image_objects.masks[k])
    coords_array = np.asarray(coords, dtype=np.float32)[:, None, :]
    best, picked, hit = [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(image_index), batch_size):
                rows = slice(start, start + batch_size)
                batch = torch.from_numpy(images[np.asarray(image_index[rows])]).to(device, dtype)
                points = torch.from_numpy(coords_array[rows]).to(device, dtype)
                labels = torch.ones(points.shape[:2], dtype=torch.int64, device=device)
                mask_logits, iou_pred = model(batch, point_coords=points, point_labels=labels, multimask_output=True)
                masks = (mask_logits > 0).cpu().numpy()
                scores = iou_pred.float().cpu().numpy()
                for row, target in enumerate(intended[rows]):
                    ious = _iou(masks[row], target)
                    choice = int(np.argmax(scores[row]))
                    best.append(ious.max())
                    picked.append(ious[choice])
                    hit.append(ious[choice] >= ious.max())
    finally:
        model.train(was_training)
    best, picked, hit, levels = map(np.asarray, (best, picked, hit, levels))
    result = {"best_miou": float(best.mean()), "picked_miou": float(picked.mean()),
              "pick_accuracy": float(hit.mean()), "n_clicks": float(len(best))}
    for level, name in enumerate(_LEVEL_NAMES):
        chosen = levels == level
        if chosen.any():
            result[f"best_miou_{name}"] = float(best[chosen].mean())
            result[f"picked_miou_{name}"] = float(picked[chosen].mean())
            result[f"pick_accuracy_{name}"] = float(hit[chosen].mean())
        result[f"n_clicks_{name}"] = float(chosen.sum())
    if verbose:
        print_one_click(result)
    return result


def print_one_click(scores: dict) -> None:
    """Print the results of :func:`one_click_evaluation` against :data:`TARGETS`, overall and per level."""
    print(f"one-click evaluation on {int(scores['n_clicks'])} clicks (intended object: the innermost under the click)")
    for key, label in (("best_miou", "mIoU, best of the 3 masks"), ("picked_miou", "mIoU, mask the IoU head picks"),
                       ("pick_accuracy", "the head picks the best mask")):
        target = TARGETS.get(key)
        verdict = "" if target is None else f"  (target >= {target}: {'met' if scores[key] >= target else 'MISSED'})"
        print(f"  {label:<32} {scores[key]:.3f}{verdict}")
    for name in _LEVEL_NAMES:
        if f"best_miou_{name}" in scores:
            print(f"  {name:<8} ({int(scores[f'n_clicks_{name}']):3d} clicks): best {scores[f'best_miou_{name}']:.3f}, "
                  f"picked {scores[f'picked_miou_{name}']:.3f}, pick accuracy {scores[f'pick_accuracy_{name}']:.3f}")


def evaluate_tiny_sam_checkpoint(model, spec) -> dict:
    """The evaluator of ``tinysam_nested_s*``: :func:`one_click_evaluation` on the held-out images, on the CPU."""
    images, objects = make_data(spec.data, "val")
    return one_click_evaluation(model, images, objects, device="cpu")


def click_masks(model, image, point_xy, device=None):
    """The three masks and their predicted IoUs for one click on one image (the lecture's click demo).

    Parameters
    ----------
    model : TinySAM
        The network.
    image : numpy.ndarray or torch.Tensor, shape (3, S, S) or (S, S, 3)
        RGB in ``[0, 1]``.
    point_xy : (float, float)
        The click in pixels: ``x`` the column, ``y`` the row.
    device : optional
        Where to run; by default the device of the model's parameters.

    Returns
    -------
    masks : numpy.ndarray, bool, shape (3, S, S)
    predicted_iou : numpy.ndarray, float32, shape (3,)

    Examples
    --------
    >>> from segedu.models.checkpoint import load_checkpoint
    >>> from segedu.data.nested import nested_sample
    >>> model, _ = load_checkpoint("tinysam_nested_s0")
    >>> image, objects = nested_sample(seed=7)
    >>> masks, predicted_iou = click_masks(model, image, (32, 32))
    >>> masks.shape, masks.dtype, predicted_iou.shape
    ((3, 64, 64), dtype('bool'), (3,))
    """
    import torch

    tensor = torch.as_tensor(np.asarray(image.detach().cpu() if hasattr(image, "detach") else image))
    if tensor.ndim == 3 and tensor.shape[0] != 3 and tensor.shape[-1] == 3:
        tensor = tensor.permute(2, 0, 1)
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise SegeduInputError(
            f"image must be one RGB image, (3, S, S) or (S, S, 3), but got shape {tuple(tensor.shape)}. "
            f"Take one image of a batch with images[i]."
        )
    if not tensor.is_floating_point() or float(tensor.min()) < 0 or float(tensor.max()) > 1:
        raise SegeduInputError(
            f"image must hold floats in [0, 1], but got dtype {tensor.dtype} with values in "
            f"[{float(tensor.min())}, {float(tensor.max())}]. Convert a uint8 image with image / 255."
        )
    if len(point_xy) != 2:
        raise SegeduInputError(f"point_xy must be one click (x, y) in pixels, but got {point_xy!r}.")
    parameter = next(model.parameters())
    device = parameter.device if device is None else torch.device(device)
    points = torch.tensor([[list(map(float, point_xy))]], dtype=parameter.dtype, device=device)
    labels = torch.ones(1, 1, dtype=torch.int64, device=device)
    with torch.no_grad():  # the image in the network's dtype, on its device
        mask_logits, iou_pred = model(tensor[None].to(device, parameter.dtype), point_coords=points,
                                      point_labels=labels, multimask_output=True)
    return (mask_logits[0] > 0).cpu().numpy(), iou_pred[0].float().cpu().numpy()


for _seed in TINYSAM_SEEDS:
    register(CheckpointSpec(
        name=f"tinysam_nested_s{_seed}",
        unit="10",
        description=f"TinySAM (ViT 64×64, patch {TINYSAM_NESTED['model']['patch_size']}, "
                    f"{TINYSAM_NESTED['model']['depth']} blocks) trained on {TINYSAM_NESTED['n_train']} synthetic "
                    f"nested-shapes images with one-click prompts, seed {_seed}",
        recipe="segedu.models.sam_recipes:train_tiny_sam",
        seed=_seed,
        # the shipped weights are trained on the CPU, as the provenance records, wherever they are retrained
        options={"device": "cpu"},
        data=tinysam_data_description(_seed),
        architecture=architecture_10(),
        metric="best_miou",
        target=TARGETS["best_miou"],
        evaluator="segedu.models.sam_recipes:evaluate_tiny_sam_checkpoint",
    ))
del _seed
