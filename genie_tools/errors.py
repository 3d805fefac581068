"""One typed error hierarchy for everything that can go wrong when asking Genie.

Every error is a :class:`GenieError`; each subclass says what went wrong *and what
to do about it*, so a tool can hand the message straight to a model or a person.
Messages never carry credentials: they are built from Genie's own error text, ids and
paths, and :func:`redact` strips any secret the SDK configuration holds before a
third-party message is included.

Example:
    >>> err = RateLimitedError("Genie's question budget is used up.", retry_after=12.0)
    >>> isinstance(err, GenieError), err.retry_after
    (True, 12.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genie_tools.models import MessageRef

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "GenieError",
    "GenieTimeoutError",
    "InvalidIdError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryCancelledError",
    "QueryFailedError",
    "RateLimitedError",
    "ResultExpiredError",
    "ServiceUnavailableError",
    "WorkspaceUnreachableError",
    "error_for_status",
    "redact",
]


class GenieError(Exception):
    """Base class of every genie-tools error.

    Attributes:
        message: What happened and what to do, safe to show to a user or a model.
        status_code: The HTTP status Genie answered, when there was one.
        error_code: Databricks' ``error_code`` (e.g. ``RESOURCE_DOES_NOT_EXIST``).
        ref: The message the error concerns, when one was already submitted: pass it
            to ``wait()`` / ``get_result()`` instead of asking again.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        ref: MessageRef | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.ref = ref

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(GenieError, ValueError):
    """The client is configured in a way that cannot work (no space id, bad host…)."""


class InvalidIdError(ConfigurationError):
    """An id (space, conversation, message…) does not have the shape Genie gives its ids.

    Raised before any request is sent, wherever an id enters: call arguments, tool
    arguments, graph state, checkpoints, the CLI. Genie ids are letters, digits, ``-``
    and ``_``; anything else could steer a request away from Genie's API.

    Attributes:
        kind: Which id it is (``"space"``, ``"conversation"``, ``"message"``…).
    """

    def __init__(self, message: str, *, kind: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.kind = kind


class AuthenticationError(GenieError):
    """The workspace did not accept the credentials (HTTP 401 or a failed token exchange)."""


class PermissionDeniedError(GenieError):
    """The principal lacks a permission on the space, conversation or warehouse (HTTP 403)."""


class NotFoundError(GenieError, LookupError):
    """The space, conversation, message or attachment does not exist for this principal."""


class BadRequestError(GenieError):
    """Genie refused the request as invalid (HTTP 400 and other 4xx)."""


class RateLimitedError(GenieError):
    """The question budget is used up and waiting would pass the deadline.

    Attributes:
        retry_after: Seconds until a question would be accepted.
    """

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailableError(GenieError):
    """Genie or the network kept failing (5xx, resets, timeouts) after every retry."""


class WorkspaceUnreachableError(ServiceUnavailableError):
    """The workspace could not be reached at all, so nothing was sent to Genie.

    Raised within seconds (``connect_timeout``) instead of after the SDK's minutes of
    retries: the name does not resolve, nothing listens, TLS fails, or connecting and
    authenticating took too long.

    Attributes:
        host: The workspace URL tried.
        cause: ``"dns"``, ``"refused"``, ``"tls"``, ``"timeout"`` or ``"network"``.

    Example:
        >>> err = WorkspaceUnreachableError("No answer.", host="https://x.invalid", cause="dns")
        >>> isinstance(err, ServiceUnavailableError), err.cause
        (True, 'dns')
    """

    def __init__(self, message: str, *, host: str, cause: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.host = host
        self.cause = cause


class CircuitOpenError(GenieError):
    """Calls to this workspace are paused after sustained failures (the circuit is open).

    Attributes:
        retry_after: Seconds until the next trial call is let through.
    """

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class GenieTimeoutError(GenieError, TimeoutError):
    """No final answer before the deadline; the question may still finish.

    Attributes:
        last_status: The last status seen (e.g. ``EXECUTING_QUERY``), if any.
        stalled: True when the wait ended because the status stopped changing.
    """

    def __init__(
        self,
        message: str,
        *,
        last_status: str | None = None,
        stalled: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.last_status = last_status
        self.stalled = stalled


class QueryFailedError(GenieError):
    """Genie could not answer: the message ended ``FAILED``.

    Attributes:
        error_type: Genie's ``MessageErrorType`` (e.g. ``SQL_EXECUTION_EXCEPTION``), if given.
    """

    def __init__(self, message: str, *, error_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error_type = error_type


class QueryCancelledError(QueryFailedError):
    """The message ended ``CANCELLED`` (by ``cancel()``, another client, or Genie)."""


class ResultExpiredError(GenieError):
    """The query result is no longer available and could not be re-run."""


_ADVICE = {
    400: "Check the question, the ids and the space's limits; sending it again unchanged "
    "will fail the same way.",
    401: "Check the Databricks credentials (token, OAuth client, profile) that the "
    "WorkspaceClient / Config uses.",
    403: "Ask the space owner for CAN RUN on the Genie space (and CAN USE on its SQL "
    "warehouse), or use a principal that has them.",
    404: "Check the space, conversation and message ids, and that this principal can see them.",
    429: "Wait and retry, lower the client's qpm, or spread questions over time.",
}


def error_for_status(
    status: int,
    error_code: str | None,
    server_message: str | None,
    *,
    what: str,
    retry_after: float | None = None,
    ref: MessageRef | None = None,
) -> GenieError:
    """The typed error for an HTTP error answer.

    Args:
        status: HTTP status code.
        error_code: Databricks' ``error_code`` from the body, if any.
        server_message: Databricks' ``message`` from the body, if any.
        what: What was being done, e.g. ``"GET /api/2.0/genie/spaces/x"``.
        retry_after: Parsed ``Retry-After`` seconds (for 429 / 503).
        ref: The message concerned, if known.

    Returns:
        An instance of the matching :class:`GenieError` subclass.

    Example:
        >>> e = error_for_status(404, "RESOURCE_DOES_NOT_EXIST", "No such space.", what="get space")
        >>> type(e).__name__, e.status_code
        ('NotFoundError', 404)
    """
    detail = f"{error_code}: {server_message}" if error_code else (server_message or "")
    head = f"Genie answered HTTP {status} to {what}" + (f" ({detail})" if detail else "") + "."
    kwargs: dict[str, Any] = {"status_code": status, "error_code": error_code, "ref": ref}
    if status == 429:
        wait = retry_after if retry_after is not None else 60.0
        return RateLimitedError(f"{head} {_ADVICE[429]}", retry_after=wait, **kwargs)
    if status >= 500:
        return ServiceUnavailableError(
            f"{head} Genie is failing or overloaded; retry later.", **kwargs
        )
    cls: type[GenieError] = {
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
    }.get(status, BadRequestError)
    advice = _ADVICE.get(status, _ADVICE[400])
    return cls(f"{head} {advice}", **kwargs)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every non-trivial secret value found in ``text`` with ``***``.

    Example:
        >>> redact("token dapi123456 refused", ["dapi123456", None])
        'token *** refused'
    """
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
