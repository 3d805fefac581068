"""HTTP to the workspace: one request, one answer, no retries.

Host and credentials come from an :class:`~genie_tools.auth.AuthSource` (the
Databricks SDK's); every request gets fresh headers from it. Retries, backoff and the
exactly-once rules live in the shared core (``_core``, ``submission``); a transport only
classifies failures: :class:`~genie_tools.connection.TransportFailure` says whether the
request *provably never reached* the server (``sent=False``: safe to send again) or may
have (``sent=True``: the outcome is unknown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from genie_tools.auth import AuthSource
from genie_tools.connection import USER_AGENT, TransportFailure, unreachable
from genie_tools.settings import GenieSettings

__all__ = [
    "AsyncTransport",
    "Request",
    "Response",
    "SyncTransport",
    "what_failed",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One HTTP request to the workspace (``path``) or to a pre-signed URL (``external``)."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    external: bool = False
    """``path`` is an absolute pre-signed URL: send no Authorization header, log no URL."""

    def describe(self) -> str:
        """``METHOD path`` for logs and errors (never a pre-signed URL's credentials)."""
        return f"{self.method} {'<pre-signed link>' if self.external else self.path}"


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, headers (lower-case names) and the JSON body, if any."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    content: bytes = b""
    """Raw bytes, kept only for pre-signed downloads (CSV or Arrow chunks)."""
    host: str = ""
    """The workspace that answered (empty for pre-signed links), for error messages."""

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


def what_failed(request: Request, response: Response) -> str:
    """``METHOD path`` for an error answer, naming the workspace for 401 and 403.

    A refused credential or permission is about *where* the request went as much as
    what it asked: the host tells a wrong workspace from a wrong token.

    Example:
        >>> what_failed(Request("GET", "/api/2.0/genie/spaces"),
        ...             Response(401, host="https://adb-1.azuredatabricks.net"))
        'GET /api/2.0/genie/spaces on https://adb-1.azuredatabricks.net'
    """
    what = request.describe()
    if response.status in (401, 403) and response.host:
        what = f"{what} on {response.host}"
    return what


def _timeouts(settings: GenieSettings) -> httpx.Timeout:
    # No pool timeout: with hundreds of concurrent asks a request may queue for a
    # connection; the operation's deadline bounds the wait instead.
    return httpx.Timeout(settings.http_timeout, connect=settings.connect_timeout, pool=None)


def _limits(settings: GenieSettings) -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )


def _prepare(auth: AuthSource, request: Request) -> tuple[str, dict[str, str]]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if request.external:
        return request.path, headers
    headers.update(auth.headers())
    return auth.host + request.path, headers


def _failure(exc: httpx.TransportError, request: Request) -> TransportFailure:
    # Errors raised before a connection carried the request prove it was never sent.
    sent = not isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
    )
    return TransportFailure(f"{request.describe()}: {type(exc).__name__}", sent=sent)


def _no_answer(exc: httpx.TransportError, request: Request, auth: AuthSource) -> Exception:
    """What a request without an answer raises: final before the host ever answered.

    A connection error on the first contact means a wrong or unreachable workspace
    (DNS, refused, TLS): retrying for seconds would only hide that. Once the host has
    answered, the same error is a blip, and :class:`TransportFailure` lets the core retry.
    """
    first = not request.external and not auth.reached
    if first and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return unreachable(exc, auth.host, auth.connect_timeout)
    return _failure(exc, request)


def _response(raw: httpx.Response, request: Request, auth: AuthSource) -> Response:
    if not request.external:
        auth.reached = True
    body: Any = None
    if raw.content:
        try:
            body = raw.json()
        except ValueError:
            body = None
    return Response(
        status=raw.status_code,
        headers={k.lower(): v for k, v in raw.headers.items()},
        body=body,
        content=raw.content if request.external else b"",
        host="" if request.external else auth.host,
    )


class SyncTransport:
    """Blocking transport over ``httpx.Client``."""

    def __init__(
        self, auth: AuthSource, settings: GenieSettings, *, client: httpx.Client | None = None
    ) -> None:
        self.auth = auth
        self._owns = client is None
        self._client = client or httpx.Client(
            timeout=_timeouts(settings), limits=_limits(settings), follow_redirects=False
        )

    def connect(self, timeout: float | None = None) -> None:
        """Resolve the workspace and credentials within the connect deadline.

        See :meth:`AuthSource.connect`.
        """
        self.auth.connect(timeout)

    def send(self, request: Request) -> Response:
        """Send one request; raise :class:`TransportFailure` when there is no answer."""
        url, headers = _prepare(self.auth, request)
        try:
            raw = self._client.request(
                request.method, url, json=request.json, params=request.params, headers=headers
            )
        except httpx.TransportError as exc:
            raise _no_answer(exc, request, self.auth) from None
        logger.debug("%s -> %d", request.describe(), raw.status_code)
        return _response(raw, request, self.auth)

    def close(self) -> None:
        """Close the connection pool (if this transport created it)."""
        if self._owns:
            self._client.close()


class AsyncTransport:
    """Non-blocking transport over ``httpx.AsyncClient``: no thread per request.

    Connecting (the SDK's ``Config``, host discovery, the first credentials) runs on a
    worker thread and is awaited with the connect deadline, so the event loop never
    waits on the SDK. Afterwards ``Config.authenticate()`` runs inline: it returns
    cached headers, except when an OAuth token is refreshed (one token request, roughly
    once an hour, bounded by the SDK's HTTP timeout).
    """

    def __init__(
        self, auth: AuthSource, settings: GenieSettings, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.auth = auth
        self.settings = settings
        self._owns = client is None
        self._given = client
        # An httpx.AsyncClient's connections belong to the event loop that opened them;
        # one client may be used from several loops (notebooks, repeated asyncio.run), so
        # an owned pool is kept per loop and each loop gets its own.
        self._pools: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def _pool(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for old in [lp for lp in self._pools if lp.is_closed()]:
                del self._pools[old]  # its loop is gone; so are its connections
            pool = self._pools[loop] = httpx.AsyncClient(
                timeout=_timeouts(self.settings),
                limits=_limits(self.settings),
                follow_redirects=False,
            )
        return pool

    async def ensure_ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Connect once, off the event loop, within the connect deadline.

        Args:
            timeout: The operation's own limit, if smaller than ``connect_timeout``.
        """
        await self.auth.aconnect(timeout)

    async def send(self, request: Request) -> Response:
        """Send one request; raise :class:`TransportFailure` when there is no answer."""
        await self.ensure_ready()
        url, headers = _prepare(self.auth, request)
        try:
            raw = await self._pool().request(
                request.method, url, json=request.json, params=request.params, headers=headers
            )
        except httpx.TransportError as exc:
            raise _no_answer(exc, request, self.auth) from None
        logger.debug("%s -> %d", request.describe(), raw.status_code)
        return _response(raw, request, self.auth)

    async def close(self) -> None:
        """Close the connection pools this transport created (on the running loop's)."""
        if not self._owns:
            return
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.aclose()
        self._pools = {lp: p for lp, p in self._pools.items() if not lp.is_closed()}
