"""What a sandboxed grading kernel sets up before any student code runs.

Some exercises forbid a peer that the sandbox cannot hide, because it lives inside a package that
answers need: exercise 07 forbids torch's max-unpooling, exercise 08 torch's convolutions, and both
need torch. The tripwire (``segedu_tripwire``) catches a call into such a peer while the student's
function runs, but it lives in the student's own process, so a student who replaces the kernel
runner, or switches the tripwire off, could still call the peer. This guard removes the peer
instead, at interpreter start (``sitecustomize`` beside this file imports it when the sandbox sets
``SEGEDU_KERNEL_GUARD``):

1. **The operators are blocked in torch's dispatcher.** Every kernel of each forbidden ATen operator
   (CPU, MKL-DNN, quantized, and the composite kernels that decompose it) is overridden with one that
   raises ``RuntimeError`` naming the exercise's rule. ``F.conv2d``, ``nn.Conv2d``, ``torch.ops.aten``,
   ``redispatch`` and MKL-DNN tensors all end in those kernels. The registrations are held only here,
   in closures, with their finalizers detached, so no module attribute leads back to them.
2. **torch's Python decompositions of those operators are removed** (``torch._decomp``), and
   re-executing their source files is refused, so a reload cannot bring them back.
3. **An audit hook (PEP 578), which cannot be removed once added, refuses** from the first notebook
   cell on what could reach the registrations or a fresh, unguarded interpreter: ``gc`` object
   searches and starting programs (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``).
   Loading libraries stays allowed: ``import ctypes``, scipy and torchvision do it, and honest
   notebooks import those.

None of this judges anything: the verdict is still computed outside the kernel. It only makes the
forbidden peers unavailable to the student's code, whatever that code patches. What it does not
stop is an exploit of the interpreter itself (reading process memory through ``ctypes`` to find and
undo the registrations); the similarity check and the instructor's review are the answer to that.

The file is standalone (stdlib; torch only when operators are blocked), like the runner beside it.
"""

from __future__ import annotations

import json
import os
import sys

ENVIRONMENT_VARIABLE = "SEGEDU_KERNEL_GUARD"
#: dispatch keys whose kernels compute an operator's values (Autograd only redispatches to these)
VALUE_KEYS = ("CPU", "CompositeExplicitAutograd", "CompositeImplicitAutograd",
              "CompositeExplicitAutogradNonFunctional", "MkldnnCPU", "QuantizedCPU", "SparseCPU")
#: audit events refused once the first notebook cell is compiled, by the reason given
REFUSED_EVENTS = {
    "gc.get_objects": "searching the garbage collector's objects",
    "gc.get_referrers": "searching the garbage collector's objects",
    "gc.get_referents": "searching the garbage collector's objects",
    "subprocess.Popen": "starting another program",
    "os.system": "starting another program",
    "os.exec": "starting another program",
    "os.posix_spawn": "starting another program",
    "os.spawn": "starting another program",
}


class GuardRefused(PermissionError):
    """An operation a grading kernel does not allow (raised by the audit hook or a blocked operator)."""


def _is_notebook_cell(filename) -> bool:
    """Whether ``compile`` is compiling a notebook cell (IPython's or ipykernel's cell file names)."""
    if not isinstance(filename, str):
        return False
    return filename.startswith("<ipython-input-") or (
        os.path.basename(os.path.dirname(filename)).startswith("ipykernel_") and filename.endswith(".py"))


def _qualified(operator: str) -> tuple[str, str]:
    """``(namespace, name)`` of ``"convolution"`` (ATen) or ``"quantized::conv2d"``."""
    namespace, _, name = operator.rpartition("::")
    return namespace or "aten", name


def _blocker(operator: str, rule: str):
    namespace, name = _qualified(operator)
    message = f"{namespace}::{name} is switched off in this grading kernel: {rule}"

    def blocked(*args, **kwargs):
        raise RuntimeError(message)

    return blocked


