"""The kernel guard: forbidden torch operators are gone from a grading kernel, whatever its code patches.

Each test starts a fresh interpreter with the kernel folder on PYTHONPATH, as the sandbox does, so
``sitecustomize`` installs the guard at start-up; the student's code is compiled under an IPython
cell name (which arms the audit hook) and reports what each route did as JSON lines. The peer for
"what a route would compute" is torch itself, run in this (unguarded) test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

KERNEL_DIR = Path(__file__).resolve().parents[1] / "segedu" / "grading" / "kernel"
from segedu.grading.exercises import EXERCISES  # noqa: E402  (after the constants it sits with)

#: the operators and functions the exercises block, as the grader hands them to the guard
CONVOLUTION = EXERCISES["08_deeplab"].blocked_operators
CORRELATION = EXERCISES["08_deeplab"].blocked_functions
UNPOOLING = EXERCISES["07_segnet"].blocked_operators
SAMPLERS = EXERCISES["09_mask_rcnn"].blocked_operators

PRELUDE = '''
import json, torch, torch.nn.functional as F
def report(name, route):
    try:
        value = route()
        value = value.tolist() if isinstance(value, torch.Tensor) else None
        print(json.dumps({"route": name, "ran": True, "value": value}))
    except BaseException as error:
        print(json.dumps({"route": name, "ran": False, "error": type(error).__name__, "message": str(error)}))
torch.manual_seed(0)
x = torch.randn(1, 2, 6, 7)
w = torch.randn(3, 2, 3, 3)
'''


def run_guarded(code: str, operators, *, cell: bool = True, guard: dict | None = None, functions=()) -> dict:
    """Run ``code`` in a fresh interpreter with the guard; ``{route: outcome}`` of its report() calls."""
    config = {"blocked_operators": list(operators), "blocked_functions": list(functions),
              "rule": "exercise 99 asks you to write it yourself."}
    env = dict(os.environ, PYTHONPATH=str(KERNEL_DIR), SEGEDU_KERNEL_GUARD=json.dumps(guard or config))
    source = PRELUDE + textwrap.dedent(code)
    filename = "<ipython-input-1-0123abcd>" if cell else "<startup>"
    # IPython keeps each cell's source in linecache, so that inspect (and torch.jit.script) can read it
    wrapper = (f"import linecache\nsource = {source!r}\n"
               f"linecache.cache[{filename!r}] = (len(source), None, source.splitlines(True), {filename!r})\n"
               f"exec(compile(source, {filename!r}, 'exec'))")
    result = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {o["route"]: o for o in outcomes}


def assert_blocked(outcome, *names):
    assert not outcome["ran"], f"{outcome['route']} still computes under the guard"
    assert outcome["error"] in ("RuntimeError", "GuardRefused"), outcome
    if names:
        assert any(n in outcome["message"] for n in names), outcome["message"]


@pytest.fixture(scope="module")
def convolution_routes():
    return run_guarded('''
        from torch._C import DispatchKey, DispatchKeySet
        args = (x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
        report("F.conv2d", lambda: F.conv2d(x, w, dilation=2))
        report("nn.Conv2d", lambda: torch.nn.Conv2d(2, 3, 3)(x))
        report("torch.conv2d alias", lambda: (lambda f: f(x, w))(torch.conv2d))
        report("F.conv_transpose2d", lambda: F.conv_transpose2d(x, w.transpose(0, 1)))
        report("F.conv1d", lambda: F.conv1d(x[0], w[:, :, 0]))
        report("torch.ops.aten.convolution", lambda: torch.ops.aten.convolution(*args))
        report("redispatch below autograd", lambda: torch.ops.aten.convolution.default.redispatch(
            DispatchKeySet(DispatchKey.CompositeExplicitAutograd), *args))
        report("MKL-DNN tensors", lambda: torch.mkldnn_convolution(
            x.to_mkldnn(), w.to_mkldnn(), None, [0, 0], [1, 1], [1, 1], 1).to_dense())
        report("the gradient of a convolution", lambda: torch.nn.grad.conv2d_input((1, 3, 8, 9), w, x))
        report("F.unfold", lambda: F.unfold(x, 3, dilation=2))
        report("torch._decomp im2col", lambda: torch._decomp.decompositions.im2col(x, [3, 3], [2, 2], [0, 0], [1, 1]))
        report("decomposition table", lambda: next(f for o, f in torch._decomp.decomposition_table.items()
                                                   if "im2col" in str(o))(x, [3, 3], [1, 1], [0, 0], [1, 1]))
        def convolve(a, b):
            return torch.conv2d(a, b)
        report("TorchScript made before the answer", lambda: torch.jit.script(convolve)(x, w))
        report("conv_tbc", lambda: torch.conv_tbc(x[0].permute(2, 0, 1), w[:, :, 0].permute(2, 1, 0), torch.zeros(3)))
        report("quantized", lambda: torch.ao.nn.quantized.functional.conv2d(
            torch.quantize_per_tensor(x, 0.1, 128, torch.quint8), torch.quantize_per_tensor(w, 0.1, 0, torch.qint8),
            torch.zeros(3), scale=0.1, zero_point=128).dequantize())
        handle = lambda name, overload: torch._C._get_operation_overload(name, overload)[0]
        report("im2col.out by a C++ handle", lambda: handle("aten::im2col", "out")(
            x, [3, 3], [2, 2], [0, 0], [1, 1], out=torch.empty(0)))
        report("_slow_conv2d_forward.output", lambda: handle("aten::_slow_conv2d_forward", "output")(
            x, w, [3, 3], None, [1, 1], [0, 0], output=torch.empty(0)))
        report("oneDNN pointwise convolution", lambda: torch.ops.mkldnn._convolution_pointwise(
            x, w, None, [0, 0], [1, 1], [1, 1], 1, "none", [], ""))
        report("oneDNN by a C++ handle", lambda: handle("mkldnn::_convolution_pointwise", "")(
            x, w, None, [0, 0], [1, 1], [1, 1], 1, "none", [], ""))
        report("the backward of the slow convolution", lambda: handle("aten::_slow_conv2d_backward", "output_mask")(
            w.transpose(0, 1), x.transpose(0, 1), torch.zeros(2, 3, 4, 5), [4, 5], [1, 1], [0, 0],
            [False, True, False]))
        report("numpy's correlate", lambda: __import__("numpy").correlate([1.0, 2.0, 3.0], [1.0, 1.0]))
        report("numpy's convolve", lambda: __import__("numpy").convolve([1.0, 2.0, 3.0], [1.0, 1.0]))
        report("reload the decompositions", lambda: __import__("importlib").reload(torch._decomp.decompositions))
        report("gc search", lambda: __import__("gc").get_objects())
        report("run the finalizers", lambda: [f() for f in list(__import__("weakref").finalize._registry)])
        report("F.conv2d after the finalizers", lambda: F.conv2d(x, w))
        report("subprocess", lambda: __import__("subprocess").run([__import__("sys").executable, "-S", "-c", "1"]))
        report("os.system", lambda: __import__("os").system("true"))
        report("import scipy and ctypes (honest notebooks do)", lambda: __import__("scipy.special").special.erf(
            __import__("ctypes").c_double(0.5).value) and None)
        report("einsum", lambda: torch.einsum("nchw,c->nhw", x, torch.ones(2)))
        report("interpolate", lambda: F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=False))
        report("batch_norm", lambda: F.batch_norm(x, torch.zeros(2), torch.ones(2) * 2))
        report("pad", lambda: F.pad(x, (2, 2, 1, 1)))
        report("Tensor.unfold", lambda: x.unfold(2, 3, 1).sum(-1))
        report("adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(x, 1))
        report("max_unpool2d (not blocked here)",
               lambda: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2, output_size=(6, 7)))
    ''', CONVOLUTION, functions=CORRELATION)


@pytest.mark.parametrize("route", [
    "F.conv2d", "nn.Conv2d", "torch.conv2d alias", "F.conv_transpose2d", "F.conv1d", "torch.ops.aten.convolution",
    "redispatch below autograd", "MKL-DNN tensors", "the gradient of a convolution", "F.unfold",
    "torch._decomp im2col", "conv_tbc", "quantized", "F.conv2d after the finalizers",
    "TorchScript made before the answer", "im2col.out by a C++ handle", "_slow_conv2d_forward.output",
    "oneDNN pointwise convolution", "oneDNN by a C++ handle", "the backward of the slow convolution",
    "numpy's correlate", "numpy's convolve"])
def test_every_route_to_a_convolution_is_switched_off(convolution_routes, route):
    assert_blocked(convolution_routes[route], "switched off in this grading kernel", "exercise 99")


def test_the_decomposition_table_no_longer_has_im2col(convolution_routes):
    outcome = convolution_routes["decomposition table"]
    assert not outcome["ran"] and outcome["error"] in ("StopIteration", "RuntimeError"), outcome


@pytest.mark.parametrize("route", ["reload the decompositions", "gc search", "subprocess", "os.system"])
def test_the_audit_hook_refuses_what_could_undo_the_guard(convolution_routes, route):
    outcome = convolution_routes[route]
    assert_blocked(outcome, "not allowed in a grading kernel")
    assert outcome["error"] == "GuardRefused"


def test_what_answers_may_use_still_computes_the_same(convolution_routes):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 7)
    expected = {
        "einsum": torch.einsum("nchw,c->nhw", x, torch.ones(2)),
        "interpolate": F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=False),
        "batch_norm": F.batch_norm(x, torch.zeros(2), torch.ones(2) * 2),
        "pad": F.pad(x, (2, 2, 1, 1)),
        "Tensor.unfold": x.unfold(2, 3, 1).sum(-1),
        "adaptive_avg_pool2d": F.adaptive_avg_pool2d(x, 1),
        "max_unpool2d (not blocked here)": F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2,
                                                          output_size=(6, 7)),
    }
    for route, value in expected.items():
        outcome = convolution_routes[route]
        assert outcome["ran"], outcome
        assert torch.allclose(torch.tensor(outcome["value"]), value), route
    # the finalizers were detached, so running the rest of them changes nothing
    assert convolution_routes["run the finalizers"]["ran"]
    assert convolution_routes["import scipy and ctypes (honest notebooks do)"]["ran"]


def test_unpooling_routes_are_switched_off_and_convolution_stays():
    routes = run_guarded('''
        values, indices = F.max_pool2d(x, 2, return_indices=True)
        report("F.max_unpool2d", lambda: F.max_unpool2d(values, indices, 2))
        report("nn.MaxUnpool2d", lambda: torch.nn.MaxUnpool2d(2)(values, indices))
        report("torch.ops.aten", lambda: torch.ops.aten.max_unpool2d(values, indices, [6, 6]))
        report("with autograd", lambda: F.max_unpool2d(values.clone().requires_grad_(), indices, 2))
        report("torch._decomp", lambda: torch._decomp.decompositions.max_unpool2d(values, indices, [6, 6]))
        report("3-D", lambda: F.max_unpool3d(*F.max_pool3d(x[None], 2, return_indices=True), 2))
        report("max_unpool2d.out by a C++ handle", lambda: torch._C._get_operation_overload(
            "aten::max_unpool2d", "out")[0](values, indices, [6, 7], out=torch.empty(0)))
        report("max-pooling's backward", lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            values, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices))
        report("fractional max-pooling's backward", lambda: torch.ops.aten.fractional_max_pool2d_backward(
            values, x, [2, 2], [3, 3], indices))
        report("convolution", lambda: F.conv2d(x, w))
        report("max_pool2d forward", lambda: F.max_pool2d(x, 2, return_indices=True)[0])
    ''', UNPOOLING)
    for route in ("F.max_unpool2d", "nn.MaxUnpool2d", "torch.ops.aten", "with autograd", "torch._decomp", "3-D",
                  "max_unpool2d.out by a C++ handle", "max-pooling's backward", "fractional max-pooling's backward"):
        assert_blocked(routes[route], "switched off in this grading kernel")
    assert routes["convolution"]["ran"]
    assert routes["max_pool2d forward"]["ran"]
    torch.manual_seed(0)
    x, w = torch.randn(1, 2, 6, 7), torch.randn(3, 2, 3, 3)   # the prelude's tensors
    assert torch.allclose(torch.tensor(routes["convolution"]["value"]), F.conv2d(x, w), atol=1e-5)


def test_bilinear_samplers_are_switched_off_and_indexing_stays():
    """Exercise 09: every operator that samples bilinearly (or upsamples at all) is gone; gathering stays."""
    routes = run_guarded('''
        grid = torch.rand(1, 3, 4, 2) * 2 - 1
        report("F.grid_sample", lambda: F.grid_sample(x, grid, align_corners=True))
        report("F.interpolate bilinear", lambda: F.interpolate(x, size=(9, 9), mode="bilinear"))
        report("nn.Upsample", lambda: torch.nn.Upsample(scale_factor=2, mode="bilinear")(x))
        report("antialiased", lambda: F.interpolate(x, size=(3, 3), mode="bilinear", antialias=True))
        report("nearest", lambda: F.interpolate(x, scale_factor=2))
        report("torch.ops.aten", lambda: torch.ops.aten.grid_sampler_2d(x, grid, 0, 0, True))
        report("with autograd", lambda: F.grid_sample(x.clone().requires_grad_(), grid, align_corners=True))
        report("upsample_bilinear2d.out by a C++ handle", lambda: torch._C._get_operation_overload(
            "aten::upsample_bilinear2d", "out")[0](x, [9, 9], False, None, None, out=torch.empty(0)))
        report("torch._decomp", lambda: torch._decomp.decompositions.upsample_bilinear2d(x, [9, 9], False))
        report("gathering", lambda: x[0, :, [1, 2], [3, 4]] * 0.25 + x[0, :, [2, 3], [4, 5]] * 0.75)
        # rebuilding torch's Python grid sampler from its source or its cached bytecode (attack review R1)
        import importlib.util, torch._decomp.decompositions as decompositions
        report("torch's source", lambda: open(decompositions.__file__).read()[:10])
        report("torch's bytecode", lambda: open(importlib.util.cache_from_source(decompositions.__file__), "rb").read(9))
        report("torch._refs' source", lambda: open(torch._refs.__file__).read()[:10])
        report("np.interp", lambda: torch.tensor(__import__("numpy").interp(0.5, [0, 1], [1.0, 3.0])))
        report("another file", lambda: torch.tensor(len(open(torch.__file__).read()) > 0))
    ''', SAMPLERS, functions=EXERCISES["09_mask_rcnn"].blocked_functions)
    # torchvision, the other peer, is not even importable there: the sandbox hides it
    from segedu.instructor.grade import hidden_modules

    assert "torchvision" in hidden_modules("09_mask_rcnn") and "torch" not in hidden_modules("09_mask_rcnn")
    for route in ("F.grid_sample", "F.interpolate bilinear", "nn.Upsample", "antialiased", "nearest",
                  "torch.ops.aten", "with autograd", "upsample_bilinear2d.out by a C++ handle"):
        assert_blocked(routes[route], "switched off in this grading kernel")
    assert not routes["torch._decomp"]["ran"], routes["torch._decomp"]
    for route in ("torch's source", "torch's bytecode", "torch._refs' source"):
        assert_blocked(routes[route], "is not allowed in a grading kernel")
    assert_blocked(routes["np.interp"], "switched off in this grading kernel")
    assert routes["another file"]["ran"], routes["another file"]
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 7)   # the prelude's tensor
    expected = x[0, :, [1, 2], [3, 4]] * 0.25 + x[0, :, [2, 3], [4, 5]] * 0.75
    assert torch.allclose(torch.tensor(routes["gathering"]["value"]), expected)


def test_attention_operators_are_switched_off_and_matmul_softmax_stay():
    """Exercise 10: every attention operator, and multi-head attention's Python path (with need_weights=True
    it computes the weights by bmm and softmax, calling no attention operator), is gone; what answers use stays."""
    spec = EXERCISES["10_sam"]
    routes = run_guarded('''
        import math
        q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
        report("by hand", lambda: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1) @ v)
        report("bce with logits", lambda: F.binary_cross_entropy_with_logits(q, (q > 0).float()))
        report("F.scaled_dot_product_attention", lambda: F.scaled_dot_product_attention(q, k, v))
        report("torch.ops.aten math kernel", lambda: torch.ops.aten._scaled_dot_product_attention_math(q, k, v)[0])
        report("flash attention for cpu", lambda: torch._scaled_dot_product_flash_attention_for_cpu(q, k, v)[0])
        def mha(train, need_weights):
            layer, x = torch.nn.MultiheadAttention(8, 2, batch_first=True), torch.randn(2, 5, 8)
            if not train:
                layer.eval()
            with torch.set_grad_enabled(train):
                return layer(x, x, x, need_weights=need_weights)[0]
        report("MultiheadAttention need_weights", lambda: mha(True, True))
        report("MultiheadAttention fast path", lambda: mha(False, False))
        def encoder_layer():
            layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
            with torch.no_grad():
                return layer(torch.randn(2, 5, 8))
        report("TransformerEncoderLayer fast path", encoder_layer)
    ''', spec.blocked_operators, functions=spec.blocked_functions)
    for route in ("F.scaled_dot_product_attention", "torch.ops.aten math kernel", "flash attention for cpu",
                  "MultiheadAttention need_weights", "MultiheadAttention fast path", "TransformerEncoderLayer fast path"):
        assert_blocked(routes[route], "switched off in this grading kernel")
    for route in ("by hand", "bce with logits"):
        assert routes[route]["ran"], routes[route]
    from segedu.instructor.grade import hidden_modules

    assert {"segment_anything", "torchvision", "segedu"} <= set(hidden_modules("10_sam"))
    assert "torch" not in hidden_modules("10_sam")


def test_no_fresh_interpreter_can_start_once_a_cell_ran():
    """The seccomp filter refuses execve itself, below every audit event a student could avoid."""
    routes = run_guarded('''
        import os, sys
        os.environ.pop("SEGEDU_KERNEL_GUARD", None)
        def spawn():
            child = __import__("multiprocessing").get_context("spawn").Process(target=abs, args=(-1,))
            child.start()
            child.join(60)
            if child.exitcode != 0:   # the child never became an interpreter
                raise PermissionError(f"the spawned interpreter exited with {child.exitcode}")
        report("multiprocessing spawn", spawn)
        report("ctypes system", lambda: None if __import__("ctypes").CDLL(None).system(b"true") != 0 else 1 / 0)
        report("posix_spawn", lambda: os.posix_spawn(sys.executable, [sys.executable, "-c", "1"], os.environ))
    ''', UNPOOLING)
    for route in ("multiprocessing spawn", "posix_spawn"):
        assert not routes[route]["ran"] and routes[route]["error"] in ("GuardRefused", "PermissionError"), routes[route]
    assert routes["ctypes system"]["ran"], routes["ctypes system"]   # system() returned an error: /bin/sh never ran


def test_start_up_code_may_start_programs_until_the_first_cell():
    """ipykernel and its libraries may start programs while the kernel starts; cells may not."""
    routes = run_guarded('''
        report("subprocess at start-up", lambda: __import__("subprocess").run(["true"]).returncode)
    ''', UNPOOLING, cell=False)
    assert routes["subprocess at start-up"]["ran"]


def test_without_the_variable_sitecustomize_does_nothing():
    env = dict(os.environ, PYTHONPATH=str(KERNEL_DIR))
    env.pop("SEGEDU_KERNEL_GUARD", None)
    code = ("import torch, torch.nn.functional as F\n"
            "print(F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)).item())")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "9.0", result.stderr


def test_a_guard_that_cannot_be_installed_stops_the_interpreter():
    env = dict(os.environ, PYTHONPATH=str(KERNEL_DIR), SEGEDU_KERNEL_GUARD="{not json")
    result = subprocess.run([sys.executable, "-c", "print('student code ran')"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 70 and "student code ran" not in result.stdout
    assert "guard could not be installed" in result.stderr


def test_the_exercises_that_need_the_guard_ask_for_it():
    from segedu.grading.exercises import EXERCISES
    from segedu.instructor.grade import hidden_modules, kernel_guard

    for assignment, spec in EXERCISES.items():
        operators = tuple(getattr(spec, "blocked_operators", ()))
        config = kernel_guard(assignment)
        if "torch" in spec.importable and any(p.startswith("torch") for p in spec.forbidden):
            assert operators, f"{assignment} forbids part of torch but blocks no operator in its kernels"
        if operators:
            assert "torch" not in hidden_modules(assignment)
            # the guard imports torchvision to block its operators: hidden, it would stop every kernel
            if "torchvision" in hidden_modules(assignment):
                assert not any(p.startswith("torchvision::") for p in operators), assignment
            assert json.loads(config)["blocked_operators"] == list(operators)
            assert assignment in json.loads(config)["rule"]
        else:
            assert config == ""
