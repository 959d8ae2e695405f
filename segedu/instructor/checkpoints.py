"""``make checkpoints``: retrain the shipped checkpoints from their recipes and record their provenance.

For each :class:`segedu.models.checkpoint.CheckpointSpec` (all of them, or those named), this
runs the recipe with the recorded seed on the CPU with one torch thread (reproducible to the bit on
one machine), rounds the weights to the storage dtype, evaluates the *rounded* network on the
regenerated validation data, and, only if the metric reaches the target and the file is small
enough, writes ``<name>.pt`` and ``<name>.json`` into the package's checkpoint folder (or
``--out``). Nothing is written for a checkpoint that misses its target: the command then exits
with status 1, and the old files stay.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import io
import json
import platform
import sys
import time
from pathlib import Path


def retrain(spec, folder: Path, threads: int = 1, progress: bool = False) -> dict:
    """Train one checkpoint from its recipe and write its files; return its provenance.

    Raises ``RuntimeError`` (and writes nothing) if the metric misses the target or the weights
    file would be larger than ``MAX_BYTES``.
    """
    import torch

    import segedu
    from segedu.models import checkpoint as ck

    recipe = ck._resolve(spec.recipe)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        model = recipe(seed=spec.seed, progress=progress, **spec.options)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    # the recipe's network must be the spec's architecture, so that load_checkpoint can rebuild it
    fresh = ck.build_architecture(spec)
    fresh.load_state_dict(model.state_dict(), strict=True)
    rounded = ck.round_to_storage(model)
    metrics = ck.evaluate_checkpoint(spec, rounded)
    value = float(metrics[spec.metric])
    if not value >= spec.target:
        raise RuntimeError(f"{spec.name}: {spec.metric} {value:.4f} is below its target {spec.target}; nothing written.")
    buffer = io.BytesIO()
    torch.save(ck.storable_state(model), buffer)
    raw = buffer.getvalue()
    if len(raw) > ck.MAX_BYTES:
        raise RuntimeError(f"{spec.name}: {len(raw)} bytes is over the {ck.MAX_BYTES}-byte limit; nothing written.")
    module = sys.modules[recipe.__module__]
    script = Path(inspect.getsourcefile(module)).resolve()
    package_root = Path(segedu.__file__).resolve().parent.parent
    try:
        script_name = script.relative_to(package_root).as_posix()
    except ValueError:
        script_name = script.name
    provenance = {
        "name": spec.name,
        "unit": spec.unit,
        "description": spec.description,
        "recipe": spec.recipe,
        "script": script_name,
        "command": f"python -m segedu.instructor checkpoints {spec.name}",
        "seed": spec.seed,
        "options": spec.options,
        "data": spec.data,
        "architecture": spec.architecture,
        "metric": spec.metric,
        "target": spec.target,
        "value": value,
        "metrics": metrics,
        "weights": f"{spec.name}.pt",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": len(raw),
        "storage_dtype": ck.STORAGE_DTYPE,
        "torch": torch.__version__,
        "segedu": segedu.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "device": "cpu",
        "threads": threads,
        "train_seconds": round(seconds, 1),
    }
    missing = set(ck.PROVENANCE_KEYS) - set(provenance)
    assert not missing, f"provenance lacks {sorted(missing)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / provenance["weights"]).write_bytes(raw)
    (folder / f"{spec.name}.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    return provenance


def checkpoints(names: list[str] | None = None, out: Path | None = None, threads: int = 1,
                progress: bool = False) -> int:
    """Retrain the named checkpoints (default: all) and print one line each; 0 if all were written."""
    from segedu.models import checkpoint as ck

    names = list(names) if names else ck.checkpoint_names()
    specs = [ck.get_spec(name) for name in names]  # unknown names fail before any training
    folder = Path(out) if out else ck.package_folder()
    print(f"retraining {len(specs)} checkpoint(s) into {folder} (CPU, {threads} thread(s))", flush=True)
    failed = 0
    for spec in specs:
        try:
            p = retrain(spec, folder, threads=threads, progress=progress)
        except RuntimeError as error:
            failed += 1
            print(f"FAILED {error}", flush=True)
            continue
        print(f"{spec.name:<22} {spec.metric} {p['value']:.4f} (target >= {spec.target})  "
              f"{p['bytes'] / 1024:7.1f} KiB  trained in {p['train_seconds']:.1f} s", flush=True)
    return 1 if failed else 0
