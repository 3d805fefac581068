"""HTTP with the Databricks SDK's authentication: one request, one answer, no retries.

Credentials come only from the SDK: a ``WorkspaceClient``, a ``Config``, a profile name
or the SDK's default chain. Every request asks ``Config.authenticate()`` for fresh
headers, so OAuth refresh, Azure and GCP flows and Model Serving's on-behalf-of-user
credentials work for any transport. Headers are never logged or put in errors.

Retries, backoff and the exactly-once rules live in the shared core (``_core``,
``submission``); a transport only classifies failures: :class:`TransportFailure`
says whether the request *provably never reached* the server (``sent=False``: safe to
send again) or may have (``sent=True``: the outcome is unknown).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from genie_tools import __version__
from genie_tools.errors import (
    AuthenticationError,
    ConfigurationError,
    WorkspaceUnreachableError,
    redact,
)
from genie_tools.settings import GenieSettings, check_host

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

__all__ = [
    "AsyncTransport",
    "AuthSource",
    "Request",
    "Response",
    "SyncTransport",
    "TransportFailure",
    "connect_deadline",
    "env_secrets",
    "unreachable",
    "what_failed",
]

logger = logging.getLogger(__name__)
USER_AGENT = f"genie-tools/{__version__}"
_SECRET_ATTRS = (
    "token",
    "client_secret",
    "password",
    "azure_client_secret",
    "google_credentials",
    "oidc_token_env",
)


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


class AuthSource:
    """Where requests get their host and headers: an SDK ``Config``, resolved lazily.

    Args:
        workspace: A ``WorkspaceClient``, a ``Config``, a profile name, or ``None`` for
            ``settings.host`` / ``settings.profile`` / the SDK's default chain.
        settings: Client settings (``connect_timeout`` bounds :meth:`connect`).

    Building a ``Config`` reads files and may call the workspace, so it happens on the
    first request, never in a constructor. Connecting (finding the host, building the
    ``Config``, getting credentials once) runs on a worker thread under a deadline: the
    SDK's own retries (up to 300 s by default) can never hold a caller longer than
    ``connect_timeout`` or the operation's timeout.

    Example:
        >>> from genie_tools.settings import GenieSettings
        >>> auth = AuthSource(None, GenieSettings(host="https://adb-1.azuredatabricks.net"))
        >>> auth.ready  # nothing resolved, nothing sent yet
        False
    """

    def __init__(
        self, workspace: WorkspaceClient | Config | str | None, settings: GenieSettings
    ) -> None:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        self._lock = threading.Lock()
        self._settings = settings
        self._config: Config | None = None
        self._kwargs: dict[str, Any] = {}
        self._attempt: Future[None] | None = None
        self._connected = False
        self.reached = False
        """Whether the host ever answered: before that, a connection error is final."""
        if isinstance(workspace, WorkspaceClient):
            self._config = workspace.config
        elif isinstance(workspace, Config):
            self._config = workspace
        elif isinstance(workspace, str):
            self._kwargs = {"profile": workspace}
        elif workspace is None:
            if settings.host:
                self._kwargs = {"host": settings.host}
            elif settings.profile:
                self._kwargs = {"profile": settings.profile}
        else:
            raise ConfigurationError(
                "workspace must be a databricks.sdk.WorkspaceClient, a databricks.sdk.config."
                f"Config, a profile name or None, not {type(workspace).__name__}"
            )
        self._host: str | None = None
        if self._config is not None:
            self._host = self._checked_host(self._config)

    @property
    def ready(self) -> bool:
        """Whether the ``Config`` is resolved and credentials were obtained once."""
        return self._connected

    @property
    def connect_timeout(self) -> float:
        """Seconds allowed for connecting (``settings.connect_timeout``)."""
        return self._settings.connect_timeout

    def config(self) -> Config:
        """The SDK ``Config`` (connecting first, within ``connect_timeout``)."""
        if not self._connected:
            self.connect()
        assert self._config is not None
        return self._config

    @property
    def host(self) -> str:
        """The workspace URL (connects if needed)."""
        self.config()
        assert self._host is not None
        return self._host

    def connect(self, timeout: float | None = None) -> None:
        """Resolve the config and credentials, waiting at most the connect deadline.

        Args:
            timeout: The operation's own limit; the wait is the smallest of it,
                ``connect_timeout`` and any :func:`connect_deadline` in effect.

        Raises:
            WorkspaceUnreachableError: The host does not resolve, refuses, fails TLS or
                did not answer in time.
            ConfigurationError: No usable host or credentials are configured.
            AuthenticationError: The SDK could not obtain credentials.

        Example:
            >>> auth.connect(timeout=5)  # doctest: +SKIP
        """
        if self._connected:
            return
        bound = self._bound(timeout)
        try:
            self._start().result(timeout=bound)
        except FutureTimeout:
            raise self._too_slow(bound) from None

    async def aconnect(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """:meth:`connect` without blocking the event loop (the SDK runs on a thread)."""
        if self._connected:
            return
        bound = self._bound(timeout)
        waiter = asyncio.wrap_future(self._start())
        done, _ = await asyncio.wait({waiter}, timeout=bound)
        if not done:
            waiter.cancel()  # the attempt finishes on its own thread; nobody waits for it
            raise self._too_slow(bound)
        waiter.result()

    def _bound(self, timeout: float | None) -> float:
        bound = self._settings.connect_timeout
        if timeout is not None:
            bound = min(bound, timeout)
        at = _CONNECT_DEADLINE.get()
        if at is not None:
            bound = min(bound, at - time.monotonic())
        return max(bound, 0.0)

    def _start(self) -> Future[None]:
        """The attempt in progress, or a new one (after none, or after a failed one)."""
        with self._lock:
            attempt = self._attempt
            if attempt is None or (attempt.done() and attempt.exception() is not None):
                attempt = self._attempt = Future()
                # A daemon thread: an attempt the caller gave up on never delays exit.
                threading.Thread(
                    target=self._run, args=(attempt,), name="genie-connect", daemon=True
                ).start()
            return attempt

    def _run(self, attempt: Future[None]) -> None:
        if not attempt.set_running_or_notify_cancel():
            return
        try:
            self._resolve()
        except BaseException as exc:  # handed to every waiter
            attempt.set_exception(exc)
        else:
            attempt.set_result(None)

    def _resolve(self) -> None:
        """Probe the host when it is known, build the ``Config``, get credentials once."""
        config = self._config
        if config is None:
            known = self._known_host()
            if known is not None:
                self._probe(known)
            config = self._build()
            self._host = self._checked_host(config)
        assert self._host is not None
        self._first_headers(config, self._host)
        with self._lock:
            self._config = config
            self._connected = True

    def _known_host(self) -> str | None:
        """The host the SDK will use, when it is known without reading profiles."""
        named = self._kwargs.get("host")
        if named is None and not self._kwargs and not os.environ.get("DATABRICKS_CONFIG_PROFILE"):
            named = os.environ.get("DATABRICKS_HOST")
        if not named:
            return None
        if "://" not in named:
            named = "https://" + named  # as the SDK reads a bare host name
        try:
            return check_host(named)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    def _probe(self, host: str) -> None:
        """One unauthenticated GET: tells DNS, refused, TLS and timeouts apart in a moment.

        The SDK would retry each of these for minutes, then report something else (or
        nothing: its own discovery failures are only logged). Any HTTP answer means the
        host is reachable; its status is not judged here.
        """
        url = f"{host}/.well-known/databricks-config"
        try:
            with httpx.Client(timeout=self._settings.connect_timeout) as client:
                client.get(url, headers={"User-Agent": USER_AGENT})
        except httpx.TransportError as exc:
            raise unreachable(exc, host, self._settings.connect_timeout) from None
        self.reached = True

    def _build(self) -> Config:
        from databricks.sdk.config import Config

        kwargs = dict(self._kwargs)
        # The SDK's own retry budget (300 s by default) is bounded by the connect deadline,
        # so an attempt nobody waits for anymore also ends soon.
        if not os.environ.get("DATABRICKS_RETRY_TIMEOUT_SECONDS"):
            kwargs["retry_timeout_seconds"] = max(1, math.ceil(self._settings.connect_timeout))
        if not os.environ.get("DATABRICKS_HTTP_TIMEOUT_SECONDS"):
            kwargs["http_timeout_seconds"] = self._settings.connect_timeout
        try:
            return Config(**kwargs)
        except ValueError as exc:
            raise ConfigurationError(
                "Could not configure Databricks authentication: "
                f"{redact(str(exc), env_secrets())}. Pass a WorkspaceClient "
                "or Config, set DATABRICKS_HOST and credentials, or name a profile."
            ) from None
        except Exception as exc:  # requests / OS errors during the SDK's discovery
            where = self._kwargs.get("host") or "the configured workspace"
            raise unreachable(exc, where, self._settings.connect_timeout) from None

    def _first_headers(self, config: Config, host: str) -> None:
        try:
            config.authenticate()
        except ValueError as exc:
            raise AuthenticationError(
                f"Databricks authentication for {host} failed: "
                f"{redact(str(exc), [*self.secrets(config), *env_secrets()])}. Check the "
                "credentials of the WorkspaceClient / Config / profile.",
                status_code=401,
            ) from None
        except Exception as exc:  # requests / OS errors while fetching a token
            raise unreachable(exc, host, self._settings.connect_timeout) from None

    def _too_slow(self, bound: float) -> WorkspaceUnreachableError:
        host = self._host or self._kwargs.get("host") or _env_host() or "the workspace"
        return WorkspaceUnreachableError(
            f"No answer from Genie at {host}: connecting and authenticating took more than "
            f"{bound:.3g} s. Check the workspace URL (DATABRICKS_HOST, GENIE_HOST or the "
            "profile's host) and the network, or raise connect_timeout "
            "(GENIE_CONNECT_TIMEOUT).",
            host=str(host),
            cause="timeout",
        )

    @staticmethod
    def _checked_host(config: Config) -> str:
        if not config.host:
            raise ConfigurationError(
                "The Databricks config has no host: set DATABRICKS_HOST or GENIE_HOST, or "
                "pass a WorkspaceClient / Config with a host."
            )
        try:
            return check_host(config.host)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    def headers(self) -> dict[str, str]:
        """Fresh authentication headers from the SDK (refreshing OAuth tokens as needed).

        Raises:
            AuthenticationError: The SDK could not produce credentials.
            TransportFailure: The identity provider could not be reached (nothing was sent).
        """
        config = self.config()
        try:
            return dict(config.authenticate())
        except ValueError as exc:
            raise AuthenticationError(
                "Databricks authentication failed: "
                f"{redact(str(exc), self.secrets())}. Check the credentials of the "
                "WorkspaceClient / Config / profile.",
                status_code=401,
            ) from None
        except Exception as exc:  # requests / OS errors while fetching a token
            raise TransportFailure(
                f"could not obtain credentials: {type(exc).__name__}", sent=False
            ) from None

    def secrets(self, config: Config | None = None) -> list[str]:
        """Secret values of the config, so that messages can be scrubbed of them."""
        config = config or self._config
        if config is None:
            return []
        return [v for a in _SECRET_ATTRS if isinstance(v := getattr(config, a, None), str)]


_CONNECT_DEADLINE: ContextVar[float | None] = ContextVar("genie_connect_deadline", default=None)


@contextmanager
def connect_deadline(at: float) -> Iterator[None]:
    """Bound any connect started inside the block by ``at`` (``time.monotonic()`` seconds).

    An operation runs its steps inside this block, so that connecting on its first
    request counts against the operation's own timeout, not only ``connect_timeout``.

    Example:
        >>> with connect_deadline(time.monotonic() + 5):
        ...     pass  # an AuthSource connecting here waits at most ~5 s
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


def _env_host() -> str | None:
    return os.environ.get("DATABRICKS_HOST") or None


def env_secrets() -> list[str]:
    """Secrets found in the SDK's environment variables, to scrub messages of them."""
    # The SDK masks secrets in its messages; this is a second line of defence.
    names = ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD")
    return [os.environ[n] for n in (*names, "ARM_CLIENT_SECRET") if os.environ.get(n)]


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
