"""Credentials and how they stay secret: validation, holders that never print, masking.

- :func:`check_secret` refuses, when a client is built, an API key or token that could
  not be sent as an HTTP header value or could not be masked: whitespace, control or
  non-ASCII characters (a ``.env`` file with Windows line endings leaves a ``\\r``), and
  a key shorter than :data:`MIN_SECRET_LENGTH` unless the API is on this machine. The
  :class:`~coreviz_frames.errors.ConfigError` names the problem, never the key.
- :class:`Secret` and :class:`Credentials` hold the value; their repr is ``***``.
- :func:`mask_secrets` replaces every form a secret takes in a message (raw,
  ``repr``-escaped, JSON-escaped, percent-encoded) with ``***``; a secret shorter than
  :data:`MIN_SECRET_LENGTH` is never a mask pattern (it would garble the text:
  ``"not ***nown"``).

Example:
    >>> key = "sk-live+abc/123\\r"
    >>> mask_secrets(f"key {key!r} and sk-live%2Babc%2F123%0D", [key])
    "key '***' and ***"
    >>> check_secret(key, what="API key", base_url="https://lab.coreviz.io/api")
    Traceback (most recent call last):
    ...
    coreviz_frames.errors.ConfigError: the API key ends with a carriage return (\\r) ...
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

from coreviz_frames.errors import ConfigError

__all__ = [
    "Credentials",
    "Secret",
    "check_secret",
    "is_loopback_host",
    "mask_secrets",
    "resolve_credentials",
]

#: A key or token shorter than this is refused for a remote API, and is never used as a
#: mask pattern (a one-character key would turn "not known" into "not ***nown").
MIN_SECRET_LENGTH = 8
#: A trailing prefix of a secret at least this long (or the whole secret, if shorter) is
#: masked too: a text cut by a length limit, or by the server, may end with one.
MIN_MASKED_PREFIX = 4

_NAMES = {
    " ": "a space",
    "\r": "a carriage return (\\r)",
    "\n": "a line feed (\\n)",
    "\t": "a tab (\\t)",
    "\x00": "a NUL character (\\x00)",
}
_LOWER_HEX = re.compile(r"%[0-9A-F]{2}")


class Secret:
    """Holds an API key or token; its repr and str are ``'***'``, so it never leaks by accident.

    Example:
        >>> s = Secret("sk-123")
        >>> s, str(s), s.reveal()
        (***, '***', 'sk-123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for building a request header."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __reduce__(self):  # never pickled along with a client
        raise TypeError("a Secret cannot be pickled")


class Credentials:
    """How to authenticate: an API key (``x-api-key``) or a session token (Bearer).

    Example:
        >>> Credentials.api_key("sk-1")
        Credentials(api_key=***)
        >>> Credentials.token("t").header()
        {'Authorization': 'Bearer t'}
    """

    __slots__ = ("_secret", "kind")

    def __init__(self, kind: str, secret: Secret) -> None:
        if kind not in ("api_key", "token"):
            raise ValueError(f"unknown credentials kind {kind!r}")
        self.kind = kind
        self._secret = secret

    @classmethod
    def api_key(cls, value: str) -> Credentials:
        return cls("api_key", Secret(value))

    @classmethod
    def token(cls, value: str) -> Credentials:
        return cls("token", Secret(value))

    def header(self) -> dict[str, str]:
        """The request header carrying the secret."""
        if self.kind == "token":
            return {"Authorization": f"Bearer {self._secret.reveal()}"}
        return {"x-api-key": self._secret.reveal()}

    def secrets(self) -> tuple[str, ...]:
        """Strings to mask wherever text from the server is repeated."""
        return (self._secret.reveal(),)

    def __repr__(self) -> str:
        return f"Credentials({self.kind}=***)"

    def __reduce__(self):
        raise TypeError("Credentials cannot be pickled")


# --------------------------------------------------------------------------- validation


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``) and loopback addresses (127.0.0.0/8,
    ``::1``, brackets or not).

    Example:
        >>> is_loopback_host("127.0.0.1"), is_loopback_host("[::1]"), is_loopback_host("0.0.0.0")
        (True, True, False)
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str | None) -> bool:
    """True if ``url``'s host is this machine (:func:`is_loopback_host`).

    Example:
        >>> is_loopback_url("http://127.0.0.1:8000/api"), is_loopback_url("https://lab.coreviz.io")
        (True, False)
    """
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host)


def _character_problem(value: str) -> str | None:
    """What is wrong with the first character of ``value`` that a header cannot carry,
    with the secret masked around it (``'***\\r'``); None if every character is fine."""
    for position, char in enumerate(value):
        if "\x21" <= char <= "\x7e":
            continue
        if char.isascii():
            name = _NAMES.get(char, f"a control character (\\x{ord(char):02x})")
            shown = repr(char)[1:-1]
        else:
            name, shown = "a non-ASCII character", "?"
        last = len(value) - 1
        where = "starts with" if position == 0 else "ends with" if position == last else "holds"
        shape = ("***" if position else "") + shown + ("***" if position < last else "")
        return f"{where} {name} at character {position + 1} of {len(value)} ('{shape}'"
    return None


