"""The per-workspace question budget, the circuit breaker, and real async concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import space_id
from test_client_harness import FAST, OTHER_QUESTION, QUESTION, Harness, make_client, mode

from genie_tools import (
    AsyncGenieClient,
    CircuitOpenError,
    GenieClient,
    GenieSettings,
    ServiceUnavailableError,
)
from genie_tools.emulator import GenieEmulator
from genie_tools.limits import reset_limits

__all__ = ["make_client", "mode"]

MakeClient = Callable[..., Harness]
MakeEmulator = Callable[..., GenieEmulator]
SPACES_ROUTE = "/api/2.0/genie/spaces"


def test_budget_is_shared_by_sync_and_async_clients_of_a_host(
    make_emulator: MakeEmulator,
) -> None:
    reset_limits()
    emu = make_emulator(seed=6, qpm=1000)  # Genie would allow more: the client's budget rules
    settings = GenieSettings(**{**FAST, "qpm": 2, "rate_window_seconds": 1.5})
    sid = space_id(emu)
    sync = GenieClient(emu.workspace_client(), space_id=sid, settings=settings)
    other = AsyncGenieClient(emu.workspace_client(), space_id=sid, settings=settings)
    try:
        assert sync.limits is other.limits
        t0 = time.monotonic()
        sync.ask(QUESTION)
        asyncio.run(other.ask(OTHER_QUESTION))
        assert time.monotonic() - t0 < 1.0  # two questions fit the budget
        events = list(sync.iter_progress(QUESTION))
        waited = time.monotonic() - t0
    finally:
        sync.close()
    waits = [e for e in events if e.kind == "rate_limit"]
    assert len(waits) == 1
    assert waits[0].wait_seconds is not None
    assert 0.5 < waits[0].wait_seconds <= 1.5
    assert 1.5 <= waited < 2.5
    assert events[-1].answer is not None
    assert events[-1].answer.timings.rate_limit_wait_seconds == pytest.approx(
        waits[0].wait_seconds, abs=1e-3
    )
    assert emu.stats()["rate_limited"] == 0  # the budget kept Genie from refusing anything
    assert emu.stats()["questions"] == 3
    assert sync.limits.limiter.snapshot()["acquired"] == 3
    reset_limits()


def test_burst_setting_spaces_questions_evenly(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(seed=6, qpm=1000)
    genie = make_client(emu, space_id=space_id(emu), qpm=6, rate_window_seconds=3.0, rate_burst=1)
    t0 = time.monotonic()
    outcomes = genie.ask_many([QUESTION, OTHER_QUESTION, QUESTION], concurrency=3)
    elapsed = time.monotonic() - t0
    waits = sorted(o.answer.timings.rate_limit_wait_seconds for o in outcomes if o.answer)
    # 3 s / 6 questions: one every 0.5 s, although all three were asked at once.
    assert waits[0] == 0
    # (plus the limiter's small margin, and the previous question's round trip: a question
    # counts from its answer's arrival, as Genie counts it on arrival; the first one also
    # resolves the client's credentials)
    assert 0.4 <= waits[1] <= 0.8
    assert 0.9 <= waits[2] <= 1.4
    assert 1.0 <= elapsed < 2.5
    assert emu.stats()["questions"] == 3


def test_circuit_opens_after_sustained_failures_and_recovers(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(seed=6, qpm=1000)
    genie = make_client(
        emu,
        space_id=space_id(emu),
        breaker_failure_threshold=3,
        breaker_cooldown_seconds=1.0,
        max_retries=1,
    )
    emu.inject(kind="http_error", status=503, count=None, path=f"{SPACES_ROUTE}$")

    with pytest.raises(ServiceUnavailableError) as first:
        genie.list_spaces()  # two failed attempts
    assert "503" in str(first.value)
    with pytest.raises(CircuitOpenError):
        genie.list_spaces()  # the third failure opens the circuit before the retry
    sent = emu.stats()["requests"][SPACES_ROUTE]
    assert sent == 3
    assert genie.limits.breaker.state == "open"

    t0 = time.monotonic()
    with pytest.raises(CircuitOpenError) as err:
        genie.list_spaces()
    assert time.monotonic() - t0 < 0.1  # refused locally, at once
    assert 0 < err.value.retry_after <= 1.0
    assert "paused" in str(err.value)
    assert emu.stats()["requests"][SPACES_ROUTE] == sent  # nothing reached Genie

    emu.clear_faults()
    time.sleep(1.05)
    assert len(genie.list_spaces()) == 3  # the trial call succeeds: closed again
    assert genie.limits.breaker.state == "closed"


class _CountingExecutor(ThreadPoolExecutor):
    """The event loop's default executor, counting what is handed to threads."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        type(self).submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_two_hundred_concurrent_asks_on_one_event_loop(
    make_emulator: MakeEmulator, duckdb_reference: Callable[[str], list[tuple[Any, ...]]]
) -> None:
    reset_limits()
    emu = make_emulator(seed=8, qpm=100_000)
    settings = GenieSettings(**FAST)
    questions = [OTHER_QUESTION] * 200  # a cheap query: the emulator sets the pace

    async def main() -> list[int]:
        asyncio.get_running_loop().set_default_executor(_CountingExecutor())
        async with AsyncGenieClient(
            emu.workspace_client(), space_id=space_id(emu), settings=settings
        ) as genie:
            answers = await asyncio.gather(*(genie.ask(q) for q in questions))
            sql = {a.sql for a in answers}
            assert len(sql) == 1
            expected.extend(duckdb_reference(sql.pop() or ""))
            return [a.result.rows[0][0] for a in answers if a.result]

    expected: list[tuple[Any, ...]] = []
    t0 = time.monotonic()
    firsts = asyncio.run(main())
    elapsed = time.monotonic() - t0
    assert len(firsts) == 200
    assert set(firsts) == {expected[0][0]}
    assert emu.stats()["questions"] == 200
    # Only the one-off SDK config resolution may use a thread: never one per question.
    assert _CountingExecutor.submitted <= 1
    assert elapsed < 60
    reset_limits()
