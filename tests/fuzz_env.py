"""What the fuzzers share: a live emulator with real ids, a request recorder, findings.

Used by ``tests/test_fuzz.py`` (a few hundred examples in CI) and by
``benchmarks/fuzz.py`` (the on-demand run, at least 1,000 examples per surface). The
surfaces themselves are in :mod:`fuzz_surfaces`.

* :class:`FuzzEnv` — one instant emulator on loopback, the real SDK's WorkspaceClient,
  sync and async clients and a toolkit on it, and the ids of one real answer (so the
  fuzzers mix real ids in with hostile ones).
* :class:`RequestLog` — records every HTTP request this process sends (httpx, sync and
  async, and ``requests``, which the SDK's authentication uses) and checks that each went
  to the emulator, inside the paths a Genie client may use.
* :class:`Finding` — a broken invariant, with a signature that groups repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import traceback
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import httpx
import requests

from genie_tools import AsyncGenieClient, GenieClient, GenieSettings
from genie_tools.emulator import GenieEmulator
from genie_tools.limits import reset_limits
from genie_tools.models import GenieAnswer
from genie_tools.tools import GenieToolkit

__all__ = [
    "ALLOWED_PREFIXES",
    "TRACEBACK",
    "Finding",
    "FuzzEnv",
    "RequestLog",
    "check_text",
    "environment",
    "unexpected",
]

TRACEBACK = "Traceback (most recent call last)"
# Where a Genie client may send requests: Genie's API, the statement API its results
# come from, the emulator's pre-signed download links and the SDK's auth discovery.
ALLOWED_PREFIXES = (
    "/api/2.0/genie/spaces/",  # (and the list itself, /api/2.0/genie/spaces)
    "/api/2.0/sql/statements/",
    "/emulator/download/",
    "/oidc/",
    "/.well-known/",
)
# Fast failure paths: an example is one call, and the fuzzers make thousands.
FAST = {
    "submit_recovery_seconds": 0.3,
    "retry_backoff_base": 0.02,
    "retry_backoff_max": 0.1,
    "max_retries": 1,
    "timeout": 20.0,
}


class Finding(AssertionError):
    """An invariant the fuzzed input broke.

    Attributes:
        signature: What broke and where, without the input: repeats share it.
    """

    def __init__(self, signature: str, detail: str = "") -> None:
        super().__init__(f"{signature}\n{detail}".strip())
        self.signature = signature


def unexpected(surface: str, exc: BaseException) -> Finding:
    """A :class:`Finding` for an exception of a type the surface must never raise."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "genie_tools" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].name}" if ours else "?"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return Finding(
        f"{surface}: {type(exc).__name__} escaped from {where}",
        f"{type(exc).__name__}: {text}",
    )


def check_text(surface: str, env: FuzzEnv, text: object, what: str = "content") -> None:
    """Text a model or a user reads: a string, UTF-8, no traceback, no token."""
    if not isinstance(text, str):
        raise Finding(f"{surface}: {what} is a {type(text).__name__}, not text")
    if TRACEBACK in text:
        raise Finding(f"{surface}: a traceback in the {what}", text[:300])
    if env.token in text:
        raise Finding(f"{surface}: the token in the {what}", text[:300])
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Finding(f"{surface}: a lone surrogate in the {what}", repr(text[:200])) from None


