"""Labels and classes: the one owner of what class each object is, and of the class list.

Every writer and dataset (COCO, YOLO, Hugging Face, crops, ``DetectionDataset``,
``CropDataset``) takes its labels and classes from here, so they agree:

- :func:`object_labels`: each object's raw label, from a column of the objects table
  (``label`` by default) or ``"tag:KEY"`` (its media's one value of that tag,
  :func:`tag_labels`);
- :func:`map_labels`: ``label_map`` (rename or merge; a label mapped to None is left
  out), then ``include_unlabeled`` (objects without a label become :data:`UNLABELED`),
  then the ``classes`` allow-list, each row left out with its reason;
- :func:`check_classes` and :func:`class_list`: the classes in index order (as given, or
  the sorted labels kept); a class's index is its position (COCO ``category_id`` is that
  plus one, YOLO's class and Hugging Face's ``ClassLabel`` are that);
- :func:`write_labels`: ``labels.json`` beside every dataset.

Example:
    >>> map_labels(["kitty", "dog", None], label_map={"kitty": "cat"}, classes=["cat"])
    (['cat', None, None], {1: "label 'dog' is not among classes=", 2: 'no label (include_unlabeled=True keeps it)'})
    >>> class_list(["b", None, "a", "b"])
    ['a', 'b']
"""  # noqa: E501

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from coreviz_frames._util.fileio import atomic_write_bytes
from coreviz_frames.errors import ConfigError
from coreviz_frames.images.crop_plan import column, present

__all__ = [
    "LABELS_FILE",
    "UNLABELED",
    "check_classes",
    "class_index",
    "class_list",
    "map_labels",
    "object_labels",
    "write_labels",
]

#: The class of objects without a label, with ``include_unlabeled=True``.
UNLABELED = "_unlabeled"
#: Written beside every dataset: the classes in index order and how labels were mapped.
LABELS_FILE = "labels.json"


def check_classes(classes: Any, what: str = "classes") -> tuple[str, ...] | None:
    """``classes`` as a tuple of distinct names (None stays None); else a ``ConfigError``.

    Example:
        >>> check_classes(["cat", "dog"])
        ('cat', 'dog')
        >>> check_classes("cat")
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: classes must be a list of distinct names, got 'cat'
    """
    if classes is None:
        return None
    if isinstance(classes, str | bytes) or not isinstance(classes, Sequence | set | frozenset):
        raise ConfigError(f"{what} must be a list of distinct names, got {classes!r}")
    names = tuple(str(c) for c in classes)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"{what} must be a list of distinct names, got {classes!r}")
    return names


def class_list(labels: Sequence[str | None], classes: Sequence[str] | None = None) -> list[str]:
    """The classes in index order: ``classes`` when given, else the sorted distinct labels.

    Example:
        >>> class_list(["b", "a"], classes=["b", "a", "c"])
        ['b', 'a', 'c']
    """
    if classes is not None:
        return list(classes)
    return sorted({label for label in labels if label is not None})


def class_index(classes: Sequence[str]) -> dict[str, int]:
    """``{class: index}``: a class's index is its position (torchvision's ``class_to_idx``;
    COCO's ``category_id`` is the index plus one).

    Example:
        >>> class_index(["cat", "dog"])
        {'cat': 0, 'dog': 1}
    """
    return {name: i for i, name in enumerate(classes)}


def tag_labels(objects: pd.DataFrame, tags: Any, key: str) -> list[str | None]:
    """Each object's media's value of tag ``key``; None when it has none or several.

    Example:
        >>> objs = pd.DataFrame({"media_id": ["m1", "m2", "m3"]})
        >>> tags = pd.DataFrame({"media_id": ["m1", "m2", "m2"], "key": ["color"] * 3,
        ...                      "value": ["red", "red", "blue"]})
        >>> tag_labels(objs, tags, "color")
        ['red', None, None]
    """
    if not key:
        raise ConfigError("label 'tag:' needs a tag key, as in 'tag:color'")
    if not isinstance(tags, pd.DataFrame) or not {"media_id", "key", "value"} <= set(tags):
        raise ConfigError(f"label 'tag:{key}' needs the tags table (pass MediaTables)")
    rows = tags[tags["key"] == key]
    values: dict[str, set[str]] = {}
    for mid, value in zip(rows["media_id"].tolist(), rows["value"].tolist(), strict=True):
        if present(value):
            values.setdefault(str(mid), set()).add(str(value))
    single = {m: next(iter(v)) for m, v in values.items() if len(v) == 1}
    return [single.get(str(m)) for m in column(objects, "media_id")]


def object_labels(
    objects: pd.DataFrame, label: str = "label", tags: Any = None
) -> list[str | None]:
    """Each object's raw label: the column ``label``, or ``"tag:KEY"`` (:func:`tag_labels`).

    Example:
        >>> object_labels(pd.DataFrame({"type": ["face", None]}), "type")
        ['face', None]
    """
    if label.startswith("tag:"):
        return tag_labels(objects, tags, label[4:])
    if label not in objects.columns:
        raise ConfigError(f"no column {label!r} in the objects table")
    return [str(v) if present(v) else None for v in objects[label].tolist()]


def map_labels(
    labels: Sequence[str | None],
    *,
    label_map: Mapping[str, str | None] | None = None,
    include_unlabeled: bool = False,
    classes: Sequence[str] | None = None,
) -> tuple[list[str | None], dict[int, str]]:
    """Each row's class (None: left out) and ``{row position: why it is left out}``.

    ``label_map`` first, then ``include_unlabeled``, then the ``classes`` allow-list.

    Example:
        >>> map_labels([None], include_unlabeled=True)
        (['_unlabeled'], {})
    """
    mapping = label_map or {}
    allowed = None if classes is None else set(classes)
    out: list[str | None] = []
    reasons: dict[int, str] = {}
    for pos, label in enumerate(labels):
        value = mapping.get(label, label) if label is not None else None
        if label is not None and value is None:
            reasons[pos] = f"label {label!r} is mapped to None by label_map="
        elif value is None and not include_unlabeled:
            reasons[pos] = "no label (include_unlabeled=True keeps it)"
        elif value is None:
            value = UNLABELED
        if value is not None and allowed is not None and value not in allowed:
            reasons[pos] = f"label {value!r} is not among classes="
            value = None
        out.append(value if pos not in reasons else None)
    return out, reasons


def write_labels(
    out: Path, classes: Sequence[str], options: Mapping[str, Any], **extra: Any
) -> str:
    """``labels.json``: the classes in index order, the label map, the dataset ``options``
    (JSON-ready, as ``DatasetOptions.to_dict`` gives them) and ``extra``; its name.

    Example:
        >>> import tempfile
        >>> write_labels(Path(tempfile.mkdtemp()), ["cat"], {"label_map": {"kitty": "cat"}})
        'labels.json'
    """
    doc = {
        "classes": list(classes),
        "label_map": dict(options.get("label_map") or {}),
        "include_unlabeled": bool(options.get("include_unlabeled", False)),
        "options": dict(options),
        **extra,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    atomic_write_bytes(out / LABELS_FILE, text.encode("utf-8", "surrogatepass"))
    return LABELS_FILE
