"""The graded functions of every exercise: their references, comparators and what answers may call.

Each exercise notebook states in its introduction what its answers may call; ``allowed`` repeats
that statement in the message a delegating answer gets. ``forbidden`` lists module prefixes whose
code must not run while the student's function runs: the segedu reference and the library peer that
the exercise re-implements.

A graded function is identified by the pair ``(assignment, function)``, never by its name alone:
several units grade a function of the same name (a ``dice_loss`` in two units is expected), and
each must keep its own reference. :func:`registry` builds :data:`EXERCISES` and refuses a repeated
assignment or a function graded twice in one assignment, because a dict literal would silently keep
only the last entry. :func:`graded_function` is the one lookup by that pair.

Prefer a reference the exercise can call directly (``"segedu.models.fcn:fuse_skips"``). An adapter
here is for when the exercise's signature differs from the library function's; it must then say in
``delegates_to`` which function it wraps, so that the similarity check
(:mod:`segedu.instructor.similarity`) compares answers with the code students could copy, and the
registry test can prove that the wrapped function is forbidden too.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GradedFunction:
    """How one graded function is checked.

    ``reference`` and ``delegates_to`` are ``"module:function"`` strings, resolved when a check
    runs, so importing the registry stays cheap (no torch, no pycocotools) for the notebooks that
    do not need them.
    """

    reference: str                 # "module:function"
    compare: str | tuple = "close"  # a comparator in segedu.grading._compare, or one per output
    options: dict = field(default_factory=dict)
    extra: str | None = None       # "module:function" computing more comparator options from the arguments
    outputs: tuple | None = None   # names of the outputs of a function that returns a tuple
    delegates_to: str | None = None  # "module:function" that an adapter ``reference`` wraps


@dataclass(frozen=True)
class ExerciseSpec:
    """One graded notebook: its graded functions by name, and what their answers may not call.

    ``functions`` may be given as ``(name, GradedFunction)`` pairs, which is how the registry below
    writes it: a name given twice is then an error rather than an entry silently lost. It is stored
    as a plain dict either way.
    """

    assignment: str
    functions: dict
    forbidden: tuple
    allowed: str
    # Top-level packages that a sandboxed grading kernel must keep importable although a forbidden
    # prefix lies inside them: 07 forbids torch's C++ unpooling kernels, not torch. Every other
    # forbidden prefix's top-level package is hidden from the kernel (segedu.instructor.grade).
    importable: tuple = ()
    # Patterns of torch operators (regular expressions matched against ``namespace::name``, e.g.
    # ``aten::max_unpool.*``) that a sandboxed grading kernel switches off, every overload, before any
    # student code runs (segedu/grading/kernel/segedu_kernel_guard.py): the peer inside an importable
    # package, which the tripwire alone cannot keep from a student who patches their own process or
    # calls a C++ operator handle. ``blocked_functions`` (``"module:name"``) are replaced the same way.
    blocked_operators: tuple = ()
    blocked_functions: tuple = ()

    def __post_init__(self):
        pairs = list(self.functions.items()) if isinstance(self.functions, dict) else list(self.functions)
        functions: dict[str, GradedFunction] = {}
        for name, graded in pairs:
            if name in functions:
                raise ValueError(f"{self.assignment} grades {name!r} twice; one entry per (assignment, function).")
            if not isinstance(graded, GradedFunction):
                raise TypeError(f"{self.assignment}:{name} must be a GradedFunction, not {type(graded).__name__}.")
            functions[name] = graded
        object.__setattr__(self, "functions", functions)


def registry(*specs: ExerciseSpec) -> dict[str, ExerciseSpec]:
    """``{assignment: spec}``, refusing an assignment given twice (a later one would replace it)."""
    found: dict[str, ExerciseSpec] = {}
    for spec in specs:
        if spec.assignment in found:
            raise ValueError(f"The exercise {spec.assignment!r} is registered twice.")
        found[spec.assignment] = spec
    return found


def graded_function(assignment: str, function: str, exercises: dict | None = None) -> GradedFunction:
    """The entry of ``(assignment, function)``; a clear ``KeyError`` names what is missing."""
    exercises = EXERCISES if exercises is None else exercises
    spec = exercises.get(assignment)
    if spec is None:
        known = ", ".join(sorted(exercises))
        raise KeyError(f"No graded exercise is called {assignment!r}. Known exercises: {known}.")
    graded = spec.functions.get(function)
    if graded is None:
        raise KeyError(f"{assignment} grades no function called {function!r}.")
    return graded


def _metrics(name: str, compare: str = "close") -> GradedFunction:
    return GradedFunction(reference=f"segedu.metrics:{name}", compare=compare)


def otsu_tolerance(img, nbins=256):
    """Otsu answers must pick the same bin: allow 1 % of a bin width, far below the half-bin slip."""
    import numpy as np

    values = np.asarray(img, dtype=np.float64)
    bin_width = (values.max() - values.min()) / nbins
    return {"atol": 0.01 * bin_width, "rtol": 0.0}


def adaptive_ties(img, block_size, offset=0, method="mean"):
    """Pixels within rounding distance of the local threshold may go either way."""
    import numpy as np

    from segedu.classical import local_threshold_surface

    values = np.asarray(img, dtype=np.float64)
    surface = local_threshold_surface(values, block_size, offset=offset, method=method)
    scale = max(1.0, float(np.abs(values).max()))
    return {"tie_mask": np.abs(values - surface) <= 1e-6 * scale}


def kmeans_from_init(img, k, init, max_iter=100):
    """The k-means reference as the exercise asks for it: start from ``init``, stop when no label changes.

    An adapter because the library function also takes a tolerance, which the exercise fixes at 0.
    """
    from segedu.classical import kmeans_segment

    return kmeans_segment(img, k, init=init, max_iter=max_iter, tol=0.0)


def single_channel_conv_transpose2d(x, kernel, stride=1, padding=0, output_padding=0):
    """The exercise's single-channel ``conv_transpose2d`` (H×W in, numpy out) via ``segedu.conv``.

    An adapter because ``segedu.conv`` works on (N, C, H, W) batches, the exercise on one image.
    """
    import numpy as np

    from segedu.conv import conv_transpose2d

    x = np.asarray(x, dtype=np.float64)[None, None]
    kernel = np.asarray(kernel, dtype=np.float64)[None, None]
    return conv_transpose2d(x, kernel, stride=stride, padding=padding, output_padding=output_padding)[0, 0]


STRIDE2_INPUT = ((1.0, -1.0), (2.0, 3.0))
STRIDE2_KERNEL = ((1.0, 0.0, 2.0), (0.0, 1.0, 0.0), (3.0, 0.0, 1.0))


def stride2_example():
    """The hand-worked example of exercise 04: STRIDE2_INPUT ⋆ᵀ STRIDE2_KERNEL, stride 2, no padding."""
    return single_channel_conv_transpose2d(STRIDE2_INPUT, STRIDE2_KERNEL, stride=2)


def linear_weight_as_conv(weight, in_channels, height, width):
    """Exercise 05: the kernel of ``segedu.models.linear_to_conv`` for a Linear layer with ``weight``.

    An adapter because the library converts a layer, the exercise only its weight tensor.
    """
    import torch
    from torch import nn

    from segedu.models.fcn import linear_to_conv

    weight = torch.as_tensor(weight)
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
    return linear_to_conv(linear, in_channels, (height, width)).weight.detach()


def segnet_decoder_stage(x, indices, output_size, convs, norms):
    """Exercise 07's decoder stage via ``segedu.models.segnet.decoder_stage``.

    An adapter because the library's stage takes its layers as one callable, while the exercise
    gets them as data a grading run can pass: the ``nn.Conv2d`` layers and, for the batch norm
    after each (in inference mode, eps 1e-5), its four tensors. They are put back together here as
    (conv, BatchNorm2d, ReLU) blocks.
    """
    import torch
    from torch import nn

    from segedu.models.segnet import decoder_stage

    if len(convs) != len(norms):
        raise ValueError(f"one batch norm per convolution: {len(convs)} convs but {len(norms)} norms.")
    layers = []
    for conv, norm in zip(convs, norms):
        batch_norm = nn.BatchNorm2d(conv.out_channels, eps=1e-5)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(batch_norm, name).copy_(torch.as_tensor(norm[name]))
        layers += [conv, batch_norm.eval(), nn.ReLU()]
    with torch.no_grad():
        return decoder_stage(x, indices, output_size, nn.Sequential(*layers))


def aspp_block(x, params, rates):
    """Exercise 08's functional ASPP via ``segedu.models.deeplab.ASPP`` in inference mode.

    An adapter because the library's ASPP is a module that owns its layers, while the exercise gets
    them as data a grading run can pass: for each convolution (no bias) its weight and, for the batch
    norm after it (eps 1e-5), its four tensors. They are loaded into an ``ASPP`` with torchvision's
    child names (``convs``, ``project``), which runs in eval mode (running statistics, no dropout).
    Its warning about a rate at least the map's size is for people building a network, not for a
    grading run, so it is silenced here.
    """
    import warnings

    import torch

    from segedu.models.deeplab import ASPP

    rates = tuple(rates)
    if len(params["atrous"]) != len(rates):
        raise ValueError(f"one atrous layer per rate: {len(params['atrous'])} layers but rates={rates}.")
    out_channels = params["conv1x1"]["weight"].shape[0]
    block = ASPP(x.shape[1], out_channels, rates=rates).to(dtype=x.dtype)
    n = len(rates)
    layers = [("convs.0.0", "convs.0.1", params["conv1x1"])]
    layers += [(f"convs.{k + 1}.0", f"convs.{k + 1}.1", layer) for k, layer in enumerate(params["atrous"])]
    layers += [(f"convs.{n + 1}.1", f"convs.{n + 1}.2", params["pooling"]), ("project.0", "project.1", params["project"])]
    state = block.state_dict()
    for conv, norm, layer in layers:
        state[f"{conv}.weight"] = torch.as_tensor(layer["weight"])
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{norm}.{name}"] = torch.as_tensor(layer["bn"][name])
    block.load_state_dict(state, strict=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return block.eval()(x)


# Exercise 08 forbids every route to a convolution in torch, not torch: the ATen kernels below are what
# F.conv2d, torch.conv2d, nn.Conv2d, the transpose convolutions and torch.convolution call (their C
# builtins report __module__ "torch"), F.unfold / nn.Unfold end in torch._C._nn.im2col (im2col solves the
# exercise with dilation=d), F.fold in col2im, and torch.ops.aten.* (and torchvision's deform_conv2d)
# go through torch._ops. Scripting inside the answer, calling a traced module and calling a function
# compiled with torch.compile run Python frames of torch.jit or torch._dynamo, which are forbidden too.
# One route stays invisible to a profile hook: a function scripted with torch.jit.script *before* the
# answer runs executes in TorchScript's interpreter, with no Python frame and no builtin call to see.
# That route, and any patching of the tripwire in the student's own process, is closed in sandboxed
# grading kernels by the guard, which switches the operators of _CONVOLUTION_OPERATORS off in torch's
# dispatcher (TorchScript calls them there too) before any student code runs.
_TORCH_CONVOLUTIONS = tuple(f"torch.{name}" for name in (
    "conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "convolution", "_convolution", "_convolution_mode", "mkldnn_convolution", "cudnn_convolution",
    "cudnn_convolution_transpose", "cudnn_convolution_relu", "cudnn_convolution_add_relu", "miopen_convolution",
    "miopen_convolution_transpose", "miopen_depthwise_convolution", "miopen_convolution_relu",
    "miopen_convolution_add_relu", "_mps_convolution", "_mps_convolution_transpose",
    "_nnpack_spatial_convolution", "compile",
)) + tuple(f"torch._C._nn.{name}" for name in (
    "im2col", "col2im", "thnn_conv2d", "slow_conv_dilated2d", "slow_conv_dilated3d", "slow_conv3d",
    "slow_conv_transpose2d", "slow_conv_transpose3d", "_conv_depthwise2d", "conv_depthwise3d",
)) + ("torch.nn.functional.unfold", "torch.nn.functional.fold", "torch._ops", "torch.jit", "torch._dynamo",
     "torch._decomp", "torch._refs")

#: patterns of the torch operators that compute a convolution, or the patches of one (every namespace;
#: "convert" is not a convolution), and the namespaces of oneDNN's and the quantized kernels, which
#: compute convolutions under other names (mkldnn::_convolution_pointwise, conv2d_prepack and run)
_CONVOLUTION_OPERATORS = (
    r"[a-z_]+::(?!.*convert).*(conv|im2col|col2im).*",
    r"(quantized|_quantized|mkldnn|mkldnn_prepacked|onednn|prepacked)::.*",
)
#: numpy's C correlation, behind np.correlate and np.convolve: a 1-D correlation of the flattened image
#: with the dilated taps laid out along it is a 2-D convolution
_NUMPY_CORRELATION = ("numpy._core._multiarray_umath:correlate", "numpy._core._multiarray_umath:correlate2")


_CONV = "segedu.conv:conv_transpose2d"

# Exercise 09 re-implements RoIAlign, whose peers are torchvision (roi_align, RoIAlign, its pure-Python
# _roi_align, box_iou) and torch's own bilinear samplers. torchvision, pycocotools, torchmetrics, sklearn and
# scipy are forbidden whole, so a sandboxed kernel cannot import them at all (and torchvision's operators,
# which it registers only when imported, never exist there); torch stays importable. Inside torch, the
# samplers that compute bilinear samples at arbitrary points or on a grid: F.grid_sample (a Python frame of
# torch.nn.functional, then the C builtin torch.grid_sampler), F.interpolate and nn.Upsample (every mode: the
# C builtins torch._C._nn.upsample_*), and the routes to their operators that go around those names
# (torch.ops through torch._ops, TorchScript and torch.compile, the Python decompositions in torch._decomp,
# torch._refs and torch._inductor). In a sandboxed kernel the guard also switches the operators themselves off.
_TORCH_SAMPLERS = tuple(f"torch.nn.functional.{name}" for name in (
    "grid_sample", "interpolate", "upsample", "upsample_bilinear", "upsample_nearest",
)) + tuple(f"torch.{name}" for name in (
    "grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "_grid_sampler_2d_cpu_fallback", "cudnn_grid_sampler",
    "compile",
)) + tuple(f"torch._C._nn.{name}" for name in (
    "upsample_bilinear2d", "_upsample_bilinear2d_aa", "upsample_bicubic2d", "_upsample_bicubic2d_aa",
    "_upsample_lanczos2d_aa", "upsample_linear1d", "upsample_trilinear3d", "upsample_nearest1d",
    "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
    "_upsample_nearest_exact3d",
)) + ("torch._ops", "torch.jit", "torch._dynamo", "torch._inductor", "torch._decomp", "torch._refs")

#: numpy's C linear interpolation, behind np.interp: two 1-D interpolations (rows, then the column of
#: results) are a bilinear sample, with RoIAlign's clamping at the edges for free (attack review R1)
_NUMPY_INTERPOLATION = ("numpy._core._multiarray_umath:interp", "numpy._core._multiarray_umath:interp_complex")

#: the operators behind those samplers, every overload (backward passes included): grid sampling and
#: every upsampling mode. The leading underscore also names the Python helpers that torch._decomp's
#: decompositions and torch._inductor call (_grid_sampler_2d, _upsample_linear): the guard replaces those too.
_SAMPLER_OPERATORS = (r"aten::_?(cudnn_)?grid_sampler.*", r"aten::_?upsample_.*")


# Exercise 10 re-implements scaled dot-product attention, whose peers live inside torch, which answers need
# (matmul, softmax, sigmoid, binary_cross_entropy_with_logits): F.scaled_dot_product_attention is the C
# builtin torch._C._nn.scaled_dot_product_attention; nn.MultiheadAttention and nn.Transformer* call the
# Python F.multi_head_attention_forward or, on their inference fast paths, the C builtins
# torch._native_multi_head_attention and torch._transformer_encoder_layer_fwd; the fused kernels are C
# builtins of torch too; torch.nn.attention holds sdpa_kernel and flex_attention (Python frames); and
# torch.ops.aten.*, TorchScript, torch.compile and torch's Python decompositions go around those names
# (torch._ops, torch.jit, torch._dynamo, torch._inductor, torch._decomp, torch._refs, torch._higher_order_ops).
# segment_anything (its Attention, PositionEmbeddingRandom and calculate_stability_score), torchvision (its
# sigmoid_focal_loss) and segedu are forbidden whole. In a sandboxed kernel the guard also switches off every
# attention operator, whatever route reaches it.
_TORCH_ATTENTION = ("torch._C._nn.scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention",
                    "torch.nn.functional.multi_head_attention_forward", "torch.nn.attention") + tuple(
    f"torch.{name}" for name in (
        "_native_multi_head_attention", "_transformer_encoder_layer_fwd", "_fused_sdp_choice",
        "_scaled_dot_product_attention_math", "_scaled_dot_product_attention_math_for_mps",
        "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
        "_flash_attention_forward_no_dropout_inplace", "_triton_multi_head_attention",
        "_triton_scaled_dot_attention", "compile",
    )) + ("torch._ops", "torch.jit", "torch._dynamo", "torch._inductor", "torch._decomp", "torch._refs",
          "torch._higher_order_ops", "torch.onnx", "torch.ao.nn.quantizable", "torch.ao.nn.quantized")

#: every attention operator (the scaled dot-product attention, its math, flash, efficient, cuDNN and fused
#: kernels and their backward passes, multi-head attention, the transformer layers' fast path, and the choice
#: of a fused kernel)
_ATTENTION_OPERATORS = (r"aten::.*attention.*", r"aten::_fused_sdp.*", r"aten::_transformer_.*")
#: nn.MultiheadAttention's Python path: with need_weights=True (its default) it computes the attention by hand
#: (bmm and softmax), calling no attention operator, so the guard replaces the function itself
_MULTI_HEAD_ATTENTION = ("torch.nn.functional:multi_head_attention_forward",
                         # found by attack review R1: torch.ao's quantizable MultiheadAttention (and its quantized
                         # subclass) has its own Python forward, and flex attention's eager math is plain Python;
                         # replaced on the class, so every alias and subclass loses them
                         "torch.ao.nn.quantizable.modules.activation:MultiheadAttention._forward_impl",
                         "torch.ao.nn.quantizable.modules.activation:MultiheadAttention.forward",
                         "torch._higher_order_ops.flex_attention:math_attention",
                         "torch._higher_order_ops.flex_attention:_math_attention_inner",
                         "torch._higher_order_ops.flex_attention:sdpa_dense")


EXERCISES = registry(
    ExerciseSpec(
        assignment="00_tasks_and_metrics",
        functions=(
            ("confusion_matrix", _metrics("confusion_matrix", compare="exact")),
            ("pixel_accuracy", _metrics("pixel_accuracy")),
            ("mean_accuracy", _metrics("mean_accuracy")),
            ("mean_iou", _metrics("mean_iou")),
            ("frequency_weighted_iou", _metrics("frequency_weighted_iou")),
            ("dice_coefficient", _metrics("dice_coefficient")),
        ),
        forbidden=("segedu.metrics", "sklearn.metrics", "torchmetrics", "torch", "scipy.spatial.distance"),
        allowed="Use numpy only (not sklearn.metrics, torchmetrics or segedu.metrics).",
    ),
    ExerciseSpec(
        assignment="01_thresholding",
        functions=(
            ("threshold", GradedFunction("segedu.classical:threshold", compare="binary_mask")),
            ("otsu_threshold", GradedFunction(
                "segedu.classical:otsu_threshold",
                compare="close",
                extra="segedu.grading.exercises:otsu_tolerance",
            )),
            ("adaptive_threshold", GradedFunction(
                "segedu.classical:adaptive_threshold",
                compare="binary_mask",
                extra="segedu.grading.exercises:adaptive_ties",
            )),
        ),
        forbidden=("segedu.classical", "skimage.filters", "cv2", "skimage.util.shape"),
        allowed="Use numpy and scipy.ndimage only (not skimage.filters, OpenCV or segedu.classical).",
    ),
    ExerciseSpec(
        assignment="02_edges",
        functions=(
            ("convolve2d", GradedFunction("segedu.classical:convolve2d")),
            ("sobel", GradedFunction("segedu.classical:sobel", outputs=("gx", "gy"))),
            ("gradient_magnitude", GradedFunction("segedu.classical:gradient_magnitude")),
            ("non_maximum_suppression", GradedFunction("segedu.classical:non_maximum_suppression")),
        ),
        forbidden=("segedu.classical", "scipy.signal", "scipy.ndimage", "skimage.filters",
                   "skimage.feature", "cv2"),
        allowed="Use numpy only (not scipy.signal, scipy.ndimage, skimage.filters or segedu.classical).",
    ),
    ExerciseSpec(
        assignment="03_regions",
        functions=(
            ("region_grow", GradedFunction("segedu.classical:region_grow", compare="binary_mask")),
            ("kmeans_segment", GradedFunction(
                "segedu.grading.exercises:kmeans_from_init",
                compare=("exact", "close"),
                outputs=("labels", "centres"),
                delegates_to="segedu.classical:kmeans_segment",
            )),
        ),
        forbidden=("segedu.classical", "sklearn.cluster", "scipy.cluster", "scipy.ndimage",
                   "skimage.segmentation", "skimage.measure", "cv2"),
        allowed="Use numpy only (not sklearn.cluster, scipy, skimage.segmentation or segedu.classical).",
    ),
    ExerciseSpec(
        assignment="04_transpose_convolution",
        functions=(
            ("conv_output_size", GradedFunction("segedu.conv:conv_output_size", compare="integer")),
            ("conv_transpose_output_size", GradedFunction("segedu.conv:conv_transpose_output_size",
                                                          compare="integer")),
            ("conv_transpose2d", GradedFunction("segedu.grading.exercises:single_channel_conv_transpose2d",
                                                delegates_to=_CONV)),
            ("stride2_example", GradedFunction("segedu.grading.exercises:stride2_example", delegates_to=_CONV)),
        ),
        forbidden=("segedu.conv", "torch", "scipy.signal", "scipy.ndimage"),
        allowed="Use numpy only (not torch, scipy or segedu.conv).",
    ),
    ExerciseSpec(
        assignment="05_fcn",
        functions=(
            ("linear_to_conv_weight", GradedFunction("segedu.grading.exercises:linear_weight_as_conv",
                                                     delegates_to="segedu.models.fcn:linear_to_conv")),
            ("bilinear_kernel", GradedFunction("segedu.models.fcn:bilinear_kernel")),
            # fuse_skips takes the exercise's six arguments in the same order
            ("fcn8s_fuse", GradedFunction("segedu.models.fcn:fuse_skips")),
        ),
        forbidden=("segedu.models", "torchvision.models"),
        allowed="Use torch and numpy (not segedu.models or torchvision.models.segmentation).",
    ),
    ExerciseSpec(
        assignment="06_unet",
        functions=(
            ("center_crop", GradedFunction("segedu.models.unet:center_crop")),
            ("unet_weight_map", GradedFunction("segedu.losses:unet_weight_map")),
            # NaN equals NaN only so that the hint of Dice without smoothing finds its NaN; the
            # reference never returns NaN (smooth > 0), so a NaN answer still fails
            ("dice_loss", GradedFunction("segedu.losses:dice_loss", options={"equal_nan": True})),
            # the reference's reduction defaults to "mean", the only one the exercise asks for
            ("focal_loss", GradedFunction("segedu.losses:focal_loss")),
        ),
        forbidden=("segedu.losses", "segedu.models", "torchvision.transforms", "torchvision.ops"),
        allowed="Use torch, numpy and scipy.ndimage (not segedu.losses, segedu.models, torchvision.transforms "
                "or torchvision.ops).",
    ),
    ExerciseSpec(
        assignment="07_segnet",
        functions=(
            ("max_unpool2d", GradedFunction("segedu.conv:max_unpool2d")),
            ("segnet_decoder_stage", GradedFunction("segedu.grading.exercises:segnet_decoder_stage",
                                                    delegates_to="segedu.models.segnet:decoder_stage")),
        ),
        # torch.nn.functional.max_unpool2d and nn.MaxUnpool2d end in the C++ kernel
        # torch._C._nn.max_unpool2d, torch.ops.aten.max_unpool2d goes through torch._ops, and
        # torch._decomp holds a pure-Python max_unpool2d: forbidding those catches every route and leaves
        # the rest of torch allowed (the convolutions, batch norm and ReLU of a decoder stage, F.pad,
        # F.interpolate). In a sandboxed kernel the guard also switches the operators off.
        forbidden=("segedu.conv", "segedu.models", "torch._C._nn.max_unpool2d", "torch._C._nn.max_unpool3d",
                   "torch._ops", "torch._decomp", "torch._refs"),
        importable=("torch",),
        # max-unpooling, and the max-pooling backward passes, which scatter a gradient to the indices
        # they are given (unpooling under another name)
        blocked_operators=(r"aten::max_unpool.*", r"aten::.*max_pool.*backward.*"),
        allowed="Use torch (tensor operations such as zeros, indexing, scatter_ and reshape, the layers you are "
                "given, F.relu and F.batch_norm), but not max-unpooling in any form "
                "(torch.nn.functional.max_unpool2d, nn.MaxUnpool2d, torch.ops.aten) and not segedu.conv or "
                "segedu.models.",
    ),
    ExerciseSpec(
        assignment="08_deeplab",
        functions=(
            # float32 answers summed in another order than the reference's im2col differ by ~1e-5 on
            # outputs of size ~10; every known mistake moves an output by far more. The dtype is part of
            # the answer ("floats keep their dtype"): the ASPP cells are float64 and need it.
            ("dilated_conv2d", GradedFunction("segedu.conv:conv2d",
                                              options={"rtol": 1e-4, "atol": 1e-4, "same_dtype": True})),
            # (size, jump) compared as a pair of whole numbers: an answer that returns the size alone is
            # then a wrong shape whose known mistake can still be named
            ("receptive_field", GradedFunction("segedu.conv:receptive_field", compare="exact")),
            ("aspp", GradedFunction("segedu.grading.exercises:aspp_block",
                                    options={"rtol": 1e-4, "atol": 1e-4, "same_dtype": True},
                                    delegates_to="segedu.models.deeplab:ASPP")),
        ),
        forbidden=("segedu", "scipy.signal", "scipy.ndimage", "cv2", "torchvision.ops", "numpy.correlate",
                   "numpy.convolve", "numpy._core._multiarray_umath.correlate",
                   "numpy._core._multiarray_umath.correlate2") + _TORCH_CONVOLUTIONS,
        importable=("torch", "numpy"),
        blocked_operators=_CONVOLUTION_OPERATORS,
        blocked_functions=_NUMPY_CORRELATION,
        allowed="Use torch tensor operations (slicing, zeros, einsum, tensordot, matmul, F.pad, F.batch_norm, "
                "F.relu, F.interpolate, torch.cat, mean) and your own dilated_conv2d, but no convolution in any "
                "form (F.conv2d, nn.Conv2d, torch.convolution, conv_transpose, F.unfold / nn.Unfold, "
                "torch.ops.aten, torch.jit, torchvision.ops, numpy's convolve and correlate, scipy.signal or "
                "scipy.ndimage) and not segedu.",
    ),
    ExerciseSpec(
        assignment="09_mask_rcnn",
        functions=(
            ("bilinear_interpolate", GradedFunction("segedu.instance:bilinear_interpolate")),
            # float32 answers average up to ~40 samples in another order than the reference: ~1e-6 apart on
            # values of size ~1; every known mistake moves an output by far more. The dtype is part of the
            # answer ("floats keep their dtype"): the tests pass float32 and float64 maps.
            ("roi_align", GradedFunction("segedu.instance:roi_align",
                                         options={"rtol": 1e-4, "atol": 1e-5, "same_dtype": True})),
            # the reference returns float64 (as pycocotools); any float answer passes. NaN equals NaN only
            # so that the hint of an empty union's 0/0 finds its NaN: the reference never returns NaN.
            ("mask_iou", GradedFunction("segedu.instance:mask_iou", options={"equal_nan": True})),
        ),
        forbidden=("segedu", "torchvision", "pycocotools", "torchmetrics", "sklearn.metrics",
                   "scipy.spatial.distance") + _TORCH_SAMPLERS,
        importable=("torch",),
        blocked_operators=_SAMPLER_OPERATORS,
        blocked_functions=_NUMPY_INTERPOLATION,
        allowed="Use torch tensor operations (indexing, zeros, arithmetic, sum, reshape, @, torch.where), math, and "
                "your own bilinear_interpolate, but no ready-made sampler, RoI operator or mask IoU: not "
                "torchvision, F.grid_sample, F.interpolate or nn.Upsample, torch.ops, torch.jit or torch.compile, "
                "numpy.interp, pycocotools, torchmetrics, sklearn.metrics or scipy, image libraries (PIL, OpenCV, "
                "scikit-image), and not segedu.",
    ),
    ExerciseSpec(
        assignment="10_sam",
        functions=(
            # float64 inputs mostly; float32 answers of another summation order stay ~1e-6 apart on values of
            # size ~1 (the sines and cosines of arguments up to ~30, products of d ~ 8 terms), while every known
            # mistake moves an output by far more. The dtype is part of the answer ("floats keep their dtype").
            ("fourier_encoding", GradedFunction("segedu.models.sam.prompt_encoder:fourier_encoding",
                                                options={"rtol": 1e-5, "atol": 1e-5, "same_dtype": True})),
            # NaN equals NaN only so that the hint of a softmax that overflows (inf / inf) finds its NaNs; the
            # reference never returns NaN, so a NaN answer still fails
            ("attention", GradedFunction("segedu.models.sam.attention:attention",
                                         options={"rtol": 1e-5, "atol": 1e-5, "same_dtype": True, "equal_nan": True})),
            # the reference's reduction defaults to "mean", the only one the exercise asks for
            ("focal_loss", GradedFunction("segedu.losses:focal_loss")),
            # NaN equals NaN only so that the hint of Dice without smoothing finds its NaN; the
            # reference never returns NaN (smooth > 0), so a NaN answer still fails
            ("dice_loss", GradedFunction("segedu.losses:dice_loss", options={"equal_nan": True})),
            # 20 x focal in float32 sums the same terms in another order than the reference: rtol 1e-5 holds
            # it; equal_nan only so that the hint of 0/0 for two empty masks finds its NaN
            ("sam_loss", GradedFunction("segedu.losses:sam_loss", options={"equal_nan": True})),
            ("stability_score", GradedFunction("segedu.models.sam.amg:stability_score", options={"equal_nan": True})),
        ),
        forbidden=("segedu", "segment_anything", "torchvision") + _TORCH_ATTENTION,
        importable=("torch",),
        blocked_operators=_ATTENTION_OPERATORS,
        blocked_functions=_MULTI_HEAD_ATTENTION,
        allowed="Use torch tensor operations (@, matmul, transpose, torch.softmax, torch.sigmoid, sin, cos, sum, mean, "
                "min, stack, where, F.binary_cross_entropy_with_logits), math, and your own focal_loss and dice_loss "
                "in sam_loss, but no ready-made attention or loss: not F.scaled_dot_product_attention, "
                "nn.MultiheadAttention (nor torch.ao's) or nn.Transformer layers, torch.nn.attention or flex attention, "
                "torch.onnx, torch.ops, torch.jit or torch.compile, torchvision (sigmoid_focal_loss), segment_anything, "
                "and not segedu.",
    ),
    ExerciseSpec(
        assignment="11_coco_eda",
        functions=(
            ("class_frequency", GradedFunction("segedu.data.coco.stats:class_frequency", compare="exact")),
            ("instances_per_image", GradedFunction("segedu.data.coco.stats:instances_per_image", compare="exact")),
            ("size_class_counts", GradedFunction("segedu.data.coco.stats:size_class_counts", compare="exact")),
            ("cooccurrence_matrix", GradedFunction("segedu.data.coco.stats:cooccurrence_matrix", compare="exact")),
            ("crowd_counts", GradedFunction("segedu.data.coco.stats:crowd_counts", compare="exact")),
            # semantic_label_map(coco, image_id, size) is the exercise's label_map with every category
            ("label_map", GradedFunction("segedu.data.coco:semantic_label_map", compare="exact")),
        ),
        forbidden=("segedu.data.coco",),
        allowed="Use numpy and pycocotools only (not segedu.data.coco.stats or segedu.data.semantic_label_map).",
    ),
)