def check_secret(value: str, *, what: str, base_url: str | None, source: str = "") -> str:
    """``value`` if it can be sent and masked; else a ConfigError naming the problem (the
    key masked). ``what`` is "API key" or "token"; ``source`` says where it came from.

    Whitespace is refused, not stripped: a key that changes silently is a surprise, and the
    same ``.env`` breaks every other program that reads it. A key shorter than
    :data:`MIN_SECRET_LENGTH` is refused unless ``base_url`` is on this machine (a local
    API takes any placeholder key; such a key is not masked).
    """
    where = f" ({source})" if source else ""
    problem = _character_problem(value)
    if problem is not None:
        hint = "; a .env file with Windows line endings?" if value.endswith("\r") else ""
        raise ConfigError(
            f"the {what}{where} {problem}{hint}): a key holds printable ASCII characters "
            "only, so remove that character and try again"
        )
    if len(value) < MIN_SECRET_LENGTH and not is_loopback_url(base_url):
        raise ConfigError(
            f"the {what}{where} is only {len(value)} character(s) long (a truncated or "
            "placeholder value?): too short to resist guessing or to be masked in messages; "
            f"keys under {MIN_SECRET_LENGTH} characters are accepted only for an API on this "
            "machine (localhost)"
        )
    return value


def resolve_credentials(
    *, api_key: str | None, token: str | None, base_url: str | None, missing: str
) -> Credentials:
    """The credentials a client sends, validated by :func:`check_secret`: ``token`` wins,
    then ``api_key``, then ``COREVIZ_API_KEY``; none of them is a ConfigError saying
    ``missing``.

    Example:
        >>> resolve_credentials(api_key="k", token=None, base_url="http://localhost:8000/api",
        ...                     missing="no key")
        Credentials(api_key=***)
    """
    if token:
        secret = check_secret(str(token), what="token", base_url=base_url)
        return Credentials.token(secret)
    if api_key:
        secret = check_secret(str(api_key), what="API key", base_url=base_url)
    elif os.environ.get("COREVIZ_API_KEY"):
        value = os.environ["COREVIZ_API_KEY"]
        secret = check_secret(value, what="API key", base_url=base_url, source="COREVIZ_API_KEY")
    else:
        raise ConfigError(missing)
    return Credentials.api_key(secret)


# --------------------------------------------------------------------------- masking


def secret_forms(secret: str) -> tuple[str, ...]:
    """Every form ``secret`` can take in a message, longest first: raw, ``repr``/``ascii``
    escaped, JSON-escaped (``/`` escaped or not), percent-encoded (``quote`` and
    ``quote_plus``, upper- and lower-case hex).

    Example:
        >>> secret_forms("a b/c")
        ('a%20b%2Fc', 'a%20b%2fc', 'a%20b/c', 'a+b%2Fc', 'a+b%2fc', 'a b\\\\/c', 'a b/c', 'a+b/c')
    """
    forms = {secret, repr(secret)[1:-1], ascii(secret)[1:-1]}
    forms.add(secret.encode("unicode_escape").decode("ascii"))
    escaped = json.dumps(secret)[1:-1]
    forms |= {escaped, escaped.replace("/", "\\/"), json.dumps(secret, ensure_ascii=False)[1:-1]}
    for safe in ("", "/"):
        for encoded in (quote(secret, safe=safe), quote_plus(secret, safe=safe)):
            forms |= {encoded, _LOWER_HEX.sub(lambda m: m[0].lower(), encoded)}
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def mask_secrets(text: str, secrets: Iterable[str], limit: int | None = None) -> str:
    """``text`` with each form of each of ``secrets`` (:func:`secret_forms`) replaced by
    ``***``, then cut to ``limit`` characters, then any trailing prefix of a secret masked
    too (masking before cutting, so a cut never leaves part of a secret). Secrets shorter
    than :data:`MIN_SECRET_LENGTH` are left alone.

    Example:
        >>> mask_secrets("key sk-123456 rejected", ["sk-123456"])
        'key *** rejected'
        >>> mask_secrets("key sk-123456 rejected", ["sk-123456"], limit=10)  # not 'key sk-123'
        'key *** re'
        >>> mask_secrets("echo: sk-1234", ["sk-123456"])
        'echo: ***'
        >>> mask_secrets("not known", ["k"])
        'not known'
    """
    forms = [f for s in secrets if len(s) >= MIN_SECRET_LENGTH for f in secret_forms(s)]
    if limit is not None:
        text = text[: limit + max((len(f) for f in forms), default=0)]
    for form in forms:
        text = text.replace(form, "***")
    if limit is not None:
        text = text[:limit]
    for form in forms:
        for n in range(min(len(form) - 1, len(text)), MIN_MASKED_PREFIX - 1, -1):
            if text.endswith(form[:n]):
                text = text[:-n] + "***"
                break
    return text
