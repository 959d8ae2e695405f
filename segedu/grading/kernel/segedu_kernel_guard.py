"""What a sandboxed grading kernel sets up before any student code runs.

Some exercises forbid a peer that the sandbox cannot hide, because it lives inside a package that
answers need: exercise 07 forbids torch's max-unpooling, exercise 08 every convolution, and both
need torch. The tripwire (``segedu_tripwire``) catches a call into such a peer while the student's
function runs, but it lives in the student's own process and only sees Python frames and builtin
calls: a student who switches it off, replaces the kernel runner, or calls a C++ operator handle
directly is not seen. This guard removes the peers instead, at interpreter start
(``sitecustomize`` beside this file imports it when the sandbox sets ``SEGEDU_KERNEL_GUARD``):

1. **Operators are blocked in torch's dispatcher.** The exercise names them by pattern (a regular
   expression matched against ``namespace::name``, e.g. ``aten::.*conv.*``), so operators that a
   hand-written list would miss are caught too. Every overload of every matching operator
   (``im2col`` and ``im2col.out`` alike) has each of its value kernels (CPU, MKL-DNN, quantized and
   the composite kernels that decompose it) overridden with one that raises ``RuntimeError`` naming
   the exercise's rule. ``F.conv2d``, ``nn.Conv2d``, ``torch.ops``, an operator handle from
   ``torch._C``, ``redispatch``, TorchScript and MKL-DNN tensors all end in those kernels. The
   registrations are held only in this module's closures, with their finalizers detached.
2. **torch's Python decompositions of those operators are removed** (``torch._decomp``), and so are
   other functions the exercise names (``numpy``'s C correlation behind ``np.convolve`` and
   ``np.correlate``): every alias in a loaded module is replaced. Re-executing their source files is
   refused, so a reload cannot bring them back, and from the first cell on so is opening them, their
   cached bytecode, or anything in torch's packages of Python kernels (``torch._decomp``,
   ``torch._refs``, ``torch._prims``, ``torch._inductor``), so that a cell cannot read their code
   through Python's files (``open``, ``inspect``, ``linecache``, numpy's readers) and compile it again
   under another name. Native readers raise no audit event: ``torch.UntypedStorage.from_file`` (whose
   type cannot be patched) and libc through ``ctypes`` still read any file the sandbox shows.
3. **An audit hook (PEP 578), which cannot be removed once added, refuses** from the first notebook
   cell on ``gc`` object searches and starting programs. At that moment the guard also installs a
   seccomp filter (Linux, x86-64 and AArch64) that makes ``execve`` fail for every thread of the
   kernel and every process it forks, so no fresh, unguarded interpreter can start: not through
   ``multiprocessing``'s spawn, not through ``ctypes``' ``system``, not with ``python -I``.
   Loading libraries stays allowed: ``import ctypes``, scipy and torchvision do it, and honest
   notebooks import those.

None of this judges anything: the verdict is still computed outside the kernel. It only makes the
forbidden peers unavailable to the student's code, whatever that code patches. What it does not stop
is an exploit of the interpreter itself (writing process memory through ``ctypes`` to undo the
registrations), a native read of torch's sources (point 2), or their code pasted into a cell; the
similarity check and the instructor's review are the answer to those.

The file is standalone (stdlib; torch and the named modules only when something is blocked), like
the runner beside it.
"""

from __future__ import annotations

import json
import os
import re
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
#: (audit architecture, execve and execveat numbers, seccomp number) by machine
_SECCOMP_ARCHES = {"x86_64": (0xC000003E, (59, 322), 317), "aarch64": (0xC00000B7, (221, 281), 277)}


class GuardRefused(PermissionError):
    """An operation a grading kernel does not allow (raised by the audit hook)."""


def _is_notebook_cell(filename) -> bool:
    """Whether ``compile`` is compiling a notebook cell (IPython's or ipykernel's cell file names)."""
    if not isinstance(filename, str):
        return False
    return filename.startswith("<ipython-input-") or (
        os.path.basename(os.path.dirname(filename)).startswith("ipykernel_") and filename.endswith(".py"))


def _blocker(what: str, rule: str):
    message = f"{what} is switched off in this grading kernel: {rule}"

    def blocked(*args, **kwargs):
        raise RuntimeError(message)

    return blocked


def matching_operators(torch, patterns) -> list[str]:
    """Every registered ``namespace::name.overload`` whose ``namespace::name`` fully matches a pattern.

    A pattern without ``::`` means ATen (``"convolution"`` is ``aten::convolution``).
    """
    compiled = [re.compile(p if "::" in p else f"aten::{p}") for p in patterns]
    found = []
    for full in torch._C._dispatch_get_all_op_names():
        if any(p.fullmatch(full.split(".")[0]) for p in compiled):
            found.append(full)
    return sorted(found)


