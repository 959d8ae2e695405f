"""``make lab``: JupyterLab on the course folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def lab(root: Path, extra: list[str]) -> int:
    """Start JupyterLab in ``root`` with this interpreter's tools first on PATH; ``extra`` goes to JupyterLab."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", *extra], cwd=root, env=env)
