"""One surface over GenieClient and AsyncGenieClient, so every client test runs in both modes.

``Harness`` calls the sync client directly, and runs the async client's coroutines on a
private event loop (the emulator serves from its own thread, so nothing deadlocks).
Import the fixtures from here: ``from test_client_harness import mode, make_client``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from genie_tools import AsyncGenieClient, GenieClient, GenieSettings, ProgressEvent
from genie_tools.emulator import GenieEmulator
from genie_tools.limits import reset_limits

QUESTION = "What was total revenue by year?"
OTHER_QUESTION = "How many orders were placed in 1996?"
FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}


class Harness:
    """A client in either mode, with sync methods."""

    def __init__(self, mode: str, client: GenieClient | AsyncGenieClient) -> None:
        self.mode = mode
        self.client = client
        self._loop = asyncio.new_event_loop() if mode == "async" else None

    def _run(self, value: Any) -> Any:
        if self._loop is None:
            return value
        return self._loop.run_until_complete(value)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if not callable(method):
            return method  # type: ignore[no-any-return]
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def progress(self, question: str, **kwargs: Any) -> list[ProgressEvent]:
        """Every event of ``iter_progress`` (``astream`` in async mode)."""
        if isinstance(self.client, GenieClient):
            return list(self.client.iter_progress(question, **kwargs))
        client = self.client

        async def collect() -> list[ProgressEvent]:
            return [e async for e in client.astream(question, **kwargs)]

        return self._run(collect())  # type: ignore[no-any-return]

    def progress_until_error(
        self, question: str, **kwargs: Any
    ) -> tuple[list[ProgressEvent], BaseException | None]:
        """The events of ``iter_progress`` up to the error that ended it (if any)."""
        events: list[ProgressEvent] = []
        if isinstance(self.client, GenieClient):
            try:
                events.extend(self.client.iter_progress(question, **kwargs))
            except Exception as exc:
                return events, exc
            return events, None
        client = self.client

        async def collect() -> BaseException | None:
            try:
                async for event in client.iter_progress(question, **kwargs):
                    events.append(event)
            except Exception as exc:
                return exc
            return None

        error = self._run(collect())
        return events, error

    def close(self) -> None:
        self._run(self.client.close())
        if self._loop is not None:
            self._loop.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test with GenieClient, then with AsyncGenieClient."""
    return str(request.param)


@pytest.fixture
def make_client(mode: str) -> Iterator[Callable[..., Harness]]:
    """``make_client(emu, space_id=..., workspace=..., **settings)`` in the test's mode."""
    reset_limits()  # each test starts with a fresh per-host budget and breaker
    made: list[Harness] = []

    def make(
        emu: GenieEmulator,
        *,
        space_id: str | None = None,
        workspace: Any = None,
        **settings: Any,
    ) -> Harness:
        options = {**FAST, **settings}
        cls = GenieClient if mode == "sync" else AsyncGenieClient
        client = cls(
            workspace if workspace is not None else emu.workspace_client(),
            space_id=space_id,
            settings=GenieSettings(**options),
        )
        harness = Harness(mode, client)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
    reset_limits()


def normalise(value: Any) -> Any:
    """Compare typed values with DuckDB's: numbers by value, timestamps without zone."""
    if isinstance(value, float | decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def same_rows(
    rows: list[list[Any]], expected: list[tuple[Any, ...]], *, ordered: bool = True
) -> bool:
    """Value-by-value equality of typed client rows and DuckDB rows.

    ``ordered=False`` for SQL whose ORDER BY leaves ties (their order is arbitrary).
    """
    got = [tuple(normalise(v) for v in row) for row in rows]
    want = [tuple(normalise(v) for v in row) for row in expected]
    if not ordered:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    return got == want