def _block_operators(torch, operators, rule: str) -> list:
    """Override every value-computing kernel of ``operators``; returns what keeps the overrides alive."""
    import warnings
    import weakref

    libraries, blocked = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "overriding a previously registered kernel" is the point
        for operator in operators:
            namespace, name = _qualified(operator)
            try:
                keys = [k for k in VALUE_KEYS
                        if torch._C._dispatch_has_kernel_for_dispatch_key(f"{namespace}::{name}", k)]
            except RuntimeError:   # an operator this torch does not have
                continue
            if namespace not in libraries:
                libraries[namespace] = torch.library.Library(namespace, "IMPL")
            for key in keys:
                libraries[namespace].impl(name, _blocker(operator, rule), key)
            blocked.append(operator)
    # A library's finalizer would undo the overrides; it is reachable from weakref.finalize's
    # registry, so detach it: the overrides then live exactly as long as this process.
    ours = [id(library) for library in libraries.values()]
    for finalizer in list(getattr(weakref.finalize, "_registry", {})):
        info = weakref.finalize._registry.get(finalizer)
        if info is not None and id(info.weakref()) in ours:
            finalizer.detach()
    return [libraries, blocked]


def _remove_decompositions(operators, rule: str) -> set:
    """Drop torch's Python decompositions of ``operators``; returns the source files not to re-run."""
    try:
        import torch._decomp as decomp
        import torch._decomp.decompositions as decompositions
    except ImportError:
        return set()
    names = {"::".join(_qualified(op)) for op in operators}

    def packet(overload) -> str:   # "aten::im2col" for im2col.default and im2col.out alike
        return str(getattr(overload, "name", lambda: "")()).split(".")[0]

    tables = [getattr(decomp, "decomposition_table", {})]
    tables += list(getattr(decomp, "global_decomposition_table", {}).values())
    for table in tables:
        for overload in [o for o in table if packet(o) in names]:
            del table[overload]
    for operator in operators:
        namespace, name = _qualified(operator)
        if namespace == "aten" and callable(getattr(decompositions, name, None)):
            setattr(decompositions, name, _blocker(operator, rule))
    return {os.path.realpath(m.__file__) for m in (decomp, decompositions) if getattr(m, "__file__", None)}


def _audit_hook(keep_alive, protected_files):
    """The hook: refuses REFUSED_EVENTS after the first notebook cell, and re-running ``protected_files``."""
    state = {"armed": False, "keep": keep_alive}
    realpath = os.path.realpath

    def hook(event, args):
        if event == "compile" and not state["armed"] and len(args) > 1 and _is_notebook_cell(args[1]):
            state["armed"] = True
        elif event == "exec" and args and protected_files:
            filename = getattr(args[0], "co_filename", None)
            if isinstance(filename, str) and realpath(filename) in protected_files:
                raise GuardRefused(f"Re-running {os.path.basename(filename)} is not allowed in a grading kernel.")
        elif state["armed"] and event in REFUSED_EVENTS:
            raise GuardRefused(f"{REFUSED_EVENTS[event].capitalize()} is not allowed in a grading kernel "
                               f"({event}). Your code runs here only to compute what your functions return.")

    return hook


def install(blocked_operators=(), rule: str = "this exercise asks you to write it yourself.") -> None:
    """Block ``blocked_operators`` (ATen names such as ``"convolution"``) and add the audit hook."""
    keep_alive, protected = [], set()
    if blocked_operators:
        import torch

        keep_alive = _block_operators(torch, tuple(blocked_operators), rule)
        protected = _remove_decompositions(tuple(blocked_operators), rule)
    sys.addaudithook(_audit_hook(keep_alive, protected))


def install_from_environment() -> None:
    """Install as ``SEGEDU_KERNEL_GUARD`` (JSON: ``{"blocked_operators": [...], "rule": "..."}``) says.

    A guard that cannot be installed stops the interpreter: a kernel without it must not grade.
    """
    raw = os.environ.get(ENVIRONMENT_VARIABLE)
    if not raw:
        return
    try:
        config = json.loads(raw)
        install(tuple(config.get("blocked_operators", ())), str(config.get("rule") or "")
                or "this exercise asks you to write it yourself.")
    except BaseException as error:   # fail closed
        sys.stderr.write(f"segedu grading kernel guard could not be installed: {error!r}\n")
        sys.stderr.flush()
        os._exit(70)
