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
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from genie_tools import __version__
from genie_tools.errors import AuthenticationError, ConfigurationError, redact
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

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


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
        settings: Client settings.

    Building a ``Config`` reads files and may call the workspace, so it happens on the
    first request, never in a constructor.
    """

    def __init__(
        self, workspace: WorkspaceClient | Config | str | None, settings: GenieSettings
    ) -> None:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        self._lock = threading.Lock()
        self._config: Config | None = None
        self._kwargs: dict[str, Any] = {}
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
        """Whether the ``Config`` is resolved."""
        return self._config is not None

    def config(self) -> Config:
        """The SDK ``Config`` (built on first use from the profile / environment)."""
        if self._config is None:
            with self._lock:
                if self._config is None:
                    from databricks.sdk.config import Config

                    try:
                        config = Config(**self._kwargs)
                    except ValueError as exc:
                        raise ConfigurationError(
                            "Could not configure Databricks authentication: "
                            f"{redact(str(exc), _env_secrets())}. Pass a WorkspaceClient "
                            "or Config, set DATABRICKS_HOST and credentials, or name a profile."
                        ) from None
                    self._host = self._checked_host(config)
                    self._config = config
        return self._config

    @property
    def host(self) -> str:
        """The workspace URL (resolves the config if needed)."""
        self.config()
        assert self._host is not None
        return self._host

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

    def secrets(self) -> list[str]:
        """Secret values of the config, so that messages can be scrubbed of them."""
        config = self._config
        if config is None:
            return []
        return [v for a in _SECRET_ATTRS if isinstance(v := getattr(config, a, None), str)]


def _env_secrets() -> list[str]:
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


def _response(raw: httpx.Response, request: Request) -> Response:
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

    def send(self, request: Request) -> Response:
        """Send one request; raise :class:`TransportFailure` when there is no answer."""
        url, headers = _prepare(self.auth, request)
        try:
            raw = self._client.request(
                request.method, url, json=request.json, params=request.params, headers=headers
            )
        except httpx.TransportError as exc:
            raise _failure(exc, request) from None
        logger.debug("%s -> %d", request.describe(), raw.status_code)
        return _response(raw, request)

    def close(self) -> None:
        """Close the connection pool (if this transport created it)."""
        if self._owns:
            self._client.close()


class AsyncTransport:
    """Non-blocking transport over ``httpx.AsyncClient``: no thread per request.

    ``Config.authenticate()`` runs inline: it returns cached headers, except when an
    OAuth token is refreshed (one token request, roughly once an hour).
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
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _pool(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for old in [lp for lp in self._pools if lp.is_closed()]:
                del self._pools[old]  # its loop is gone; so are its connections
                self._locks.pop(old, None)
            pool = self._pools[loop] = httpx.AsyncClient(
                timeout=_timeouts(self.settings),
                limits=_limits(self.settings),
                follow_redirects=False,
            )
        return pool

    async def ensure_ready(self) -> None:
        """Resolve the SDK config once, off the event loop (it reads files, may call the host)."""
        if not self.auth.ready:
            loop = asyncio.get_running_loop()
            async with self._locks.setdefault(loop, asyncio.Lock()):
                if not self.auth.ready:
                    await asyncio.to_thread(self.auth.config)

    async def send(self, request: Request) -> Response:
        """Send one request; raise :class:`TransportFailure` when there is no answer."""
        await self.ensure_ready()
        url, headers = _prepare(self.auth, request)
        try:
            raw = await self._pool().request(
                request.method, url, json=request.json, params=request.params, headers=headers
            )
        except httpx.TransportError as exc:
            raise _failure(exc, request) from None
        logger.debug("%s -> %d", request.describe(), raw.status_code)
        return _response(raw, request)

    async def close(self) -> None:
        """Close the connection pools this transport created (on the running loop's)."""
        if not self._owns:
            return
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.aclose()
        self._pools = {lp: p for lp, p in self._pools.items() if not lp.is_closed()}
