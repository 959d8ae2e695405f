"""Detect answers that delegate to a reference implementation.

The course's references and the libraries an exercise re-implements are public, so an answer could
simply call them. Patching the module attribute would not catch ``from segedu.metrics import
confusion_matrix as cm`` (the alias keeps the original function), so instead we watch *execution*:
while the student's function runs, a profile hook sees every Python frame that starts and every C
function that is called, and records the first one that belongs to a forbidden module. Aliases,
wrappers, lambdas and imports inside the function all end up executing the same code, so they are
all caught.

This file is standalone (it imports nothing of segedu) and lives beside the kernel runner, so that a
sandboxed grading kernel, which cannot import segedu, still has it on its PYTHONPATH: there it
watches the peers that the sandbox cannot hide (exercise 07 forbids torch's unpooling kernel, not
torch). Outside the kernel it is :mod:`segedu.grading._tripwire`.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ForbiddenCall:
    module: str
    function: str

    def __str__(self) -> str:
        return f"{self.module}.{self.function}"


def _matches(module: str, prefixes, function: str = "") -> bool:
    """Whether ``module`` lies under a forbidden prefix, or ``module.function`` is a forbidden name:
    a prefix may name one function of a module whose other functions stay allowed
    (``torch._C._nn.max_unpool2d``, while ``torch._C._nn.pad`` is fine)."""
    names = (module, f"{module}.{function}") if function else (module,)
    return any(name == p or name.startswith(p + ".") for name in names for p in prefixes)


def _module_name(value) -> str:
    """A module's name as a string: some C extensions set ``__module__`` to the module object itself."""
    if isinstance(value, str):
        return value
    name = getattr(value, "__name__", None)
    return name if isinstance(name, str) else ""


class Tripwire:
    """Context manager that records the first call into any of the forbidden module prefixes (or functions)."""

    def __init__(self, forbidden_prefixes):
        self.prefixes = tuple(forbidden_prefixes)
        self.hit: ForbiddenCall | None = None
        self.tampered = False
        self._previous = None
        self._previous_threading = None

    def _hook(self, frame, event, arg):
        if self.hit is not None:
            return
        if event == "call":
            module = _module_name(frame.f_globals.get("__name__"))
            if _matches(module, self.prefixes, frame.f_code.co_name):
                self.hit = ForbiddenCall(module, frame.f_code.co_name)
        elif event == "c_call":
            module = _module_name(getattr(arg, "__module__", None))
            function = getattr(arg, "__name__", "?")
            if _matches(module, self.prefixes, function if isinstance(function, str) else "?"):
                self.hit = ForbiddenCall(module, function)

    def __enter__(self):
        self._previous = sys.getprofile()
        self._previous_threading = threading.getprofile()
        self._bound = self._hook  # one bound-method object, so the identity check below works
        threading.setprofile(self._bound)
        sys.setprofile(self._bound)
        return self

    def __exit__(self, *exc):
        # An answer that switches the hook off cannot be checked, so that counts against it.
        self.tampered = sys.getprofile() is not self._bound
        sys.setprofile(self._previous)
        threading.setprofile(self._previous_threading)
        return False