class _Lines(logging.Handler):
    """Keeps the formatted log lines of genie_tools (to look for secrets in them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class RequestLog:
    """Every HTTP request the process sends while :meth:`recording`; thread-safe.

    It also keeps genie_tools' log lines (at DEBUG) for the same span, so that
    :meth:`check` can say whether a secret reached the log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[tuple[str, str]] = []
        self.logged = _Lines()

    def _add(self, method: str, url: str) -> None:
        with self._lock:
            self.sent.append((method, url))

    @contextlib.contextmanager
    def recording(self) -> Iterator[RequestLog]:
        """Record from here to the end of the block (the log is cleared first)."""
        with self._lock:
            self.sent.clear()
        log = self
        sync_send = httpx.HTTPTransport.handle_request
        async_send = httpx.AsyncHTTPTransport.handle_async_request
        sdk_send = requests.adapters.HTTPAdapter.send

        def handle(transport: Any, request: httpx.Request) -> Any:
            log._add(request.method, str(request.url))
            return sync_send(transport, request)

        async def ahandle(transport: Any, request: httpx.Request) -> Any:
            log._add(request.method, str(request.url))
            return await async_send(transport, request)

        def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            log._add(str(request.method), str(request.url))
            return sdk_send(adapter, request, *args, **kwargs)

        self.logged.lines.clear()
        ours = logging.getLogger("genie_tools")
        saved = ours.level, ours.propagate
        ours.addHandler(self.logged)
        ours.setLevel(logging.DEBUG)
        ours.propagate = False  # DEBUG lines for the check, not for the console
        try:
            with (
                mock.patch.object(httpx.HTTPTransport, "handle_request", handle),
                mock.patch.object(httpx.AsyncHTTPTransport, "handle_async_request", ahandle),
                mock.patch.object(requests.adapters.HTTPAdapter, "send", send),
            ):
                yield self
        finally:
            ours.removeHandler(self.logged)
            ours.setLevel(saved[0])
            ours.propagate = saved[1]

    def check(self, surface: str, base_url: str, *, secret: str | None = None) -> None:
        """Raise a :class:`Finding` for a request outside the allowed paths, or a logged secret."""
        for line in self.logged.lines:
            if secret and secret in line:
                raise Finding(f"{surface}: the token in genie_tools' log", line[:300])
        base = urlsplit(base_url)
        for method, url in list(self.sent):
            parts = urlsplit(url)
            segments = [unquote(s) for s in parts.path.split("/")]
            wrong_host = (parts.scheme, parts.netloc) != (base.scheme, base.netloc)
            outside = not (parts.path + "/").startswith(ALLOWED_PREFIXES)
            if wrong_host or outside or "." in segments or ".." in segments:
                raise Finding(f"{surface}: a request left Genie's paths", f"{method} {url}")
            if any(c in segment for segment in segments for c in "/?#"):
                # Encoding kept it inside its segment, but an id that is no Genie id got
                # this far: a server or proxy that decodes %2F would route it elsewhere.
                raise Finding(f"{surface}: an unchecked id reached a URL", f"{method} {url}")


class FuzzEnv:
    """A live emulator and the clients, tools and real ids the fuzzers use.

    Args:
        workdir: A scratch folder (threads, YAML files) that the caller removes.
        seed: The emulator's seed.
    """

    def __init__(self, workdir: Path, *, seed: int = 12) -> None:
        reset_limits()
        self.workdir = workdir
        # A second, ordinary user: the admin API must refuse them.
        self.user_token = "dapi-fuzz-ordinary-user-0123456789"
        config = {"principals": {"fuzz-user": {"token": self.user_token}}}
        self.emu = GenieEmulator(speed=0, qpm=100_000, seed=seed, config=config).start()
        self.token = self.emu.token
        self.url = self.emu.url
        self.w = self.emu.workspace_client()
        self.settings = GenieSettings(**FAST)
        self.space_ids = [s.id for s in self.emu.config.spaces]
        self.questions = [q for s in self.emu.config.spaces for q in s.sample_questions]
        self.loop = asyncio.new_event_loop()
        self.client = GenieClient(self.w, space_id=self.space_ids[0], settings=self.settings)
        self.aclient = AsyncGenieClient(self.w, space_id=self.space_ids[0], settings=self.settings)
        self.toolkit = GenieToolkit(spaces=self.space_ids, workspace=self.w, settings=self.settings)
        self.tools = {t.name: t for t in self.toolkit.get_tools()}
        self.space_names = [s.name for s in self.toolkit.resolved_spaces()]
        self.log = RequestLog()
        self.answer = self.refresh_answer()

    def refresh_answer(self) -> GenieAnswer:
        """Ask one real question, so that real ids exist (fuzzers may delete them)."""
        self.answer = self.client.ask("What was total revenue by year?")
        return self.answer

    @property
    def real_ids(self) -> dict[str, list[str]]:
        """Ids of real objects, by kind (the fuzzers mix them with hostile ones)."""
        a = self.answer
        return {
            "space": self.space_ids,
            "conversation": [a.conversation_id],
            "message": [a.message_id],
            "attachment": [a.attachment_id or "none"],
            "statement": [(a.result.statement_id if a.result else None) or "none"],
        }

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the environment's one event loop (async clients keep theirs)."""
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Close the clients and stop the emulator."""
        with contextlib.suppress(Exception):
            self.client.close()
            self.run(self.aclient.close())
        self.loop.close()
        self.emu.stop()
        reset_limits()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (and nothing else of DATABRICKS_/GENIE_)."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith(("DATABRICKS_", "GENIE_"))]:
            if key != "GENIE_TOOLS_CACHE_DIR":
                del os.environ[key]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
