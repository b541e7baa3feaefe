"""The folder a dataset is written to: never two runs mixed, never half a dataset.

:func:`dataset_folder` is the one way a dataset writer (COCO, YOLO, Hugging Face,
crops) gets its folder:

- a folder that holds anything is refused unless ``overwrite=True``, and a Parquet
  export (it has ``_coreviz_manifest.json``) is always refused, so a writer never
  merges with an earlier run or clobbers an export;
- the dataset is built in a hidden sibling folder (``.<name>.tmp-<pid>-<random>``);
  only when it is complete is it renamed into place, the old folder moved aside
  first and removed after. A failure or a kill half-way leaves the old dataset whole
  (and at most a hidden sibling to delete); a success leaves no file of the old one.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "coco"
    >>> with dataset_folder(out) as (stage, final):
    ...     _ = (stage / "a.txt").write_text("new")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from coreviz_frames.errors import ExportError
from coreviz_frames.exports.manifest import MANIFEST_NAME as EXPORT_MANIFEST

__all__ = ["check_dataset_folder", "dataset_folder", "make_dir"]


def check_dataset_folder(out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """``out_dir`` as a path, if a dataset may be written there; else an ``ExportError``.

    Example:
        >>> import tempfile
        >>> check_dataset_folder(tempfile.mkdtemp()).is_dir()
        True
    """
    out = Path(out_dir).expanduser()
    if out.name in ("", ".", ".."):
        out = out.resolve()
    if out.is_symlink():
        raise ExportError(f"{out} is a symbolic link: give the folder itself", path=str(out))
    if not out.exists():
        return out
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder", path=str(out))
    if (out / EXPORT_MANIFEST).exists():
        raise ExportError(
            f"{out} is a Parquet export ({EXPORT_MANIFEST}): write the dataset to another "
            "folder (it is read from the export, never written into it)",
            path=str(out),
        )
    if not overwrite and any(out.iterdir()):
        raise ExportError(
            f"{out} is not empty: pass overwrite=True (--overwrite) to replace the dataset "
            "in it, or choose an empty folder (writers never mix two runs)",
            path=str(out),
        )
    return out


def _swap(stage: Path, out: Path) -> None:
    """Put ``stage`` where ``out`` is: the old folder is moved aside, then removed."""
    if not out.exists():
        os.replace(stage, out)
        return
    aside = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.replace(out, aside)
    try:
        os.replace(stage, out)
    except OSError:
        os.replace(aside, out)  # put the old dataset back
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def dataset_folder(
    out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> Iterator[tuple[Path, Path]]:
    """``(stage, out)``: a new empty folder to build the dataset in, and ``out_dir`` as a
    path; ``stage`` replaces ``out`` when the block ends without an exception.

    Refused (before anything is written) as :func:`check_dataset_folder` says. On an
    exception the new folder is removed and ``out_dir`` is left as it was.
    """
    out = check_dataset_folder(out_dir, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()  # the mode the umask gives (mkdtemp would make it 0700)
    try:
        yield stage, out
        check_dataset_folder(out, overwrite=overwrite)  # nobody filled it meanwhile
        _swap(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def make_dir(root: Path, *parts: str) -> Path:
    """``root/parts...`` made, refusing a symbolic link on the way (never write elsewhere).

    Example:
        >>> import tempfile
        >>> make_dir(Path(tempfile.mkdtemp()), "images", "train").name
        'train'
    """
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise ExportError(f"{path} is a symbolic link, not a folder", path=str(path))
        path.mkdir(exist_ok=True)
    return path
