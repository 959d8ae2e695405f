"""Checkpoints of unit 07 (registered into segedu.models.checkpoint.REGISTRY on import)."""

from __future__ import annotations