def _block_operators(torch, patterns, rule: str) -> list:
    """Override every value kernel of every overload matching ``patterns``; returns what keeps them alive."""
    import warnings
    import weakref

    libraries, blocked = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "overriding a previously registered kernel" is the point
        for full in matching_operators(torch, patterns):
            namespace, _, name = full.partition("::")
            keys = [k for k in VALUE_KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(full, k)]
            if not keys:
                continue
            if namespace not in libraries:
                libraries[namespace] = torch.library.Library(namespace, "IMPL")
            for key in keys:
                libraries[namespace].impl(name, _blocker(full, rule), key)
            blocked.append(full)
    # A library's finalizer would undo the overrides; it is reachable from weakref.finalize's
    # registry, so detach it: the overrides then live exactly as long as this process.
    ours = [id(library) for library in libraries.values()]
    for finalizer in list(getattr(weakref.finalize, "_registry", {})):
        info = weakref.finalize._registry.get(finalizer)
        if info is not None and id(info.weakref()) in ours:
            finalizer.detach()
    return [libraries, blocked]


def _remove_decompositions(patterns, rule: str) -> set:
    """Drop torch's Python decompositions of the matching operators; returns the source files not to re-run."""
    try:
        import torch._decomp as decomp
        import torch._decomp.decompositions as decompositions
    except ImportError:
        return set()
    compiled = [re.compile(p if "::" in p else f"aten::{p}") for p in patterns]

    def matches(overload) -> bool:   # "aten::im2col" for im2col.default and im2col.out alike
        return any(p.fullmatch(str(getattr(overload, "name", lambda: "")()).split(".")[0]) for p in compiled)

    tables = [getattr(decomp, "decomposition_table", {})]
    tables += list(getattr(decomp, "global_decomposition_table", {}).values())
    for table in tables:
        for overload in [o for o in table if matches(o)]:
            del table[overload]
    for name, value in list(vars(decompositions).items()):
        if callable(value) and any(p.fullmatch(f"aten::{name}") for p in compiled):
            setattr(decompositions, name, _blocker(f"aten::{name}", rule))
    return {os.path.realpath(m.__file__) for m in (decomp, decompositions) if getattr(m, "__file__", None)}


def _block_functions(functions, rule: str) -> set:
    """Replace each ``"module:name"`` function, under every alias in a loaded module; returns their modules' files."""
    import importlib

    protected = set()
    for spec in functions:
        module_name, _, name = spec.partition(":")
        module = importlib.import_module(module_name)
        if "." in name:   # "Class.method": replaced on the class itself, for every alias and subclass at once
            owner_name, _, attribute = name.rpartition(".")
            owner = module
            for part in owner_name.split("."):
                owner = getattr(owner, part)
            setattr(owner, attribute, _blocker(f"{module_name}.{name}", rule))
            source = getattr(module, "__file__", None)
            if isinstance(source, str) and source.endswith(".py"):
                protected.add(os.path.realpath(source))
            continue
        original = getattr(module, name)
        blocker = _blocker(f"{module_name}.{name}", rule)
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for alias, value in list(namespace.items()):
                if value is original:
                    setattr(module, alias, blocker)
                    source = getattr(module, "__file__", None)
                    if isinstance(source, str) and source.endswith(".py"):
                        protected.add(os.path.realpath(source))
    return protected


