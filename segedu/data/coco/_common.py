"""What the COCO modules share: the one way to keep pycocotools quiet, and the dataset layout.

pycocotools talks to stdout (``COCO(path)`` prints "loading annotations into memory...",
"creating index...", ``loadRes`` and ``COCOeval`` print their progress), and pycocotools <= 2.0.11
under numpy 2 warns on every mask decode ("__array__ implementation doesn't accept a copy keyword").
The results are correct, so the course keeps both out of students' output with
:func:`quiet_pycocotools`, and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

from ..._validation import SegeduInputError

__all__ = ["quiet_pycocotools"]

#: The message of the DeprecationWarning that pycocotools <= 2.0.11 raises under numpy 2.
PYCOCOTOOLS_NUMPY2_WARNING = "__array__ implementation doesn't accept a copy keyword"

# The layout of fiftyone.types.COCODetectionDataset: root/<split>/labels.json, root/<split>/data/.
LABELS = "labels.json"
MISSING_FILE_HINT = (
    "create the offline dataset with segedu.data.write_coco_instances(root) "
    "or set USE_REAL_COCO=True in Colab"
)
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@contextlib.contextmanager
def quiet_pycocotools(stdout: bool = True):
    """Silence pycocotools inside the block: its numpy-2 DeprecationWarning and its progress prints.

    With ``stdout=False`` only the warning is silenced, so the block may print (use that to quiet a
    whole notebook, e.g. ``stack.enter_context(quiet_pycocotools(stdout=False))``). Other warnings
    and output are untouched, and everything is restored on exit.

    >>> from pycocotools.coco import COCO
    >>> with quiet_pycocotools():
    ...     coco = COCO()
    ...     coco.createIndex()  # would print "creating index..." and "index created!"
    >>> len(coco.getImgIds())
    0
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PYCOCOTOOLS_NUMPY2_WARNING, category=DeprecationWarning)
        if stdout:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        else:
            yield


def mask_utils():
    """``pycocotools.mask``, imported when first needed."""
    from pycocotools import mask

    return mask


def check_split(split) -> str:
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise SegeduInputError(
            f"split must be a folder name of letters, digits, '_' or '-', such as 'val' or 'train', "
            f"but got {split!r}."
        )
    return split
