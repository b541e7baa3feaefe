"""Validation and normalisation of CoreViz ids.

An id sent to the API may hold only ASCII letters, digits, ``-`` and ``_``;
anything else (``../x``, ``a/b``, ``a?b``, ``%2e``, whitespace, empty) is refused
before any request is made. In tables, a canonical hyphenated UUID is stored
without hyphens and in lower case, as the current API spells it.

Example:
    >>> validate_id("abc123def456")
    'abc123def456'
    >>> normalize_id("7938B58D-D60A-43D8-953F-4F56B3CD8410")
    '7938b58dd60a43d8953f4f56b3cd8410'
"""

from __future__ import annotations

import re
from typing import TypeGuard

from coreviz_frames.errors import InvalidIdError

__all__ = ["all_safe_ids", "id_key", "id_keys", "is_safe_id", "normalize_id", "validate_id"]

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
#: Safe ids, one a line (``all_safe_ids``: one match for a page of ids).
_ID_LINES = re.compile(r"[A-Za-z0-9_-]+(?:\n[A-Za-z0-9_-]+)*")
_UUID_LENGTH = 36
_UUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def validate_id(value: object, *, kind: str = "media id") -> str:
    """Return ``value`` if it is a safe id, else raise :class:`InvalidIdError`.

    Example:
        >>> validate_id("../x")
        Traceback (most recent call last):
        ...
        coreviz_frames.errors.InvalidIdError: invalid media id '../x': ...
    """
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise InvalidIdError(
            f"invalid {kind} {value!r}: an id may hold only letters, digits, '-' and '_'",
            value=value,
        )
    return value


def is_safe_id(value: object) -> TypeGuard[str]:
    """True if ``value`` is an id :func:`validate_id` accepts (a non-empty str of letters,
    digits, ``-`` and ``_``).

    Example:
        >>> is_safe_id("abc-1_2"), is_safe_id(None), is_safe_id(42), is_safe_id("../x")
        (True, False, False, False)
    """
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


def id_key(value: object) -> str | None:
    """The key a media id is known by (:func:`normalize_id`), or None when ``value`` is
    not a string (an id that is missing, null or of another type).

    Example:
        >>> id_key("0F0E0D0C-0B0A-0908-0706-050403020100"), id_key("m1"), id_key(5)
        ('0f0e0d0c0b0a09080706050403020100', 'm1', None)
    """
    return normalize_id(value) if isinstance(value, str) else None


def id_keys(values: list[object]) -> list[str | None]:
    """``[id_key(v) for v in values]``, with one call instead of one a value (a page of ids:
    only a 36-character text can be a UUID to rewrite).

    Example:
        >>> id_keys(["m1", "0F0E0D0C-0B0A-0908-0706-050403020100", None, 5])
        ['m1', '0f0e0d0c0b0a09080706050403020100', None, None]
    """
    return [
        (normalize_id(v) if len(v) == _UUID_LENGTH else v) if isinstance(v, str) else None
        for v in values
    ]


def all_safe_ids(values: list[str]) -> bool:
    """True if every one of ``values`` (texts) is a safe id (:func:`is_safe_id`), checked
    in one match of the texts joined by line breaks: as many lines as values (a value
    holding a line break would make more), each a safe id.

    Example:
        >>> all_safe_ids(["a", "b-1"]), all_safe_ids(["a", ""]), all_safe_ids(["a/b", "c"])
        (True, False, False)
        >>> all_safe_ids(["a" + chr(10) + "b"])  # two safe lines, one unsafe id
        False
    """
    if not values:
        return True
    joined = "\n".join(values)
    return joined.count("\n") == len(values) - 1 and _ID_LINES.fullmatch(joined) is not None


def normalize_id(value: str | None) -> str | None:
    """Strip the hyphens of a canonical UUID and lower-case it; other ids are kept as given."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) == _UUID_LENGTH and _UUID_PATTERN.fullmatch(value):
        return value.replace("-", "").lower()
    return value
