"""What a 404 means: an unknown id, or a base URL that is not the API.

A wrong base URL (``https://lab.coreviz.io`` without ``/api``, a typo in the host's path)
and an unknown media or collection id both answer 404. So on a 404 from the API the
transport asks the base URL once what it is (``GET {base_url}/me``, the endpoint every
CoreViz deployment serves): an answer in JSON, or a 401/403 asking for credentials, means
the base URL is the API and the id is unknown; anything else means the base URL is wrong.
:func:`explain_not_found` adds that verdict to the error's message.

Example:
    >>> verdict_of(200, "application/json"), verdict_of(401, "text/plain")
    ('api', 'api')
    >>> verdict_of(404, "text/html")
    'not-api'
    >>> err = NotFoundError("GET media 'x' (https://h/media/x) failed: 404", status=404)
    >>> print(explain_not_found(err, "not-api", "https://h", 404))  # doctest: +ELLIPSIS
    GET media 'x' (https://h/media/x) failed: 404. The base URL https://h does not answer ...
"""

from __future__ import annotations

from coreviz_frames.errors import NotFoundError

__all__ = ["PROBE_PATH", "PROBE_SECONDS", "explain_not_found", "verdict_of"]

#: The endpoint asked, under the base URL, to tell the API from something else.
PROBE_PATH = "me"
#: The most the question may take, in seconds (one attempt, no retry).
PROBE_SECONDS = 5.0


def verdict_of(status: int, content_type: str | None) -> str:
    """``"api"`` when ``GET {base_url}/me`` answered as the API does (JSON, or 401/403
    asking for credentials), else ``"not-api"``."""
    if status in (401, 403):
        return "api"
    is_json = "json" in (content_type or "").lower()
    return "api" if 200 <= status < 300 and is_json else "not-api"


def explain_not_found(
    error: NotFoundError, verdict: str | None, base_url: str, probe_status: int | None
) -> NotFoundError:
    """``error`` with what the 404 means, by the base URL's ``verdict`` (None: the probe got
    no answer, and the error is returned as it was)."""
    if verdict is None:
        return error
    if verdict == "api":
        hint = (
            f". The base URL {base_url} answers as the CoreViz API, so this id is unknown "
            "there (deleted, mistyped, or not visible to this API key): check the id"
        )
    else:
        hint = (
            f". The base URL {base_url} does not answer as the CoreViz API (GET "
            f"{base_url}/{PROBE_PATH} gave {probe_status}), so the id may be right and the "
            "base URL wrong: it usually ends in /api (e.g. https://lab.coreviz.io/api); "
            "check base_url= or COREVIZ_BASE_URL"
        )
    explained = type(error)(
        f"{error}{hint}",
        status=error.status,
        url=error.url,
        media_id=error.media_id,
        detail=error.detail,
    )
    explained.__cause__ = error.__cause__
    return explained
