"""Where requests get their host and credentials: the Databricks SDK, bounded in time.

Credentials come only from the SDK: a ``WorkspaceClient``, a ``Config``, a profile name
or the SDK's default chain. Every request asks ``Config.authenticate()`` for fresh
headers, so OAuth refresh, Azure and GCP flows and Model Serving's on-behalf-of-user
credentials work for any transport. Connecting (checking the host, building the
``Config``, getting credentials once) is bounded by ``connect_timeout`` and by the
operation's own deadline; headers are never logged or put in errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import httpx

from genie_tools.connection import (
    USER_AGENT,
    TransportFailure,
    connect_deadline_at,
    env_secrets,
    unreachable,
)
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

__all__ = ["AuthSource"]

logger = logging.getLogger(__name__)
_SECRET_ATTRS = (
    "token",
    "client_secret",
    "password",
    "azure_client_secret",
    "google_credentials",
    "oidc_token_env",
)


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
        at = connect_deadline_at()
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


def _env_host() -> str | None:
    return os.environ.get("DATABRICKS_HOST") or None
