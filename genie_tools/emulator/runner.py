"""``GenieEmulator``: the emulator as a context manager, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genie_tools._optional import require
from genie_tools.emulator.auth import DEFAULT_PRINCIPAL, Authenticator
from genie_tools.emulator.checks import check_spaces
from genie_tools.emulator.config import ConfigError, EmulatorConfig, PrincipalConfig
from genie_tools.emulator.data import Database, default_data_dir
from genie_tools.emulator.faults import Fault
from genie_tools.emulator.inspect import (
    MessageInfo,
    StatusEvent,
    event_log,
    message_infos,
    stats_snapshot,
)
from genie_tools.emulator.service import GenieService
from genie_tools.emulator.state import StateStore

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

DEFAULT_CLIENT_ID = "emulator-m2m-client"
_KEEP = object()  # set_latency: "leave this setting as it is"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _credentials(state_dir: Path | None, token: str | None) -> tuple[str, str]:
    """The default user's token and client secret: kept in ``state_dir`` when there is one.

    A token given explicitly wins (and is not stored): the caller chose it.
    """
    new_token = "dapi" + secrets.token_hex(16)
    new_secret = "emu-secret-" + secrets.token_hex(12)
    if state_dir is None:
        return token or new_token, new_secret
    store = StateStore(state_dir)
    try:
        kept_token = store.value("token", lambda: new_token)
        kept_secret = store.value("client_secret", lambda: new_secret)
    finally:
        store.close()
    return token or kept_token, kept_secret


class GenieEmulator:
    """A local, wire-compatible Genie workspace over DuckDB.

    Args:
        host: Interface to listen on (loopback by default).
        port: TCP port; 0 picks a free one.
        data_dir: Cache folder for generated data (default: ``~/.cache/genie-tools``).
        speed: Multiplies every status delay: 0 = instant, 1 = realistic, 2 = twice as slow.
        qpm: Questions per minute for the workspace (overrides the config).
        config: An :class:`EmulatorConfig`, a mapping, or a YAML file path.
        seed: Seeds ids, latency draws and fault probabilities, so runs repeat.
        token: The default user's bearer token (random when not given).
        llm: Optional LangChain chat model that writes the SQL (checked before it runs;
            the built-in engine answers when it is unavailable). Overrides ``config.llm``.
        state_dir: Folder that keeps conversations, messages and query results (SQLite)
            so that an emulator started later on the same folder, in any process,
            continues them — follow-ups included. The default user's token and client
            secret are kept there too (unless ``token`` is given). Overrides
            ``config.state_dir``; without either, everything lives in memory.

    Raises:
        ConfigError: The configuration does not validate (one message naming the file,
            each key and its fix); :meth:`start` raises it too when the data or the
            spaces' declarations do not match the data.

    Example:
        >>> with GenieEmulator(speed=0) as emu:  # doctest: +SKIP
        ...     w = emu.workspace_client()
        ...     space = next(iter(w.genie.list_spaces().spaces))
        ...     msg = w.genie.start_conversation_and_wait(space.space_id, "Total revenue by year")
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        speed: float = 1.0,
        qpm: int | None = None,
        config: EmulatorConfig | dict[str, Any] | str | Path | None = None,
        seed: int = 0,
        token: str | None = None,
        llm: Any = None,
        state_dir: str | Path | None = None,
    ) -> None:
        require("aiohttp", extra="emulator", purpose="The Genie emulator")
        if isinstance(config, (str, Path)):
            cfg = EmulatorConfig.from_file(config)
        elif isinstance(config, dict):
            cfg = EmulatorConfig.validated(config)
        else:
            cfg = config or EmulatorConfig()
        if qpm is not None:
            cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={"qpm": qpm})})
        self.config = cfg
        if llm is None and cfg.llm:
            from genie_tools.emulator.nl2sql.llm import load_chat_model

            llm = load_chat_model(cfg.llm)
        self.llm = llm
        self.host = host
        self.port = port
        self.speed = speed
        self.seed = seed
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        chosen = state_dir if state_dir is not None else cfg.state_dir
        self.state_dir = Path(chosen) if chosen is not None else None
        self.token, self.client_secret = _credentials(self.state_dir, token)
        self.client_id = DEFAULT_CLIENT_ID
        self.principal = DEFAULT_PRINCIPAL
        principals = {
            DEFAULT_PRINCIPAL: PrincipalConfig(
                token=self.token,
                client_id=self.client_id,
                client_secret=self.client_secret,
                admin=True,
            ),
            **cfg.principals,
        }
        self.auth = Authenticator(
            principals, token_lifetime=cfg.limits.oauth_token_lifetime_seconds
        )
        self._service: GenieService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._db: Database | None = None

    def __repr__(self) -> str:
        state = self.url if self._thread else "not started"
        return f"GenieEmulator({state}, spaces={len(self.config.spaces)}, speed={self.speed})"

    # lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for a client on this machine, e.g. ``http://127.0.0.1:8765``.

        Listening on every interface (``0.0.0.0``, ``::``), this is the loopback
        address: clients accept plain http only on loopback (tokens would otherwise
        travel in clear text), so remote clients need an https proxy in front.
        """
        host = _WILDCARDS.get(self.host, self.host)
        if ":" in host and not host.startswith("["):  # an IPv6 address in a URL
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def banner(self) -> list[str]:
        """What ``genie-tools emulator`` prints: where to connect, the token, the spaces.

        The ``DATABRICKS_HOST`` it shows is one clients accept: plain http on loopback
        (also when listening on every interface). Remote clients need https, so for
        them it says to put an HTTPS reverse proxy in front.

        Example:
            >>> GenieEmulator(host="0.0.0.0", port=8765, token="t").banner()[2]
            '  export DATABRICKS_HOST=http://127.0.0.1:8765 DATABRICKS_TOKEN=t'
        """
        wildcard = self.host in _WILDCARDS
        bound = f"[{self.host}]" if ":" in self.host else (self.host or "*")
        where = f"{self.url} (all interfaces: {bound}:{self.port})"
        lines = [
            f"Genie emulator listening on {where if wildcard else self.url}",
            f"  token: {self.token}",
        ]
        if wildcard or _is_loopback(self.host):
            lines.append(f"  export DATABRICKS_HOST={self.url} DATABRICKS_TOKEN={self.token}")
        if not _is_loopback(self.host):
            lines.append(
                "  remote clients: genie-tools accepts plain http only on loopback (tokens "
                "would travel in clear text); put an HTTPS reverse proxy in front of port "
                f"{self.port} and use DATABRICKS_HOST=https://<proxy-host>"
            )
        lines += [f"  space {space.id}  {space.title}" for space in self.config.spaces]
        return lines

    @property
    def service(self) -> GenieService:
        """The running service (for advanced inspection)."""
        if self._service is None:
            raise RuntimeError("the emulator is not running; use start() or a with-block")
        return self._service

    def start(self) -> GenieEmulator:
        """Prepare the data and serve on a background thread; returns when ready."""
        if self._thread is not None:
            return self
        self._db = self._open_data()
        state = StateStore(self.state_dir) if self.state_dir is not None else None
        self._service = GenieService(
            self.config, self._db, speed=self.speed, seed=self.seed, llm=self.llm, state=state
        )
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="genie-emulator", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:  # e.g. the port is taken: release the data and the state file again
            self._thread = None
            self._service.close()
            self._db.close()
            self._service, self._db = None, None
            raise failure[0]
        return self

    def _open_data(self) -> Database:
        """The data, loaded, locked and checked against the spaces' declarations.

        Raises:
            ConfigError: A data file is missing or unreadable, or a declaration names
                tables or columns the data does not have (naming the config file).
        """
        db: Database | None = None
        try:
            db = Database(self.config.data, self.data_dir)
            check_spaces(self.config.spaces, db)
        except ConfigError as exc:
            if db is not None:
                db.close()
            raise exc.in_file(self.config.source) from None
        return db

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        web = require("aiohttp.web", extra="emulator", purpose="The Genie emulator")
        from genie_tools.emulator.server import create_app

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            app = create_app(self.service, self.auth, self.config.workspace_id)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            try:
                await site.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                await runner.cleanup()
                return
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]
            self._stopped = asyncio.Event()
            ready.set()
            await self._stopped.wait()
            await runner.cleanup()

        try:
            loop.run_until_complete(main())
            # Queries still running in worker threads finish before the data closes.
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving and release the data."""
        if self._thread is None or self._loop is None:
            return
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._thread = None
        if self._service is not None:
            self._service.close()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> GenieEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then stop."""
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # clients -------------------------------------------------------------
    def workspace_client(self, *, oauth: bool = False, **config: Any) -> WorkspaceClient:
        """A real ``databricks.sdk.WorkspaceClient`` pointed at this emulator.

        Args:
            oauth: Authenticate with OAuth M2M (client credentials) instead of a PAT.
            **config: Further ``databricks.sdk.core.Config`` options, e.g.
                ``retry_timeout_seconds``.

        The client carries this workspace's question budget as two plain attributes,
        ``genie_questions_per_minute`` (questions per window) and
        ``genie_rate_window_seconds`` (the window): a duck-typed hint that Genie clients
        may read to pace themselves like the emulator's limit instead of Genie's default.
        The emulator imports nothing of those clients; this is the whole protocol.

        Example:
            >>> with GenieEmulator(speed=0, qpm=100) as emu:  # doctest: +SKIP
            ...     emu.workspace_client().genie_questions_per_minute
            100
        """
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        if oauth:
            cfg = Config(
                host=self.url,
                client_id=self.client_id,
                client_secret=self.client_secret,
                auth_type="oauth-m2m",
                **config,
            )
        else:
            cfg = Config(host=self.url, token=self.token, auth_type="pat", **config)
        client = WorkspaceClient(config=cfg)
        limits = self.config.limits
        client.genie_questions_per_minute = limits.qpm  # type: ignore[attr-defined]
        client.genie_rate_window_seconds = limits.rate_window_seconds  # type: ignore[attr-defined]
        return client

    # inspection and control -----------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters: questions (per space and conversation), polls, 429s, token requests."""
        with self.service.lock:
            return stats_snapshot(self.service)

    def events(self) -> list[StatusEvent]:
        """The log of every message status change so far."""
        with self.service.lock:
            return event_log(self.service)

    def messages(self) -> list[MessageInfo]:
        """Every question asked, with its exact completion time and poll count."""
        with self.service.lock:
            return message_infos(self.service)

    def inject(self, fault: Fault | None = None, **fields: Any) -> None:
        """Arm a fault: ``emu.inject(kind="http_error", status=503, count=3)``."""
        self.service.add_fault(fault or Fault.model_validate(fields))

    def clear_faults(self) -> None:
        """Disarm every pending fault."""
        self.service.faults.clear()

    def set_latency(
        self, *, total_seconds: float | object | None = _KEEP, speed: float | None = None
    ) -> None:
        """Change the latency of messages created from now on.

        Args:
            total_seconds: Stretch each message to about this long; ``None`` goes back to
                the configured phases. Left as it is when not given.
            speed: The new multiplier for every delay.
        """
        model = self.service.latency
        if speed is not None:
            model.speed = speed
        if total_seconds is not _KEEP:
            model.config = model.config.model_copy(update={"total_seconds": total_seconds})
