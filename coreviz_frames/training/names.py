"""The names of the files and folders a dataset writes: one safe name per label, frame or split.

Labels, frame ids and split names come from the collection (untrusted). :func:`safe_name`
turns any of them into a name that cannot climb out of the dataset folder, hide
(dots-only) or be reserved on Windows; the crop, COCO, YOLO and split code all use it,
so one label gets one folder name everywhere.

Example:
    >>> safe_name("../etc/passwd"), safe_name("chien / dog"), safe_name(None)
    ('etc_passwd', 'chien _ dog', '_unlabeled')
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from coreviz_frames.images.crop_plan import present

__all__ = ["safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}


def safe_name(text: Any, *, fallback: str = "_unlabeled", max_len: int = 100) -> str:
    """A file or directory name made from ``text``: no separators, dots-only or reserved names.

    Example:
        >>> safe_name("CON"), safe_name("", fallback="frame")
        ('CON_a3dbc4b6', 'frame')
    """
    if not present(text):
        return fallback
    name = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip(" ._")
    name = re.sub(r"_+", "_", name)[:max_len].strip(" .")
    if not name or name.upper().split(".")[0] in _RESERVED:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        name = f"{name or 'label'}_{digest}"
    return name
