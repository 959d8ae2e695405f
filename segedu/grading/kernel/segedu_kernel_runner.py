"""What a test cell runs in the student's kernel during a grading run, and the data format it uses.

In a grading run the verdict is computed outside the kernel (``segedu.instructor.verdict``). The
grader replaces each test cell's code with::

    import segedu_kernel_runner; segedu_kernel_runner.run("test_threshold")

and :func:`run` only calls the student's functions on inputs that the trusted side wrote, then
saves what they returned as data: JSON plus ``.npy`` files that load with ``allow_pickle=False``.
Nothing here compares, and nothing here knows the expected answers or the grading seed, so a
student who patches this module, numpy or IPython changes only what their own functions appear to
return.

This file is deliberately standalone (stdlib and numpy; torch and pycocotools only when a value
needs them): in a grading kernel ``segedu`` itself may not be importable at all.

The format, one JSON value per argument or result::

    {"t": "none"} | {"t": "bool"|"int"|"str", "v": ...} | {"t": "float", "v": "repr"}
    {"t": "tuple"|"list", "v": [...]} | {"t": "dict", "v": [[key, value], ...]}
    {"t": "array", "f": "name.npy"}                      numpy arrays and numpy scalars (0-d)
    {"t": "tensor", "f": "name.npy", "grad": bool}       torch tensors (arguments only)
    {"t": "module", "cls": "ConvTranspose2d", "init": {...}, "state": {"weight": "name.npy"}}
    {"t": "coco", "f": "name.json"}                      pycocotools COCO objects (arguments only)
    {"t": "error", "type": "ValueError", "message": "..."} a result that raised
    {"t": "unsupported", "type": "Foo"}                   a result that is not data
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

IO_VARIABLE = "SEGEDU_KERNEL_IO"
MODULES = {  # torch.nn classes an argument may be, and their constructor arguments
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
    "ConvTranspose2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                        "groups", "dilation"),
    "Linear": ("in_features", "out_features"),
}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")
MAX_DEPTH = 32


# ----------------------------------------------------------------------------- encoding

def encode(value, folder: str, stem: str, *, result: bool = False, _depth: int = 0, _count=None):
    """``value`` as a JSON-able tag; arrays are saved as ``<folder>/<stem>_<n>.npy``."""
    counter = _count if _count is not None else [0]

    def file_name(suffix: str) -> str:
        counter[0] += 1
        return f"{stem}_{counter[0]}{suffix}"

    if _depth > MAX_DEPTH:
        return {"t": "unsupported", "type": "a structure nested too deeply"}
    again = dict(result=result, _depth=_depth + 1, _count=counter)
    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"t": "int", "v": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"t": "float", "v": repr(float(value))}
    if isinstance(value, str) and not result:
        return {"t": "str", "v": str(value)}
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"t": kind, "v": [encode(v, folder, stem, **again) for v in value]}
    if isinstance(value, dict) and not result:
        return {"t": "dict", "v": [[str(k), encode(v, folder, stem, **again)] for k, v in value.items()]}
    module = type(value).__module__ or ""
    if module.startswith("torch"):
        return _encode_torch(value, folder, file_name, result)
    if isinstance(value, np.ndarray):
        array = np.asarray(value)
        if array.dtype.hasobject or array.dtype.kind not in "biuf":
            return {"t": "unsupported", "type": f"numpy array of dtype {array.dtype}"}
        name = file_name(".npy")
        np.save(os.path.join(folder, name), np.ascontiguousarray(array), allow_pickle=False)
        return {"t": "array", "f": name}
    if not result and type(value).__name__ == "COCO" and hasattr(value, "dataset"):
        name = file_name(".json")
        with open(os.path.join(folder, name), "w") as handle:
            json.dump(value.dataset, handle)
        return {"t": "coco", "f": name}
    return {"t": "unsupported", "type": type(value).__name__}


def _encode_torch(value, folder, file_name, result):
    import torch

    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        if array.dtype == torch.bfloat16 or array.dtype == torch.float16:
            array = array.float()
        name = file_name(".npy")
        np.save(os.path.join(folder, name), array.numpy(), allow_pickle=False)
        if result:
            return {"t": "array", "f": name}
        return {"t": "tensor", "f": name, "grad": bool(value.requires_grad)}
    cls = type(value).__name__
    if not result and cls in MODULES and isinstance(value, torch.nn.Module):
        init = {k: getattr(value, k) for k in MODULES[cls]}
        init = {k: list(v) if isinstance(v, tuple) else v for k, v in init.items()}
        init["bias"] = getattr(value, "bias", None) is not None
        state = {}
        for key, tensor in value.state_dict().items():
            name = file_name(".npy")
            np.save(os.path.join(folder, name), tensor.detach().cpu().numpy(), allow_pickle=False)
            state[key] = name
        return {"t": "module", "cls": cls, "init": init, "state": state}
    return {"t": "unsupported", "type": cls}


# ----------------------------------------------------------------------------- decoding

class Malformed(ValueError):
    """Data that does not follow the format (or tries to leave its folder)."""


def open_in(folder: str, name: str, max_bytes: int):
    """Open ``folder/name`` for reading without following links, refusing files over ``max_bytes``."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or name.startswith("."):
        raise Malformed(f"bad file name {name!r}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(os.path.join(folder, name), flags)
    try:
        info = os.fstat(descriptor)
        import stat

        if not stat.S_ISREG(info.st_mode):
            raise Malformed(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise Malformed(f"{name} is larger than {max_bytes} bytes")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def load_array(folder: str, name: str, max_bytes: int, budget: list | None = None) -> np.ndarray:
    with open_in(folder, name, max_bytes) as handle:
        if budget is not None:   # every file read counts, also one referred to many times
            budget[0] -= os.fstat(handle.fileno()).st_size
            if budget[0] < 0:
                raise Malformed("the results are larger than the grader reads")
        array = np.load(handle, allow_pickle=False)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise Malformed(f"{name} does not hold a numeric array")
    return array


RESULT_KINDS = {"none", "bool", "int", "float", "tuple", "list", "array", "error", "unsupported"}


def decode(tag, folder: str, *, max_bytes: int = 1 << 28, result: bool = False, budget: list | None = None,
           _depth: int = 0):
    """The value a tag stands for (the inverse of :func:`encode`).

    With ``result=True`` (what a kernel handed back) only the kinds a result can be are accepted,
    and ``budget`` (a one-element list of bytes) bounds what all arrays read add up to.
    """
    if _depth > MAX_DEPTH or not isinstance(tag, dict) or not isinstance(tag.get("t"), str):
        raise Malformed("not a tagged value")
    if result and tag["t"] not in RESULT_KINDS:
        raise Malformed(f"a result cannot be a {tag['t']!r}")
    kind, again = tag["t"], dict(max_bytes=max_bytes, result=result, budget=budget, _depth=_depth + 1)
    if kind == "none":
        return None
    if kind in ("bool", "int", "str"):
        value = tag.get("v")
        wanted = {"bool": bool, "int": int, "str": str}[kind]
        if type(value) is not wanted:
            raise Malformed(f"a {kind} holds {type(value).__name__}")
        return value
    if kind == "float":
        value = tag.get("v")
        if not isinstance(value, str) or len(value) > 40:
            raise Malformed("a float is not a short string")
        return float(value)
    if kind in ("tuple", "list"):
        items = tag.get("v")
        if not isinstance(items, list):
            raise Malformed(f"a {kind} without items")
        values = [decode(v, folder, **again) for v in items]
        return tuple(values) if kind == "tuple" else values
    if kind == "dict":
        return {str(k): decode(v, folder, **again) for k, v in tag.get("v", [])}
    if kind == "array":
        return load_array(folder, tag.get("f"), max_bytes, budget)
    if kind == "tensor":
        import torch

        tensor = torch.from_numpy(load_array(folder, tag.get("f"), max_bytes))
        return tensor.requires_grad_(True) if tag.get("grad") else tensor
    if kind == "module":
        import torch

        cls = tag.get("cls")
        if cls not in MODULES:
            raise Malformed(f"unknown module class {cls!r}")
        init = {k: tuple(v) if isinstance(v, list) else v for k, v in tag.get("init", {}).items()}
        module = getattr(torch.nn, cls)(**init)
        state = {k: torch.from_numpy(load_array(folder, f, max_bytes)) for k, f in tag.get("state", {}).items()}
        module.load_state_dict(state)
        return module
    if kind == "coco":
        from pycocotools.coco import COCO
        import contextlib
        import io

        with open_in(folder, tag.get("f"), max_bytes) as handle:
            dataset = json.load(handle)
        coco = COCO()
        coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco
    if kind in ("error", "unsupported"):
        return {"t": kind, "type": str(tag.get("type", ""))[:200], "message": str(tag.get("message", ""))[:2000]}
    raise Malformed(f"unknown tag {kind!r}")


# ----------------------------------------------------------------------------- the kernel side

def _user_namespace() -> dict:
    try:
        return get_ipython().user_ns  # noqa: F821  (IPython's builtin inside a kernel)
    except NameError:
        import __main__

        return vars(__main__)


def _tripwire_class():
    """The tripwire beside this file (segedu_tripwire.py), or None where it cannot be imported."""
    try:
        from segedu_tripwire import Tripwire
    except ImportError:
        return None
    return Tripwire


def _watch(forbidden):
    """Watch for calls into the references and the peers (advisory: the kernel owns it).

    In a sandboxed grading kernel segedu and most peers cannot be imported at all; the watch matters
    there for a peer inside a package that answers may use (07 forbids torch's unpooling kernel but
    not torch), so the tripwire is a standalone file beside this one, on the kernel's PYTHONPATH.
    """
    import contextlib

    tripwire = _tripwire_class()
    if tripwire is None or not forbidden:
        return contextlib.nullcontext(None)
    return tripwire(tuple(forbidden))


def run(grade_id: str) -> None:
    """Call the student's functions on this test cell's inputs and save what they return."""
    io_dir = os.environ.get(IO_VARIABLE, "")
    if not io_dir or not SAFE_NAME.match(grade_id):
        raise RuntimeError("This cell only runs inside a grading run.")
    inputs, outputs = os.path.join(io_dir, "in"), os.path.join(io_dir, "out", grade_id)
    with open_in(inputs, f"{grade_id}.json", 1 << 24) as handle:
        manifest = json.load(handle)
    os.makedirs(outputs, exist_ok=True)
    namespace = _user_namespace()
    for index, case in enumerate(manifest["cases"]):
        function = namespace.get(case["function"])
        try:
            args = decode(case["args"], inputs)
            kwargs = decode(case["kwargs"], inputs)
            if not callable(function):
                raise NameError(f"{case['function']} is not defined as a function")
            with _watch(manifest.get("forbidden", ())) as tripwire:
                value = function(*args, **kwargs)
            if tripwire is not None and (tripwire.hit is not None or tripwire.tampered):
                what = str(tripwire.hit) if tripwire.hit is not None else "sys.setprofile (it switched off the check)"
                tag = {"t": "error", "type": "Delegation", "message": what}
            else:
                tag = encode(value, outputs, str(index), result=True)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # the student's error is a result, to be judged outside
            tag = {"t": "error", "type": type(error).__name__, "message": str(error)[:500]}
        with open(os.path.join(outputs, f"{index}.json"), "w") as handle:
            json.dump(tag, handle)
    print(f"{grade_id}: {len(manifest['cases'])} results saved for grading")