def _seccomp_without_exec(libc) -> None:
    """Make ``execve``/``execveat`` fail with EPERM for every thread, now and in every fork; irrevocable."""
    import ctypes
    import platform
    import struct

    machine = platform.machine()
    if machine not in _SECCOMP_ARCHES:
        return
    arch, (execve, execveat), seccomp = _SECCOMP_ARCHES[machine]
    load, equal, at_least, answer = 0x20, 0x15, 0x35, 0x06   # BPF: ld [k]; jeq; jge; ret
    allow, refuse = 0x7FFF0000, 0x00050000 | 1                # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM

    def op(code, k, jump_true=0, jump_false=0):
        return struct.pack("HBBI", code, jump_true, jump_false, k)

    program = [op(load, 4), op(equal, arch, 1, 0), op(answer, refuse), op(load, 0)]
    if machine == "x86_64":   # the x32 numbering sets bit 30: refuse all of it
        program += [op(at_least, 0x40000000, 0, 1), op(answer, refuse)]
    program += [op(equal, execve, 2, 0), op(equal, execveat, 1, 0), op(answer, allow), op(answer, refuse)]
    code = ctypes.create_string_buffer(b"".join(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.cast(code, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:   # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    # SECCOMP_SET_MODE_FILTER with SECCOMP_FILTER_FLAG_TSYNC: every thread of the kernel, not just this one
    if libc.syscall(seccomp, 1, 1, ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")


#: torch's packages of Python operator implementations (decompositions, references, primitives, the
#: compiler's decompositions, torch.onnx's Python versions of ONNX operators such as Attention-23), relative
#: to torch's folder: what a student could rebuild an operator from
TORCH_PYTHON_KERNELS = ("_decomp", "_refs", "_prims", "_prims_common", "_inductor", "onnx")


def _unreadable(torch, protected_files) -> tuple:
    """Path prefixes a notebook may not open: the protected files, their cached bytecode, torch's kernel packages.

    Refusing to re-run a file is not enough: its source (or its ``__pycache__`` bytecode, loaded with
    ``marshal``) can be compiled under another name, with the blocked helpers put back.
    """
    prefixes = []
    for path in protected_files:
        folder, name = os.path.split(path)
        prefixes += [path, os.path.join(folder, "__pycache__", os.path.splitext(name)[0] + ".")]
    if torch is not None:
        root = os.path.dirname(os.path.realpath(torch.__file__))
        prefixes += [os.path.join(root, package) + os.sep for package in TORCH_PYTHON_KERNELS]
        prefixes += [os.path.join(root, package) + ".py" for package in TORCH_PYTHON_KERNELS]
    return tuple(prefixes)


def _audit_hook(keep_alive, protected_files, on_arm, unreadable=()):
    """The hook: refuses REFUSED_EVENTS after the first notebook cell, re-running ``protected_files``,
    and, once armed, opening what starts with one of the ``unreadable`` prefixes."""
    state = {"armed": False, "keep": keep_alive}
    realpath = os.path.realpath

    def hook(event, args):
        if event == "compile" and not state["armed"] and len(args) > 1 and _is_notebook_cell(args[1]):
            state["armed"] = True
            try:
                on_arm()
            except BaseException as error:   # fail closed: a kernel without its guard must not grade
                sys.stderr.write(f"segedu grading kernel guard could not be armed: {error!r}\n")
                sys.stderr.flush()
                os._exit(70)
        elif event == "exec" and args and protected_files:
            filename = getattr(args[0], "co_filename", None)
            if isinstance(filename, str) and realpath(filename) in protected_files:
                raise GuardRefused(f"Re-running {os.path.basename(filename)} is not allowed in a grading kernel.")
        elif state["armed"] and event == "open" and unreadable and args and isinstance(args[0], (str, bytes)):
            path = realpath(os.fsdecode(args[0]))
            if path.startswith(unreadable):
                raise GuardRefused(f"Reading {os.path.basename(path)} is not allowed in a grading kernel: it holds "
                                   f"what this exercise asks you to write yourself.")
        elif state["armed"] and event in REFUSED_EVENTS:
            raise GuardRefused(f"{REFUSED_EVENTS[event].capitalize()} is not allowed in a grading kernel "
                               f"({event}). Your code runs here only to compute what your functions return.")

    return hook


def install(blocked_operators=(), blocked_functions=(), rule: str = "this exercise asks you to write it yourself.",
            forbid_exec: bool = True) -> None:
    """Block the operators matching ``blocked_operators`` and the ``blocked_functions``, then add the audit hook.

    With ``forbid_exec``, the first notebook cell also installs the seccomp filter against ``execve``.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)   # loaded now: the hook must not need to load anything
    keep_alive, protected, torch = [libc], set(), None
    if blocked_operators:
        import torch

        if any(pattern.startswith("torchvision::") for pattern in blocked_operators):
            # torchvision registers its operators (torchvision::roi_align, ...) when it is imported:
            # only then can they be found and overridden
            import torchvision  # noqa: F401

        keep_alive.append(_block_operators(torch, tuple(blocked_operators), rule))
        protected |= _remove_decompositions(tuple(blocked_operators), rule)
    if blocked_functions:
        protected |= _block_functions(tuple(blocked_functions), rule)

    def on_arm():
        if forbid_exec:
            _seccomp_without_exec(libc)

    sys.addaudithook(_audit_hook(keep_alive, frozenset(protected), on_arm, _unreadable(torch, protected)))


def install_from_environment() -> None:
    """Install as ``SEGEDU_KERNEL_GUARD`` says (JSON: ``{"blocked_operators": [...],
    "blocked_functions": [...], "rule": "..."}``).

    A guard that cannot be installed stops the interpreter: a kernel without it must not grade.
    """
    raw = os.environ.get(ENVIRONMENT_VARIABLE)
    if not raw:
        return
    try:
        config = json.loads(raw)
        install(tuple(config.get("blocked_operators", ())), tuple(config.get("blocked_functions", ())),
                str(config.get("rule") or "") or "this exercise asks you to write it yourself.",
                forbid_exec=bool(config.get("forbid_exec", True)))
    except BaseException as error:   # fail closed
        sys.stderr.write(f"segedu grading kernel guard could not be installed: {error!r}\n")
        sys.stderr.flush()
        os._exit(70)
