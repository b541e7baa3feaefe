"""Progress bars for long work: tqdm.auto, so notebooks get the widget and terminals a text bar.

``progress=None`` (the default everywhere) shows a bar only when stderr is a
terminal or a notebook is running; ``True`` always shows one; ``False`` never.

Example:
    >>> with progress_bar(total=3, desc="media", progress=False) as bar:
    ...     bar.update(3)
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


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
    """A tqdm bar, disabled when ``progress`` is False (or None outside a terminal/notebook)."""
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)  # stderr may be None (pythonw, services)
        progress = _in_notebook() or bool(isatty is not None and isatty())
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False)
