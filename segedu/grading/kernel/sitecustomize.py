"""Run by Python at start-up wherever this folder is on PYTHONPATH: a sandboxed grading kernel.

It installs the kernel guard (``segedu_kernel_guard``) when the sandbox asks for it with
``SEGEDU_KERNEL_GUARD``, before the kernel, and so before any student code, runs. Elsewhere it does
nothing.
"""

import os

if os.environ.get("SEGEDU_KERNEL_GUARD"):
    import segedu_kernel_guard

    segedu_kernel_guard.install_from_environment()
