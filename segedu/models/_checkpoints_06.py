"""Checkpoints of unit 06 (registered into segedu.models.checkpoint.REGISTRY on import)."""

from __future__ import annotations
