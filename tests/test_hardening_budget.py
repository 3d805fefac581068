"""Issue 12, point 6: a client built on an emulator takes its budget, and long waits are said.

``GenieEmulator(qpm=100)`` used to leave a client built on ``emu.workspace_client()`` at
Genie's default of 5 questions a minute (the 6th question waited 12 s, silently). The
emulator's WorkspaceClient now declares its budget (``genie_questions_per_minute``,
``genie_rate_window_seconds``); explicit settings still win; every wait for the budget
longer than 1 s is logged at INFO and is a ``rate_limit`` progress event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import space_id
from langchain_core.callbacks import BaseCallbackHandler

from genie_tools import AsyncGenieClient, GenieClient, GenieSettings, RateLimitedError
from genie_tools.emulator import GenieEmulator
from genie_tools.limits import budget_hint, settings_with_budget_hint
from genie_tools.tools import GenieToolkit

MakeEmulator = Callable[..., GenieEmulator]
QUESTIONS = [f"How many orders were placed in {year}?" for year in range(1992, 1999)]
CLIENT_LOGGER = "genie_tools.client"


pytestmark = pytest.mark.usefixtures("fresh_limits")


def test_client_on_an_emulator_takes_its_budget(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(qpm=100, seed=4)
    w = emu.workspace_client()
    assert (w.genie_questions_per_minute, w.genie_rate_window_seconds) == (100, 60.0)
    with GenieClient(w, space_id=space_id(emu)) as genie:
        assert (genie.settings.qpm, genie.limits.limiter.qpm) == (100, 100)
        t0 = time.monotonic()
        # Seven questions at once: Genie's default budget (5/min) would hold two for 12 s+.
        outcomes = genie.ask_many(QUESTIONS, concurrency=7, timeout=5)
    assert [o.error for o in outcomes] == [None] * 7
    assert time.monotonic() - t0 < 5
    assert all(o.answer and o.answer.timings.rate_limit_wait_seconds == 0 for o in outcomes)


def test_async_client_and_toolkit_take_the_emulator_budget(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(qpm=40, seed=4, config={"limits": {"rate_window_seconds": 20.0}})
    client = AsyncGenieClient(emu.workspace_client(), space_id=space_id(emu))
    toolkit = GenieToolkit(spaces=[space_id(emu)], workspace=emu.workspace_client())
    try:
        assert (client.settings.qpm, client.settings.rate_window_seconds) == (40, 20.0)
        pair = toolkit._clients  # the clients the tools ask with, in both modes
        assert pair.sync.settings.qpm == pair.aio.settings.qpm == 40
    finally:
        asyncio.run(client.close())


def test_explicit_settings_win_over_the_emulator_budget(
    make_emulator: MakeEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(qpm=100, seed=4)
    caplog.set_level(logging.INFO, logger="genie_tools")
    with GenieClient(emu.workspace_client(), settings=GenieSettings(qpm=3)) as genie:
        assert genie.settings.qpm == 3
    assert "from the settings wins over the workspace's 100 per 60 s" in caplog.text
    monkeypatch.setenv("GENIE_QPM", "4")
    with GenieClient(emu.workspace_client()) as genie:
        assert genie.settings.qpm == 4  # GENIE_QPM is an explicit setting too
    monkeypatch.delenv("GENIE_QPM")
    monkeypatch.setenv("GENIE_RATE_WINDOW_SECONDS", "30")
    with GenieClient(emu.workspace_client()) as genie:
        assert (genie.settings.qpm, genie.settings.rate_window_seconds) == (5, 30.0)


def test_explicit_burst_is_kept_within_the_hinted_budget() -> None:
    class Small:
        genie_questions_per_minute = 2

    settings = settings_with_budget_hint(GenieSettings(rate_burst=4), Small())
    assert (settings.qpm, settings.rate_burst) == (2, 2)


@pytest.mark.parametrize(
    ("qpm", "window", "expected"),
    [
        (100, None, (100, 60.0)),
        (7, 2.5, (7, 2.5)),
        (10**9, 60, (100_000, 60.0)),  # more than the settings accept: their maximum
        (0, None, None),
        (True, None, None),
        ("100", None, None),
        (5, float("nan"), None),
        (5, 0, None),
        (5, 7200, None),
    ],
)
def test_budget_hints_are_checked(qpm: Any, window: Any, expected: Any) -> None:
    class Workspace:
        genie_questions_per_minute = qpm
        genie_rate_window_seconds = window

    assert budget_hint(Workspace()) == expected
    assert budget_hint(object()) is None


def test_a_long_budget_wait_is_logged_and_reported(
    make_emulator: MakeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(qpm=2, seed=4, config={"limits": {"rate_window_seconds": 2.0}})
    caplog.set_level(logging.INFO, logger=CLIENT_LOGGER)
    with GenieClient(emu.workspace_client(), space_id=space_id(emu)) as genie:
        genie.ask(QUESTIONS[0])
        genie.ask(QUESTIONS[1])
        events = list(genie.iter_progress(QUESTIONS[2], timeout=10))
    waits = [e for e in events if e.kind == "rate_limit"]
    assert len(waits) == 1
    assert waits[0].wait_seconds is not None
    assert 1.0 < waits[0].wait_seconds <= 2.1
    assert emu.stats()["rate_limited"] == 0  # paced like the emulator: never refused
    logged = [r for r in caplog.records if "question budget" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.INFO
    line = logged[0].getMessage()
    assert emu.url in line
    assert "2 per 2 s" in line
    assert emu.token not in caplog.text
    assert QUESTIONS[2] not in line  # (no question text in the log either)


def test_a_short_budget_wait_is_reported_but_not_logged(
    make_emulator: MakeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(qpm=1, seed=4, config={"limits": {"rate_window_seconds": 0.6}})
    caplog.set_level(logging.INFO, logger=CLIENT_LOGGER)
    with GenieClient(emu.workspace_client(), space_id=space_id(emu)) as genie:
        genie.ask(QUESTIONS[0])
        events = list(genie.iter_progress(QUESTIONS[1], timeout=10))
    assert [e.kind for e in events].count("rate_limit") == 1
    assert "question budget" not in caplog.text


class _Progress(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append(data)


def test_a_budget_wait_in_a_tool_run_is_a_progress_event(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(qpm=1, seed=4, config={"limits": {"rate_window_seconds": 1.5}})
    toolkit = GenieToolkit(spaces=[space_id(emu)], workspace=emu.workspace_client())
    ask = next(t for t in toolkit.get_tools() if t.name == "ask_genie")
    progress = _Progress()
    for question in QUESTIONS[:2]:
        call = {
            "name": "ask_genie",
            "args": {"question": question},
            "id": "c1",
            "type": "tool_call",
        }
        message = ask.invoke(call, config={"callbacks": [progress]})
        assert message.status == "success", message.content
    waits = [e for e in progress.events if e["kind"] == "rate_limit"]
    assert len(waits) == 1
    assert 1.0 < waits[0]["wait_seconds"] <= 1.6
    assert emu.stats()["rate_limited"] == 0


def test_without_the_hint_the_default_budget_still_applies(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(qpm=100, seed=4)
    w = emu.workspace_client()
    del w.genie_questions_per_minute, w.genie_rate_window_seconds  # a real workspace's client
    with GenieClient(w, space_id=space_id(emu)) as genie:
        assert genie.settings.qpm == 5
        genie.ask_many(QUESTIONS[:5], concurrency=5)
        with pytest.raises(RateLimitedError):
            genie.ask(QUESTIONS[5], timeout=2)
