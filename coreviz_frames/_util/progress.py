"""Progress bars for long work: tqdm.auto, so notebooks get the widget and terminals a text bar.

Every bar of the package is made here, and one switch governs them all. A call's own
``progress=True``/``False`` wins; ``progress=None`` (the default everywhere) follows
:func:`set_options` (``cvf.set_options(progress=False)``), else the environment variable
``COREVIZ_PROGRESS`` (``0``/``off``/``false``/``no`` hide every bar, ``1``/``on``/``true``/
``yes`` show them, ``auto`` or unset: the default), else shows a bar only when stderr is a
terminal or a notebook is running.

Example:
    >>> with progress_bar(total=3, desc="media", progress=False) as bar:
    ...     bar.update(3)
    >>> with set_options(progress=False):
    ...     progress_bar(desc="hidden").disable
    True
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

from coreviz_frames.errors import ConfigError

__all__ = ["progress_bar", "set_options"]

#: The environment variable that shows (``1``) or hides (``0``) every progress bar.
PROGRESS_ENV = "COREVIZ_PROGRESS"
_WORDS = {
    **dict.fromkeys(("0", "off", "false", "no"), False),
    **dict.fromkeys(("1", "on", "true", "yes"), True),
    **dict.fromkeys(("", "auto"), None),
}
_options: dict[str, Any] = {"progress": None}


class _Restore:
    """What :func:`set_options` returns: leaving a ``with`` block restores the old options."""

    def __init__(self, previous: dict[str, Any]) -> None:
        self._previous = previous

    def __enter__(self) -> _Restore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _options.update(self._previous)


def set_options(*, progress: bool | None) -> _Restore:
    """Set the package's options for this process: ``progress`` shows (True) or hides (False)
    every progress bar whose call does not say otherwise; None gives the choice back to
    ``COREVIZ_PROGRESS`` and the terminal. Used as a context manager, it restores the
    previous options on exit.

    Example:
        >>> import coreviz_frames as cvf
        >>> with cvf.set_options(progress=False):
        ...     pass
    """
    if progress not in (True, False, None):
        raise ConfigError(f"set_options(progress=...) takes True, False or None, not {progress!r}")
    previous = dict(_options)
    _options["progress"] = progress
    return _Restore(previous)


def progress_default() -> bool | None:
    """What ``progress=None`` means now: :func:`set_options`, else ``COREVIZ_PROGRESS``, else
    None (a terminal or a notebook decides)."""
    if _options["progress"] is not None:
        return bool(_options["progress"])
    raw = os.environ.get(PROGRESS_ENV, "")
    word = raw.strip().lower()
    if word not in _WORDS:
        raise ConfigError(
            f"{PROGRESS_ENV}={raw!r}: use 0 (hide every progress bar), 1 (show them) or auto"
        )
    return _WORDS[word]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_bar(
    *, total: int | None = None, desc: str = "", unit: str = "it", progress: bool | None = None
) -> tqdm:
    """A tqdm bar, disabled when ``progress`` is False (or None and the switch says so, or
    None outside a terminal/notebook)."""
    if progress is None:
        progress = progress_default()
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)  # stderr may be None (pythonw, services)
        progress = _in_notebook() or bool(isatty is not None and isatty())
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False)
