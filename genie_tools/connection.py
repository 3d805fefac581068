"""Reaching a workspace: the connect deadline, and why a host gave no answer.

A transport reports a request that got no HTTP answer as :class:`TransportFailure`,
saying whether it may have reached the server. When the very first contact with a
workspace fails, :func:`unreachable` turns the failure into a typed
:class:`~genie_tools.errors.WorkspaceUnreachableError` naming the host and the cause
(DNS, refused, TLS, timeout), so a wrong ``DATABRICKS_HOST`` fails in seconds with a
sentence instead of minutes of retries. :func:`connect_deadline` lets an operation's
own timeout bound the connecting it triggers.

Example:
    >>> TransportFailure("connection refused", sent=False).sent
    False
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

from genie_tools import __version__
from genie_tools.errors import WorkspaceUnreachableError

__all__ = [
    "USER_AGENT",
    "TransportFailure",
    "connect_deadline",
    "connect_deadline_at",
    "env_secrets",
    "unreachable",
]

USER_AGENT = f"genie-tools/{__version__}"


class TransportFailure(Exception):
    """The request got no HTTP answer.

    Attributes:
        sent: False when the request provably never reached the server (connection
            refused, DNS failure, connect timeout, no free connection): sending it again
            cannot duplicate anything. True when it may have been received (reset or
            timeout after sending).
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


_CONNECT_DEADLINE: ContextVar[float | None] = ContextVar("genie_connect_deadline", default=None)


@contextmanager
def connect_deadline(at: float) -> Iterator[None]:
    """Bound any connect started inside the block by ``at`` (``time.monotonic()`` seconds).

    An operation runs its steps inside this block, so that connecting on its first
    request counts against the operation's own timeout, not only ``connect_timeout``.

    Example:
        >>> import time
        >>> with connect_deadline(time.monotonic() + 5):
        ...     connect_deadline_at() is not None  # an AuthSource connecting here waits ≤ 5 s
        True
    """
    token = _CONNECT_DEADLINE.set(at)
    try:
        yield
    finally:
        _CONNECT_DEADLINE.reset(token)


_DNS_WORDS = (
    "name or service not known",
    "nodename nor servname",
    "getaddrinfo failed",
    "temporary failure in name resolution",
    "no address associated",
    "failed to resolve",
)


def _cause(exc: BaseException) -> tuple[str, str]:
    """``(cause, detail)`` of a connection failure, from its chain, then its text."""
    seen: list[BaseException] = []
    item: BaseException | None = exc
    while item is not None and item not in seen and len(seen) < 20:
        seen.append(item)
        if isinstance(item, socket.gaierror):
            return "dns", "the name does not resolve (DNS)"
        if isinstance(item, ConnectionRefusedError):
            return "refused", "connection refused (nothing listens there)"
        if isinstance(item, ssl.SSLError | ssl.CertificateError):
            return "tls", f"the TLS handshake failed ({_short(item)})"
        if isinstance(item, httpx.TimeoutException | TimeoutError):
            return "timeout", "no answer in time"
        nested = getattr(item, "reason", None)  # urllib3's MaxRetryError wraps its cause
        if not isinstance(nested, BaseException):
            nested = None
        item = item.__cause__ or item.__context__ or nested
    text = " ".join(str(e) for e in seen).lower()
    if any(word in text for word in _DNS_WORDS):
        return "dns", "the name does not resolve (DNS)"
    if "connection refused" in text or "errno 111" in text or "10061" in text:
        return "refused", "connection refused (nothing listens there)"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "tls", "the TLS handshake failed"
    if "timed out" in text or "timeout" in text:
        return "timeout", "no answer in time"
    return "network", f"the connection failed ({type(exc).__name__})"


def _short(exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or str(exc)
    text = str(text).strip() or type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def unreachable(exc: BaseException, host: str, connect_timeout: float) -> WorkspaceUnreachableError:
    """The typed error for a workspace that could not be reached at all.

    Example:
        >>> import socket
        >>> err = unreachable(socket.gaierror(-2, "Name or service not known"),
        ...                   "https://nonexistent.invalid", 10)
        >>> err.cause, err.host
        ('dns', 'https://nonexistent.invalid')
    """
    cause, detail = _cause(exc)
    if cause == "timeout":
        detail = f"no answer within {connect_timeout:g} s (connect_timeout)"
    return WorkspaceUnreachableError(
        f"No answer from Genie at {host}: {detail}. Check the workspace URL "
        "(DATABRICKS_HOST, GENIE_HOST or the profile's host) and the network.",
        host=host,
        cause=cause,
    )


def env_secrets() -> list[str]:
    """Secrets found in the SDK's environment variables, to scrub messages of them."""
    # The SDK masks secrets in its messages; this is a second line of defence.
    names = ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD")
    return [os.environ[n] for n in (*names, "ARM_CLIENT_SECRET") if os.environ.get(n)]


def connect_deadline_at() -> float | None:
    """The deadline set by the innermost :func:`connect_deadline` block, if any.

    Example:
        >>> connect_deadline_at() is None
        True
    """
    return _CONNECT_DEADLINE.get()
