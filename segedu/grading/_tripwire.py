"""Detect answers that delegate to a reference implementation: see ``kernel/segedu_tripwire.py``.

The implementation is a standalone file beside the grading kernel's runner, because a sandboxed
kernel cannot import segedu but must watch for calls into a peer it cannot hide. This module loads
that one file, so the checks in a test cell and in a grading kernel are the same code.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["Tripwire", "ForbiddenCall"]


def _load():
    name = "segedu_tripwire"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).resolve().with_name("kernel") / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up in sys.modules
        spec.loader.exec_module(module)
    return module


_module = _load()
Tripwire = _module.Tripwire
ForbiddenCall = _module.ForbiddenCall
_matches = _module._matches
del _module
