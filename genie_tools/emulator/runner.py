"""``GenieEmulator``: the emulator as a context manager, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genie_tools._optional import require
from genie_tools.emulator.auth import DEFAULT_PRINCIPAL, Authenticator
from genie_tools.emulator.config import EmulatorConfig, PrincipalConfig
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

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

DEFAULT_CLIENT_ID = "emulator-m2m-client"
_KEEP = object()  # set_latency: "leave this setting as it is"


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
    ) -> None:
        require("aiohttp", extra="emulator", purpose="The Genie emulator")
        if isinstance(config, (str, Path)):
            cfg = EmulatorConfig.from_file(config)
        elif isinstance(config, dict):
            cfg = EmulatorConfig.model_validate(config)
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
        self.token = token or "dapi" + secrets.token_hex(16)
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = "emu-secret-" + secrets.token_hex(12)
        self.principal = DEFAULT_PRINCIPAL
        principals = {
            DEFAULT_PRINCIPAL: PrincipalConfig(
                token=self.token, client_id=self.client_id, client_secret=self.client_secret
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
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self.port}"

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
        self._db = Database(self.config.data, self.data_dir)
        self._service = GenieService(
            self.config, self._db, speed=self.speed, seed=self.seed, llm=self.llm
        )
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="genie-emulator", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

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
        return WorkspaceClient(config=cfg)

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
