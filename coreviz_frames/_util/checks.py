"""The package's argument checks: one place, one message style.

Each check returns the checked value or raises :class:`~coreviz_frames.errors.ConfigError`
naming the parameter, what it must be and what it got, in one style:
``"<name> must be <what>, not <value>"``.

- :func:`check_int`: an integer (never a bool) within optional bounds;
- :func:`check_choice`: one of a few allowed values;
- :func:`check_on_error`: the ``on_error=`` switch (each caller says which modes it has),
  honouring the deprecated ``errors=`` spelling;
- :func:`is_int` (a value read from JSON or an API is an integer, not a bool) and
  :func:`is_missing` (None, NaN, ``pd.NA`` or ``pd.NaT``; pandas is not imported for it).

Example:
    >>> check_int("workers", 4, minimum=1)
    4
    >>> check_choice("images", "copy", ("copy", "none"))
    'copy'
    >>> check_on_error(None, allowed=("raise", "skip"))
    'raise'
    >>> is_missing(float("nan")), is_missing(0)
    (True, False)
    >>> check_int("limit", 0, minimum=1)
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.ConfigError: limit must be an integer >= 1, not 0
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Collection
from typing import Any, TypeGuard, TypeVar, cast

from coreviz_frames.errors import ConfigError

__all__ = ["check_choice", "check_int", "check_on_error", "is_int", "is_missing"]

C = TypeVar("C")


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    return "" if maximum is None else f" <= {maximum}"


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> Any:
    """``value`` if it is an integer (not a bool) within ``[minimum, maximum]``, else
    :class:`ConfigError` naming ``name``; None passes when ``allow_none``.

    Example:
        >>> check_int("retries", 0, minimum=0), check_int("max_overrun", None, allow_none=True)
        (0, None)
        >>> check_int("page_size", True, minimum=1)
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: page_size must be an integer >= 1, not True
    """
    if value is None and allow_none:
        return None
    ok = is_int(value)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        what = f"{'None or ' if allow_none else ''}an integer{_bounds(minimum, maximum)}"
        raise ConfigError(f"{name} must be {what}, not {value!r}")
    return value


def is_int(value: object) -> TypeGuard[int]:
    """True for an integer (Python's or numpy's) that is not a bool.

    Example:
        >>> is_int(3), is_int(True), is_int(3.0), is_int("3")
        (True, False, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _spelled(choices: Collection[object]) -> str:
    return ", ".join(map(repr, choices))


def check_choice(name: str, value: object, choices: Collection[C]) -> C:
    """``value`` if it is one of ``choices`` (typed as they are), else :class:`ConfigError`
    naming ``name``.

    Example:
        >>> check_choice("task", "segment", ("detect", "segment"))
        'segment'
        >>> check_choice("task", "pose", ("detect", "segment"))
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: task must be one of 'detect', 'segment', not 'pose'
    """
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a set
        ok = False
    if not ok:
        raise ConfigError(f"{name} must be one of {_spelled(choices)}, not {value!r}")
    return cast(C, value)


def check_on_error(
    on_error: str | None,
    *,
    allowed: Collection[str],
    errors: str | None = None,
    stacklevel: int = 3,
) -> str:
    """The ``on_error`` mode (``"raise"`` when None), one of the caller's ``allowed``.

    ``errors=`` is its deprecated spelling: it warns with a :class:`DeprecationWarning`
    pointing ``stacklevel`` frames up (3: the caller's caller); two values that disagree,
    or a mode not in ``allowed``, are a :class:`ConfigError`.

    Example:
        >>> check_on_error("record", allowed=("raise", "record"))
        'record'
        >>> check_on_error("skip", allowed=("raise", "record"))
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.ConfigError: on_error must be one of 'raise', 'record', not 'skip'
    """
    if errors is not None:
        warnings.warn(
            "errors= is deprecated; use on_error= (same values)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if on_error is not None and on_error != errors:
            raise ConfigError(f"on_error={on_error!r} and errors={errors!r} disagree")
        on_error = errors
    return check_choice("on_error", "raise" if on_error is None else on_error, allowed)


def is_missing(value: object) -> bool:
    """True for None, a float NaN (numpy's too), ``pd.NA``, ``pd.NaT`` and numpy's NaT.

    A scalar test like ``pd.isna`` but never true for a container, and it imports
    neither pandas nor numpy (a value of theirs means they are loaded already).

    Example:
        >>> [is_missing(v) for v in (None, float("nan"), "", 0, [None])]
        [True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.floating | np.complexfloating):
            return bool(np.isnan(value))
        if isinstance(value, np.datetime64 | np.timedelta64):
            return bool(np.isnat(value))
    return False
