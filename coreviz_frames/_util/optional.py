"""Import an optional dependency, or say which extra installs it: :func:`import_optional`.

Modelled on pandas' ``import_optional_dependency``: the extras (``dask``, ``torch``,
``hf``, ``polars``, ``notebook``) are imported only when a function needs them, and
their absence is one :class:`~coreviz_frames.errors.MissingDependencyError` (a
``ConfigError`` and an ``ImportError``) whose message says what needed the module and
the ``pip install "coreviz-frames[extra]"`` line that brings it (and the line for a
clone). A runtime dependency imported late (``deltalake``) passes ``extra=None``: its
message names the package itself.

Example:
    >>> import_optional("json", extra="none", purpose="a doctest").__name__
    'json'
    >>> import_optional("no_such_module_xyz", extra="hf", purpose="this example")
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.MissingDependencyError: this example needs no_such_module_xyz: \
pip install "coreviz-frames[hf]", or in a clone: pip install -e ".[hf]" \
(No module named 'no_such_module_xyz')
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal, overload

from coreviz_frames.errors import MissingDependencyError

__all__ = ["import_optional"]


@overload
def import_optional(
    name: str, *, extra: str | None, purpose: str, required: Literal[True] = ...
) -> ModuleType: ...


@overload
def import_optional(
    name: str, *, extra: str | None, purpose: str, required: Literal[False]
) -> ModuleType | None: ...


def import_optional(
    name: str, *, extra: str | None, purpose: str, required: bool = True
) -> ModuleType | None:
    """The module ``name``, imported now; if it cannot be,
    :class:`~coreviz_frames.errors.MissingDependencyError` saying that ``purpose`` needs
    it and how to install ``extra`` (``None``: a runtime dependency, named itself).

    With ``required=False`` a module that cannot be imported gives None instead: absent,
    or present but broken (a build that does not match its dependencies raises
    ``RuntimeError`` or ``OSError`` while importing), for features that are only better
    with it.

    Example:
        >>> import_optional("no_such_module_xyz", extra="torch", purpose="x", required=False)
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if not required:
            return None
        top = name.partition(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs {top}: {_install_line(top, extra)} ({exc})", name=top
        ) from exc
    except (RuntimeError, OSError):
        if not required:
            return None
        raise


def _install_line(top: str, extra: str | None) -> str:
    """How to install ``extra`` (from an index and in a clone), or ``top`` itself."""
    if extra is None:
        return f'pip install "{top}" (a dependency of coreviz-frames that is missing)'
    return f'pip install "coreviz-frames[{extra}]", or in a clone: pip install -e ".[{extra}]"'
